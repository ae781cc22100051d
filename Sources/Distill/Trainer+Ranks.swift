import Foundation
import Tensor
import TinyViT

// Gradient accumulation and data parallelism: what a step does between its micro-batches and the update,
// and how ranks agree at the points where one of them could fail or be asked to stop.

extension Trainer {
    /// One step's gradient: this rank's micro-batches prepared, forward and backward, summed; then (several
    /// ranks) an agreement on failures, stop requests and the loss; then the sum over ranks, scaled to the
    /// mean over the global batch, in the parameters' gradients. Returns the step's loss (mean of the
    /// micro-batches' mean losses) and whether any rank was asked to stop.
    func gradientStep(stop: StopRequest?) throws -> (loss: Float, stop: Bool) {
        let parts = microBatches.perStep
        var lossSum = 0.0
        var failure: Error?
        for micro in 0..<microBatches.accumulate {
            var batch: Batch?
            do { batch = try prepareBatch() } catch { failure = error }
            if batchNormReducer != nil {
                // Synchronised BatchNorm sums inside the forward: agree first, so that a rank whose data
                // failed never leaves the others waiting in a BatchNorm sum. (An error inside the forward,
                // after other ranks entered a sum, cannot be agreed on: it escapes and the job aborts.)
                try agree(failure, during: "step \(step + 1)")
            } else if failure != nil {
                break
            }
            guard let batch else { break }
            do {
                lossSum += Double(try forwardBackward(batch, micro: micro))
            } catch {
                if batchNormReducer != nil { throw error }
                failure = error
                break
            }
            buckets?.accumulate(first: micro == 0)
        }
        var stopAgreed = stop?.isRequested == true
        if communicator.size > 1 {
            let t0 = Date()
            let agreed = communicator.agree(RankStatus(failed: failure != nil, stopRequested: stopAgreed), sums: [lossSum])
            timing.sync += Date().timeIntervalSince(t0)
            try throwIfFailed(failure, agreed, during: "step \(step + 1)")
            stopAgreed = agreed.stop
            lossSum = agreed.sums[0]
        } else if let failure {
            throw failure
        }
        if let buckets {
            let t0 = Date()
            buckets.allreduce(communicator)
            timing.allreduce += Date().timeIntervalSince(t0)
            let t1 = Date()
            buckets.writeBack(scale: 1 / Float(parts))
            timing.compute += Date().timeIntervalSince(t1)
        }
        if parts > 1 { lossSum /= Double(parts) }
        return (Float(lossSum), stopAgreed)
    }

    /// An agreement point on this rank's `failure` (several ranks; one process just throws it).
    private func agree(_ failure: Error?, during what: String) throws {
        guard communicator.size > 1 else {
            if let failure { throw failure }
            return
        }
        let t0 = Date()
        let agreed = communicator.agree(RankStatus(failed: failure != nil))
        timing.sync += Date().timeIntervalSince(t0)
        try throwIfFailed(failure, agreed, during: what)
    }

    /// After an agreement: this rank's own failure, or the note that others failed, as an ``AgreedFailure``.
    private func throwIfFailed(_ failure: Error?, _ agreed: AgreedStatus, during what: String) throws {
        if let failure { throw AgreedFailure(underlying: failure) }
        if !agreed.failedRanks.isEmpty {
            throw AgreedFailure(underlying: communicator.peerFailure(agreed.failedRanks, during: what))
        }
    }

    /// Runs `body` on rank 0 (the run folder's only writer) and agrees on its outcome and on stop requests;
    /// returns whether any rank was asked to stop. One process: `body`, then the stop request.
    func onRankZero(_ what: String, stop: StopRequest?, _ body: () throws -> Void) throws -> Bool {
        if communicator.size == 1 {
            try body()
            return stop?.isRequested == true
        }
        var failure: Error?
        if communicator.rank == 0 {
            do { try body() } catch { failure = error }
        }
        let agreed = communicator.agree(RankStatus(failed: failure != nil, stopRequested: stop?.isRequested == true))
        if let failure { throw AgreedFailure(underlying: failure) }
        if !agreed.failedRanks.isEmpty { throw AgreedFailure(underlying: communicator.peerFailure(agreed.failedRanks, during: what)) }
        return agreed.stop
    }

    /// Every rank takes rank 0's BatchNorm running statistics (DDP's `broadcast_buffers`), before evaluating
    /// and checkpointing: with per-rank BatchNorm each rank's running statistics follow its own
    /// micro-batches, and rank 0's are the run's (the ones it checkpoints).
    func synchronizeBuffers() {
        guard communicator.size > 1 else { return }
        for buffer in model.buffers { communicator.broadcast(buffer.value.mutableBuffer, root: 0) }
    }

    /// Top-1 / top-5 on the evaluation split, each rank evaluating every `size`-th image and the counts
    /// summed (one process: ``evaluate()``).
    func evaluateOnRanks() throws -> Evaluation {
        guard communicator.size > 1 else { return try evaluate() }
        let (evaluationStore, indices) = evaluationImages
        let mine = stride(from: communicator.rank, to: indices.count, by: communicator.size).map { indices[$0] }
        let outcome = Result { try Trainer.evaluationCounts(model: model, store: evaluationStore, indices: mine, batchSize: options.evalBatchSize) }
        var counts = [0.0, 0.0, 0.0]
        var status = RankStatus()
        switch outcome {
        case let .success(c): counts = [Double(c.top1), Double(c.top5), Double(c.count)]
        case .failure: status.failed = true
        }
        let agreed = communicator.agree(status, sums: counts)
        if case let .failure(error) = outcome { throw AgreedFailure(underlying: error) }
        if !agreed.failedRanks.isEmpty {
            throw AgreedFailure(underlying: communicator.peerFailure(agreed.failedRanks, during: "the evaluation"))
        }
        let (top1, top5, count) = (agreed.sums[0], agreed.sums[1], agreed.sums[2])
        guard count > 0 else { return Evaluation(top1: 0, top5: 0, count: 0) }
        return Evaluation(top1: top1 / count, top5: top5 / count, count: Int(count))
    }

    /// Before the first step: every rank must hold the same options, sources, position and weights (they
    /// were started with the same command and loaded the same checkpoint) — else the run would silently
    /// average different models. Also called before each epoch's checkpoint: ranks that drifted apart stop the run.
    func checkRanksAgree() throws {
        guard communicator.size > 1 else { return }
        var state = Fingerprint()
        state.add("\(options)|\(sourceIdentity)|\(model.configuration)|\(completedEpochs)|\(stepInEpoch)|\(step)")
        if !communicator.allAgree(on: state.value) {
            throw AgreedFailure(underlying: DistillError(.mismatch, "the \(communicator.size) ranks were started with different options, sources or checkpoints; start every rank with the same command"))
        }
        var weights = Fingerprint()
        for p in model.parameters { weights.add(UnsafeRawBufferPointer(p.value.buffer)) }
        if !communicator.allAgree(on: weights.value) {
            throw AgreedFailure(underlying: DistillError(.diverged, "the ranks hold different weights at step \(step) (rank \(communicator.rank)'s fingerprint \(String(weights.value, radix: 16))); the run cannot continue"))
        }
    }
}

/// Synchronised BatchNorm's sums over the ranks of a ``Communicator``, timed (the trainer counts them as
/// allreduce time, not compute).
final class RankBatchNormReducer: BatchNormReducer {
    let communicator: Communicator
    private(set) var seconds = 0.0
    init(_ communicator: Communicator) { self.communicator = communicator }
    func sum(_ values: UnsafeMutableBufferPointer<Double>) {
        let t0 = Date()
        communicator.allreduceSum(values)
        seconds += Date().timeIntervalSince(t0)
    }
}
