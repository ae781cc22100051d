import Foundation
import ShardFormat

/// The order a run reads an epoch's samples in, and how it deals them to ranks and micro-batches.
public enum SampleOrder: Codable, Sendable, Equatable, CustomStringConvertible {
    /// The record-order sampler (Spec/RECORD-ORDER.md): each stream reads a contiguous share of the stored
    /// records in whole blocks, shuffled inside windows of `window` blocks (0: exactly as stored).
    case record(window: Int)
    /// A seeded uniform permutation of the epoch every training epoch, dealt as PyTorch's DistributedSampler
    /// deals an epoch (padded with its first items, stream p taking positions p, p + P, …). Reads whole
    /// blocks for one record each: for a user who wants the epoch reshuffled, at the cost of decoding.
    case shuffled
    /// Stored order cut into global batches of consecutive records, each split across ranks and micro-batches:
    /// a step's global batch is the same whatever the world size (so `mpirun -np N --sync-batchnorm` normalises
    /// like one process's batch), at the cost of every rank decoding every block.
    case batchwise

    /// One line for logs and run summaries, e.g. `record order, shuffle window 4`.
    public var description: String {
        switch self {
        case let .record(window): return window == 0 ? "record order (stored order, no window)" : "record order, shuffle window \(window)"
        case .shuffled: return "shuffled (DistributedSampler dealing)"
        case .batchwise: return "stored order, global batches split across ranks"
        }
    }
}

/// An epoch's plan cut into P = ranks × accumulate streams, one per micro-batch position of a step: micro-batch
/// m of rank r reads stream r·A + m, step s taking its items s·size ..< (s+1)·size. `mpirun -np 2` and one
/// process with `--accumulate 2` read the same streams, so they see the same micro-batches.
struct EpochStreams {
    /// The items of every stream, P of them; only the ones of this rank's micro-batches are filled.
    let streams: [[PlanItem]]
    /// The steps every stream can fill with `size` items each (the shortest stream decides).
    let steps: Int

    /// `plan` is the epoch's training items in stored order (replay) or the pass's order (views drawn from a
    /// recipe); `epochShards` the stored epoch's shards in rank order when replaying.
    init(plan: [PlanItem], epochShards: [ShardReader]?, order: SampleOrder, slicing: MicroBatches, seed: UInt64,
         trainingEpoch: Int) throws {
        let parts = slicing.perStep
        let mine = Set((0..<slicing.accumulate).map { slicing.number($0) })
        var streams = [[PlanItem]](repeating: [], count: parts)
        var lengths = [Int](repeating: 0, count: parts)
        switch order {
        case let .record(window):
            let (layout, lookup) = Self.layout(plan: plan, epochShards: epochShards)
            for p in 0..<parts {
                // Records of evaluation images are not in the plan: a stream skips them, so its length is counted.
                let items = try layout.items(world: parts, rank: p, window: window, seed: seed, epoch: UInt64(trainingEpoch))
                    .compactMap { lookup($0) }
                lengths[p] = items.count
                if mine.contains(p) { streams[p] = items }
            }
        case .batchwise:
            let steps = plan.count / slicing.globalBatch
            for p in 0..<parts {
                lengths[p] = steps * slicing.size
                if mine.contains(p) {
                    var items: [PlanItem] = []
                    for step in 0..<steps {
                        let start = step * slicing.globalBatch + p * slicing.size
                        items += plan[start..<(start + slicing.size)]
                    }
                    streams[p] = items
                }
            }
        case .shuffled:
            let permutation = seededPermutation(plan.count, seed: seed ^ (0x5348_5546_0000_0000 &+ UInt64(trainingEpoch)))
            let q = (plan.count + parts - 1) / parts
            for p in 0..<parts {
                lengths[p] = q
                if mine.contains(p) { streams[p] = (0..<q).map { plan[permutation[(p + $0 * parts) % plan.count]] } }
            }
        }
        self.streams = streams
        steps = (lengths.min() ?? 0) / slicing.size
    }

    /// The record-order sampler's view of the epoch and, for each of its items, the plan item (nil for a record
    /// the plan leaves out). Without shards (views drawn from a recipe), the plan is one shard of one block.
    private static func layout(plan: [PlanItem], epochShards: [ShardReader]?) -> (RecordOrder, (RecordOrder.Item) -> PlanItem?) {
        guard let epochShards else {
            let one = RecordOrder(shards: [.init(rank: 0, records: plan.count, recordsPerBlock: max(plan.count, 1))])
            return (one, { plan[$0.ordinal] })
        }
        let layout = RecordOrder(shards: epochShards.map {
            .init(rank: $0.schema.rank, records: $0.recordCount, recordsPerBlock: $0.schema.recordsPerBlock)
        })
        var index: [Int: Int] = [:]
        index.reserveCapacity(plan.count)
        func key(_ shard: Int, _ ordinal: Int) -> Int { shard << 40 | ordinal }
        for (i, item) in plan.enumerated() { index[key(item.shard, item.ordinal)] = i }
        return (layout, { item in index[key(item.shard, item.ordinal)].map { plan[$0] } })
    }
}
