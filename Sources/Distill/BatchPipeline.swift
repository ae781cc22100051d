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

/// Prepares batches on one background thread, two in flight, continuing across epoch boundaries so that
/// the first batch of an epoch is ready while the previous epoch is evaluated and checkpointed.
///
/// Positions run from (start epoch, start batch) to the end of `endEpoch - 1`; a batch depends only on
/// its position, so a resumed run prepares exactly what the uninterrupted one did. The queue is serial:
/// shard cursors and the plan cache are touched by it alone.
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
    private let batchSize: Int
    private let stepsPerEpoch: Int
    private let queue = DispatchQueue(label: "tinyshard.distill.prepare")
    private var pending: [Slot] = []
    private var nextPosition: (epoch: Int, batch: Int)
    private let endEpoch: Int
    /// Plan cache, queue-only.
    private var plans: [Int: [PlanItem]] = [:]
    /// Seconds spent preparing the batches handed out so far.
    private(set) var prepareSeconds = 0.0

    init(planner: ViewPlanner, hard: HardLabels, targets: TargetSource, batchSize: Int, stepsPerEpoch: Int,
         start: (epoch: Int, batch: Int), endEpoch: Int) {
        self.planner = planner
        self.hard = hard
        self.targets = targets
        self.batchSize = batchSize
        self.stepsPerEpoch = stepsPerEpoch
        augmenter = Augmenter(outputWidth: planner.size, outputHeight: planner.size)
        nextPosition = start
        self.endEpoch = endEpoch
        for _ in 0..<2 { launchNext() }
    }

    /// Waits for the next batch (in position order) and starts preparing the one after the pending ones.
    func next() throws -> Batch {
        guard !pending.isEmpty else { throw DistillError("[internal] no batch left to prepare") }
        let slot = pending.removeFirst()
        slot.group.wait()
        prepareSeconds += slot.seconds
        launchNext()
        guard let result = slot.result else { throw DistillError("[internal] a batch was not prepared") }
        return try result.get()
    }

    private func launchNext() {
        let (epoch, b) = nextPosition
        guard epoch < endEpoch else { return }
        nextPosition = b + 1 < stepsPerEpoch ? (epoch, b + 1) : (epoch + 1, 0)
        let slot = Slot()
        pending.append(slot)
        queue.async(group: slot.group) {
            let t0 = Date()
            slot.result = Result { try self.prepare(epoch: epoch, batch: b) }
            slot.seconds = Date().timeIntervalSince(t0)
        }
    }

    private func plan(_ epoch: Int) throws -> [PlanItem] {
        if let plan = plans[epoch] { return plan }
        let plan = try planner.plan(epoch: epoch)
        guard plan.count >= stepsPerEpoch * batchSize else {
            throw DistillError("[mismatch] epoch \(epoch) has \(plan.count) training samples, fewer than the \(stepsPerEpoch) batches of \(batchSize) of epoch 0")
        }
        plans = [epoch: plan]  // one epoch at a time is enough: positions only move forward
        return plan
    }

    /// Decodes or draws parameters, renders the views and fills hard or stored targets.
    private func prepare(epoch: Int, batch b: Int) throws -> Batch {
        let items = try plan(epoch)[(b * batchSize)..<((b + 1) * batchSize)]
        let size = planner.size, classes = hard.classes
        let plane = 3 * size * size
        let images = Tensor(zeros: [items.count, 3, size, size])
        let targetRows = Tensor(zeros: [items.count, classes])
        for (row, item) in items.enumerated() {
            let parameters = try planner.parameters(item, epoch: epoch)
            let out = UnsafeMutableBufferPointer(start: images.pointer + row * plane, count: plane)
            try ImagePreparation.render(parameters, store: planner.store, index: item.storeIndex, map: planner.map,
                                        augmenter: augmenter, into: out)
            let target = UnsafeMutableBufferPointer(start: targetRows.pointer + row * classes, count: classes)
            switch targets {
            case .hardLabels:
                try hard.fill(parameters, index: item.storeIndex, into: target)
            case .storedSoftLabels:
                let cursor = planner.cursors(epoch: epoch)[item.shard]
                try planner.naming(item.ordinal, cursor.reader) { try cursor.dense([item.ordinal], into: target) }
            case .onlineTeacher:
                break  // filled by the step, on the training thread
            }
        }
        return Batch(images: images, targets: targetRows)
    }
}
