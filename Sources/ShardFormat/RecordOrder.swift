/// The record-order sampler (Spec/RECORD-ORDER.md): each rank of any world size gets its share of an epoch's
/// stored records in whole blocks and in stored order, optionally shuffled further inside windows of blocks.
/// A pure function of the epoch's shard sizes, so that every rank (and the Python implementation) computes
/// the same shares without talking to the others.
public struct RecordOrder: Sendable, Equatable {
    /// One shard of the epoch as the sampler sees it.
    public struct Shard: Sendable, Equatable {
        /// The rank that wrote the shard.
        public var rank: Int
        /// The shard's record count.
        public var records: Int
        /// R, records per block (the last block may hold fewer).
        public var recordsPerBlock: Int
        /// A shard as its header and footer describe it.
        public init(rank: Int, records: Int, recordsPerBlock: Int) {
            self.rank = rank
            self.records = records
            self.recordsPerBlock = recordsPerBlock
        }
    }

    /// One record: the position of its shard in ``shards`` (ascending rank) and its ordinal there.
    public struct Item: Sendable, Equatable {
        /// Index into ``RecordOrder/shards``.
        public var shard: Int
        /// The record's ordinal in that shard.
        public var ordinal: Int
        /// The record at `ordinal` of shard number `shard`.
        public init(shard: Int, ordinal: Int) {
            self.shard = shard
            self.ordinal = ordinal
        }
    }

    /// The epoch's shards in ascending rank.
    public let shards: [Shard]
    /// N, the epoch's records.
    public let count: Int
    private let firstPosition: [Int]

    /// The order of an epoch with these shards (any order; they are sorted by rank).
    public init(shards: [Shard]) {
        self.shards = shards.sorted { $0.rank < $1.rank }
        var first: [Int] = []
        var total = 0
        for shard in self.shards {
            first.append(total)
            total += shard.records
        }
        firstPosition = first
        count = total
    }

    /// The epoch's shards of a dataset, as the sampler sees them.
    public init(epoch: Int, of dataset: ShardDataset) {
        self.init(shards: dataset.shards(epoch: epoch).map {
            Shard(rank: $0.schema.rank, records: $0.recordCount, recordsPerBlock: $0.schema.recordsPerBlock)
        })
    }

    /// q = ⌈N / W⌉: the records every rank reads.
    public func share(world: Int) -> Int { (count + world - 1) / world }

    /// Rank `rank` of `world`'s records, in the order it reads them (Spec/RECORD-ORDER.md, Output).
    /// - Throws: ``ShardError`` `.invalidArgument` naming both numbers when the world or rank cannot be cut:
    ///   world < 1, rank outside 0..<world, or fewer records than ranks.
    public func items(world: Int, rank: Int, window: Int = 0, seed: UInt64 = 0, epoch: UInt64 = 0) throws -> [Item] {
        guard world >= 1, (0..<world).contains(rank) else {
            throw ShardError(.invalidArgument, "rank \(rank) is not one of a world of \(world) ranks")
        }
        guard count >= world else {
            throw ShardError(.invalidArgument, "an epoch of \(count) records cannot be cut into \(world) ranks' shares")
        }
        guard window >= 0 else { throw ShardError(.invalidArgument, "the shuffle window must be ≥ 0, got \(window)") }
        let pieces = self.pieces(world: world, rank: rank)
        guard window > 0 else { return pieces.flatMap(\.self) }
        let base = Mix64.mix(seed ^ 0x5245_434F_5244_2D31)
        let kt = Mix64.mix(base &+ (epoch &+ 1) &* Mix64.golden)
        let kr = Mix64.mix(kt &+ UInt64(rank + 1) &* Mix64.golden)
        let pieceOrder = Self.ordered(count: pieces.count, key: kr)
        var out: [Item] = []
        out.reserveCapacity(share(world: world))
        let windowBase = Mix64.mix(kr ^ 0x5749_4E44_4F57_0000)
        for (v, start) in stride(from: 0, to: pieceOrder.count, by: window).enumerated() {
            let records = pieceOrder[start..<min(pieceOrder.count, start + window)].flatMap { pieces[$0] }
            let kv = Mix64.mix(windowBase &+ UInt64(v + 1) &* Mix64.golden)
            out += Self.ordered(count: records.count, key: kv).map { records[$0] }
        }
        return out
    }

    /// The rank's positions (r·q + i) mod N, cut into runs inside one block of one shard.
    func pieces(world: Int, rank: Int) -> [[Item]] {
        let q = share(world: world)
        var pieces: [[Item]] = []
        var current: [Item] = []
        var currentBlock = (-1, -1)
        for i in 0..<q {
            let item = self.item(atPosition: (rank * q + i) % count)
            let block = (item.shard, item.ordinal / shards[item.shard].recordsPerBlock)
            let follows = current.last.map { $0.shard == item.shard && $0.ordinal + 1 == item.ordinal } ?? false
            if !current.isEmpty && (block != currentBlock || !follows) {
                pieces.append(current)
                current = []
            }
            current.append(item)
            currentBlock = block
        }
        if !current.isEmpty { pieces.append(current) }
        return pieces
    }

    func item(atPosition p: Int) -> Item {
        var low = 0, high = shards.count  // the last shard whose first position is ≤ p
        while high - low > 1 {
            let middle = (low + high) / 2
            if firstPosition[middle] <= p { low = middle } else { high = middle }
        }
        return Item(shard: low, ordinal: p - firstPosition[low])
    }

    /// 0..<count in ascending order of (mix64(key + (i + 1)·G), i).
    static func ordered(count: Int, key: UInt64) -> [Int] {
        let keys = (0..<count).map { Mix64.mix(key &+ UInt64($0 + 1) &* Mix64.golden) }
        return (0..<count).sorted { keys[$0] != keys[$1] ? keys[$0] < keys[$1] : $0 < $1 }
    }
}
