import Augment
import Foundation
import ImageStore
import ShardFormat
import Tensor

/// A prepared batch: normalised views and their targets (left zero for an online teacher to fill).
struct Batch {
    var images: Tensor
    var targets: Tensor
}

/// Prepares this rank's micro-batches on one background thread, two in flight, continuing across epoch
/// boundaries so that the first batch of an epoch is ready while the previous epoch is evaluated and
/// checkpointed.
///
/// Positions (epoch, step, micro-batch) run from (start epoch, start step, 0) to the end of `endEpoch - 1`;
/// a micro-batch depends only on its position (``MicroBatches``), so a resumed run prepares exactly what
/// the uninterrupted one did. The queue is serial: shard cursors and the plan cache are touched by it alone.
final class BatchPipeline: @unchecked Sendable {
    private final class Slot: @unchecked Sendable {
        let group = DispatchGroup()
        var result: Result<Batch, Error>?
        var seconds = 0.0
    }

    private let planner: ViewPlanner
    private let hard: HardLabels
    private let targets: TargetSource
    private let augmenter: Augmenter
    private let slicing: MicroBatches
    private let stepsPerEpoch: Int
    private let queue = DispatchQueue(label: "tinyshard.distill.prepare")
    private var pending: [Slot] = []
    private var nextPosition: (epoch: Int, batch: Int, micro: Int)
    private let endEpoch: Int
    /// Stream cache, queue-only.
    private var plans: [Int: EpochStreams] = [:]
    private let order: SampleOrder
    private let seed: UInt64
    /// Seconds spent preparing the batches handed out so far.
    private(set) var prepareSeconds = 0.0

    init(planner: ViewPlanner, hard: HardLabels, targets: TargetSource, slicing: MicroBatches, stepsPerEpoch: Int,
         start: (epoch: Int, batch: Int), endEpoch: Int, order: SampleOrder, seed: UInt64) {
        self.planner = planner
        self.order = order
        self.seed = seed
        self.hard = hard
        self.targets = targets
        self.slicing = slicing
        self.stepsPerEpoch = stepsPerEpoch
        augmenter = Augmenter(outputWidth: planner.size, outputHeight: planner.size)
        nextPosition = (start.epoch, start.batch, 0)
        self.endEpoch = endEpoch
        for _ in 0..<2 { launchNext() }
    }

    /// Waits for the next micro-batch (in position order) and starts preparing the one after the pending ones.
    func next() throws -> Batch {
        guard !pending.isEmpty else { throw DistillError(.internal, "no batch left to prepare") }
        let slot = pending.removeFirst()
        slot.group.wait()
        prepareSeconds += slot.seconds
        launchNext()
        guard let result = slot.result else { throw DistillError(.internal, "a batch was not prepared") }
        return try result.get()
    }

    private func launchNext() {
        let (epoch, b, micro) = nextPosition
        guard epoch < endEpoch else { return }
        if micro + 1 < slicing.accumulate {
            nextPosition = (epoch, b, micro + 1)
        } else {
            nextPosition = b + 1 < stepsPerEpoch ? (epoch, b + 1, 0) : (epoch + 1, 0, 0)
        }
        let slot = Slot()
        pending.append(slot)
        queue.async(group: slot.group) {
            let t0 = Date()
            slot.result = Result { try self.prepare(epoch: epoch, batch: b, micro: micro) }
            slot.seconds = Date().timeIntervalSince(t0)
        }
    }

    private func plan(_ epoch: Int) throws -> EpochStreams {
        if let plan = plans[epoch] { return plan }
        let plan = try planner.streams(epoch: epoch, order: order, slicing: slicing, seed: seed)
        guard plan.steps >= stepsPerEpoch else {
            throw DistillError(.mismatch, "epoch \(epoch) fills \(plan.steps) batches of \(slicing.globalBatch), fewer than the \(stepsPerEpoch) of epoch 0")
        }
        plans = [epoch: plan]  // one epoch at a time is enough: positions only move forward
        return plan
    }

    /// Decodes or draws parameters, renders the views and fills hard or stored targets.
    private func prepare(epoch: Int, batch b: Int, micro: Int) throws -> Batch {
        let items = try plan(epoch).streams[slicing.number(micro)][slicing.positions(step: b)]
        let size = planner.size, classes = hard.classes
        let plane = 3 * size * size
        let images = Tensor(zeros: [items.count, 3, size, size])
        let targetRows = Tensor(zeros: [items.count, classes])
        for (row, item) in items.enumerated() {
            let parameters = try planner.parameters(item, epoch: epoch)
            let out = UnsafeMutableBufferPointer(start: images.pointer + row * plane, count: plane)
            do {
                try ImagePreparation.render(parameters, store: planner.store, index: item.storeIndex, map: planner.map,
                                            augmenter: augmenter, into: out)
            } catch let error as AugmentError where item.shard >= 0 {
                // A record whose (valid) parameters do not fit its image: name the record, as for format errors.
                let reader = planner.cursors(epoch: epoch)[item.shard].reader
                throw DistillError(.mismatch, "\(error)", file: reader.path, item: "record \(item.ordinal) (image \(try planner.store.key(at: item.storeIndex)))")
            }
            let target = UnsafeMutableBufferPointer(start: targetRows.pointer + row * classes, count: classes)
            switch targets {
            case .hardLabels:
                try hard.fill(parameters, index: item.storeIndex, into: target)
            case let .storedSoftLabels(top):
                let cursor = planner.cursors(epoch: epoch)[item.shard]
                try planner.naming(item.ordinal, cursor.reader) { try cursor.dense([item.ordinal], into: target, top: top) }
            case .onlineTeacher:
                break  // filled by the step, on the training thread
            }
        }
        return Batch(images: images, targets: targetRows)
    }
}
