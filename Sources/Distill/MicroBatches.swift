/// How one optimiser step's global batch is cut: `ranks × accumulate` micro-batches of equal size, micro-batch
/// number p reading stream p of the epoch (`EpochStreams`); rank r's micro-batch m is number `r · accumulate + m`. So `mpirun -np 2` with one
/// micro-batch per rank and one process with `--accumulate 2` see exactly the same micro-batches (and
/// the same drop-path draws, which follow the micro-batch's number), and BatchNorm normalises over the
/// same images in both.
public struct MicroBatches: Sendable, Equatable {
    /// Images per optimiser step over all ranks.
    public let globalBatch: Int
    /// The number of ranks.
    public let ranks: Int
    /// This rank.
    public let rank: Int
    /// Micro-batches per rank per step.
    public let accumulate: Int

    /// The cut of `globalBatch`; throws an `invalid_argument` error when `accumulate` < 1, `rank` is not in 0..<ranks,
    /// the global batch does not split into `ranks × accumulate` equal micro-batches, or a micro-batch would hold fewer
    /// than 2 images (BatchNorm needs 2).
    public init(globalBatch: Int, ranks: Int, rank: Int, accumulate: Int) throws {
        guard accumulate >= 1 else { throw DistillError(.invalidArgument, "--accumulate must be ≥ 1, got \(accumulate)") }
        guard ranks >= 1, (0..<ranks).contains(rank) else {
            throw DistillError(.invalidArgument, "rank \(rank) is not one of 0..<\(ranks)")
        }
        let parts = ranks * accumulate
        guard globalBatch % parts == 0 else {
            throw DistillError(.invalidArgument, "the batch of \(globalBatch) does not split into \(ranks) rank\(ranks > 1 ? "s" : "") × \(accumulate) micro-batch\(accumulate > 1 ? "es" : "") of equal size")
        }
        guard globalBatch / parts >= 2 else {
            throw DistillError(.invalidArgument, "the batch of \(globalBatch) split into \(ranks) rank\(ranks > 1 ? "s" : "") × \(accumulate) micro-batch\(accumulate > 1 ? "es" : "") leaves \(globalBatch / parts) image\(globalBatch / parts == 1 ? "" : "s") per micro-batch; BatchNorm needs at least 2")
        }
        self.globalBatch = globalBatch
        self.ranks = ranks
        self.rank = rank
        self.accumulate = accumulate
    }

    /// Images per micro-batch.
    public var size: Int { globalBatch / (ranks * accumulate) }
    /// Micro-batches in one step over all ranks.
    public var perStep: Int { ranks * accumulate }

    /// The global number of this rank's micro-batch `micro` within a step.
    public func number(_ micro: Int) -> Int { rank * accumulate + micro }

    /// Positions, in its stream (``number(_:)``), of a micro-batch of step `step` (of the epoch).
    public func positions(step: Int) -> Range<Int> { (step * size)..<((step + 1) * size) }
}
