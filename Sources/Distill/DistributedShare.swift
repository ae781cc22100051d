/// One rank's share of an epoch, as PyTorch's `DistributedSampler` (shuffle, `drop_last=False`) deals it:
/// the epoch order is padded with its own first items to `total = ⌈n / ranks⌉ · ranks` (repeated if the
/// padding is longer than the order), and rank r takes positions r, r + ranks, r + 2·ranks, … . Every rank
/// gets the same count, so ranks take the same number of batches; the padded items are duplicates, which
/// the format allows across shards of one epoch (Spec/FORMAT.md section 2: lookup then uses the lowest rank).
public struct DistributedShare: Sendable, Equatable {
    /// This rank, 0..<``ranks``.
    public let rank: Int
    /// The number of ranks, at least 1.
    public let ranks: Int

    /// The share of rank `rank` of `ranks`; throws an `invalid_argument` error when `rank` is not in 0..<ranks.
    public init(rank: Int, ranks: Int) throws {
        guard ranks >= 1, (0..<ranks).contains(rank) else {
            throw DistillError(.invalidArgument, "rank \(rank) is not one of 0..<\(ranks)")
        }
        self.rank = rank
        self.ranks = ranks
    }

    /// Items per rank for an epoch of `count` items.
    public func perRank(_ count: Int) -> Int { (count + ranks - 1) / ranks }

    /// This rank's items of `order`, in order.
    public func items<T>(of order: [T]) -> [T] {
        guard !order.isEmpty else { return [] }
        let total = perRank(order.count) * ranks
        return stride(from: rank, to: total, by: ranks).map { order[$0 % order.count] }
    }
}
