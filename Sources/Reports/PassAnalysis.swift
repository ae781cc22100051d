import Distill
import Foundation
import ImageStore
import ShardFormat

/// What the stored teacher knows (Spec/ANALYZE.md): agreement with the labels, hard samples, the mass each
/// top-k keeps, and the class correlations of its soft labels, from the shards (and the image store's labels).
///
/// Two passes over the records (epochs ascending, shards by rank, ordinals ascending): the first counts
/// agreement, the mass histograms and top-1 frequencies; the second sums the class correlations (every m-th
/// record) and the values of the hard images' records. Memory is per key (a few bytes) and per class pair of
/// the correlation matrix, never per record.
public struct PassAnalysis {
    /// What an analysis computes and how much it may spend.
    public struct Options: Sendable {
        /// Share of an image's records whose label is outside the teacher's top-n at which it is hard.
        public var hardShare: Double = 0.5
        /// Records whose top-k bytes are measured (Spec/ANALYZE.md 3).
        public var bytesSampleRecords = 16_384
        /// The most N·K² terms the correlation sums may take; above it every m-th record is used (2^31, Spec/ANALYZE.md
        /// 4).
        public var correlationBudget = 1 << 31
        /// The most classes the correlation matrix keeps (the most frequent top-1 classes).
        public var maxCorrelationClasses = 4096
        /// The most classes the heatmap shows.
        public var heatmapClasses = 100
        /// The defaults of Spec/ANALYZE.md.
        public init() {}
    }

    /// The dataset analysed.
    public let dataset: ShardDataset
    /// C, the dataset's classes.
    public let classes: Int
    /// K, the entries stored per record.
    public let k: Int
    /// Labels by sample id (-1: none), when a store was given.
    let labels: [Int32]?
    let options: Options

    /// - Throws: `DistillError` naming the shard that is not a sorted probability shard, or the key the store
    ///   lacks.
    public init(dataset: ShardDataset, store: ImageStore?, options: Options = Options()) throws {
        self.dataset = dataset
        classes = dataset.manifest.classes
        k = dataset.manifest.k
        self.options = options
        for shard in dataset.shards where shard.schema.valueKind != .probability || !shard.schema.sorted {
            throw DistillError(.invalidArgument, "analyze reads sorted probability shards; this one stores "
                               + (shard.schema.valueKind != .probability ? "logits" : "unsorted values"), file: shard.path)
        }
        guard let store else {
            labels = nil
            return
        }
        guard store.classCount == 0 || store.classCount == classes else {
            throw DistillError(.mismatch, "the store has \(store.classCount) classes, the shards \(classes)", file: store.path)
        }
        var labels = [Int32](repeating: -1, count: dataset.keys.count)
        let table = try dataset.keys.loadAll()
        for id in 0..<table.count {
            guard let index = store.index(ofKey: table.key(id)) else {
                throw DistillError(.mismatch, "the store has no image with the dataset's key '\(table.key(id))'", file: store.path)
            }
            labels[id] = Int32(try store.label(at: index))
        }
        self.labels = labels
    }

    /// The records a pass reads, block by block: (epoch, shard, first ordinal, sample ids, indices, values).
    func forEachBlock(_ body: (_ epoch: Int, _ position: Int, _ ids: [UInt32], _ indices: UnsafeBufferPointer<Int32>,
                               _ values: UnsafeBufferPointer<Float>) throws -> Void,
                      progress: ((Int) -> Void)? = nil) throws {
        var position = 0
        var indices = [Int32](), values = [Float]()
        for epoch in dataset.epochs {
            for shard in dataset.shards(epoch: epoch).sorted(by: { $0.schema.rank < $1.schema.rank }) {
                let cursor = shard.makeCursor()
                var released = 0
                for b in 0..<shard.blockCount {
                    let range = shard.ordinals(ofBlock: b)
                    if indices.count != range.count * k {
                        indices = [Int32](repeating: 0, count: range.count * k)
                        values = [Float](repeating: 0, count: range.count * k)
                    }
                    try indices.withUnsafeMutableBufferPointer { i in
                        try values.withUnsafeMutableBufferPointer { v in try cursor.sparse(range, indices: i, values: v) }
                    }
                    let ids = try range.map { try cursor.sampleID(at: $0) }
                    try indices.withUnsafeBufferPointer { i in
                        try values.withUnsafeBufferPointer { v in try body(epoch, position, ids, i, v) }
                    }
                    position += range.count
                    progress?(position)
                    if b % 64 == 63 { released = shard.releasePages(from: released, upToBlock: b + 1) }
                }
            }
        }
    }

    /// Records in the dataset.
    public var recordCount: Int { dataset.shards.reduce(0) { $0 + $1.recordCount } }

    /// The hard images' keys (Spec/ANALYZE.md 2), from the first pass alone: what `train --exclude-hard` leaves out.
    public func hardSampleKeys(progress: ((Int, Int) -> Void)? = nil) throws -> [String] {
        guard labels != nil else { throw DistillError(.usage, "hard samples need the image store's labels") }
        let total = recordCount
        var first = FirstPass(classes: classes, k: k, keys: dataset.keys.count, epochs: dataset.epochs, labels: labels)
        try forEachBlock({ epoch, _, ids, indices, values in try first.add(epoch: epoch, ids: ids, indices: indices, values: values) },
                         progress: { progress?($0, total) })
        let keys = try dataset.keys.loadAll()
        return first.hardImages(share: options.hardShare).map { keys.key(Int($0)) }
    }

    /// Both passes. `progress(done, total)` counts records over the two passes.
    public func run(progress: ((Int, Int) -> Void)? = nil) throws -> AnalysisResult {
        let total = recordCount
        var first = FirstPass(classes: classes, k: k, keys: dataset.keys.count, epochs: dataset.epochs, labels: labels)
        try forEachBlock({ epoch, _, ids, indices, values in try first.add(epoch: epoch, ids: ids, indices: indices, values: values) },
                         progress: { progress?($0, 2 * total) })
        let hard = labels == nil ? [] : first.hardImages(share: options.hardShare)
        let selected = first.correlationClasses(limit: options.maxCorrelationClasses)
        let stride = max(1, Int((Double(total) * Double(k * k) / Double(options.correlationBudget)).rounded(.up)))
        var second = SecondPass(classes: classes, k: k, selected: selected, stride: stride, hard: hard, keys: dataset.keys.count)
        try forEachBlock({ _, position, ids, indices, values in second.add(position: position, ids: ids, indices: indices, values: values) },
                         progress: { progress?(total + $0, 2 * total) })
        var result = AnalysisResult(first: first, second: second, options: options, records: total, k: k, classes: classes,
                                    bytesPerRecord: try TopKBytes.measure(dataset, records: options.bytesSampleRecords))
        if !result.hardSamples.isEmpty { result.orderHardSamples(keys: try dataset.keys.loadAll()) }
        // The heatmap's classes are the most frequent of the matrix's (same counts, same tie rule), so all are in it.
        let position = Dictionary(uniqueKeysWithValues: selected.enumerated().map { ($1, $0) })
        result.heatmapPositions = first.correlationClasses(limit: options.heatmapClasses).compactMap { position[$0] }
        return result
    }
}

extension ShardReader {
    /// Lets go of the pages of blocks `..< block` from `start` on (a pass over gigabytes keeps little resident);
    /// returns where the next release starts.
    func releasePages(from start: Int, upToBlock block: Int) -> Int {
        let end = block < blockCount ? blockRange(block).lowerBound : fileSize
        releaseMappedPages(start..<end)
        return end
    }
}
