import Distill
import Foundation
import ShardFormat

/// What ``PassAnalysis`` found, in the shape of `analysis.json` (Spec/ANALYZE.md names every field's meaning).
public struct AnalysisResult: Codable, Sendable {
    /// How often the teacher's stored classes hold the label, over some records (Spec/ANALYZE.md 1).
    public struct Agreement: Codable, Sendable {
        /// Records counted.
        public var records: Int
        /// Share of them whose first stored class is the label, 0...1.
        public var top1: Double
        /// Share of them whose first n stored classes hold the label, 0...1.
        public var topN: Double
    }

    /// Agreement over one epoch's records.
    public struct EpochAgreement: Codable, Sendable {
        /// The epoch.
        public var epoch: Int
        /// Its agreement.
        public var agreement: Agreement
    }

    /// Agreement over the records of one label.
    public struct ClassAgreement: Codable, Sendable {
        /// The label (class index).
        public var label: Int
        /// Its agreement.
        public var agreement: Agreement
    }

    /// Per image, over the images with records: mean shares and 10-bin histograms of top-1 and top-n shares.
    public struct ImageAgreement: Codable, Sendable {
        /// Images with at least one record.
        public var images: Int
        /// Mean over those images of the share of their records that are top-1.
        public var meanTop1Share: Double
        /// Mean over those images of the share of their records that are top-n.
        public var meanTopNShare: Double
        /// Images per bin ⌊10 · top-1 share⌋ (a share of 1 in bin 9).
        public var top1Histogram: [Int]
        /// Images per bin ⌊10 · top-n share⌋ (a share of 1 in bin 9).
        public var topNHistogram: [Int]
    }

    /// An image whose label is outside the teacher's top-n in at least the hard share of its records (Spec/ANALYZE.md
    /// 2).
    public struct HardSample: Codable, Sendable {
        /// The image's sample id.
        public var sampleID: UInt32
        /// The image's key.
        public var key: String = ""
        /// The image's label.
        public var label: Int
        /// The image's records over all epochs.
        public var records: Int
        /// Share of those records whose top-n misses the label, 0...1.
        public var missShare: Double
        /// The three candidate classes (Spec/ANALYZE.md 2), by mean stored value descending.
        public var topClasses: [Int]
        /// The mean stored value of each of ``topClasses``, over the image's records (0 where absent).
        public var topMeans: [Double]
    }

    /// The probability mass the top k keep (Spec/ANALYZE.md 3).
    public struct MassRow: Codable, Sendable {
        /// k, 1...K.
        public var k: Int
        /// Mean over records of the sum of the first k stored values.
        public var mean: Double
        /// 10th percentile of that sum (from a 4,096-bin histogram).
        public var p10: Double
        /// Median of that sum (from a 4,096-bin histogram).
        public var p50: Double
        /// 90th percentile of that sum (from a 4,096-bin histogram).
        public var p90: Double
        /// Mean of max(0, 1 − mass) / (C − k): what each unstored class gets.
        public var residual: Double
        /// Bytes per record of a shard storing only the top k (writer-dependent; nil when not measured).
        public var bytesPerRecord: Double?
    }

    /// Two classes and the Pearson correlation of their soft labels (Spec/ANALYZE.md 4).
    public struct Pair: Codable, Sendable {
        /// The lower class index.
        public var a: Int
        /// The higher class index.
        public var b: Int
        /// corr_ab, −1...1.
        public var correlation: Double
    }

    /// N, the records read over every epoch.
    public var records: Int
    /// C, the dataset's classes.
    public var classes: Int
    /// K, the entries stored per record.
    public var k: Int
    /// n of top-n (min(5, K)).
    public var n: Int
    /// Agreement over every record (nil without the store's labels).
    public var overall: Agreement?
    /// Agreement per epoch, ascending (empty without labels).
    public var perEpoch: [EpochAgreement]
    /// Agreement per label, ascending (empty without labels).
    public var perClass: [ClassAgreement]
    /// Per-image shares and histograms (nil without labels).
    public var perImage: ImageAgreement?
    /// h: an image is hard when its top-n miss share is at least this.
    public var hardShareThreshold: Double
    /// Hard images over images with records (nil without labels).
    public var hardImageShare: Double?
    /// The hard images, by miss share descending, then key ascending.
    public var hardSamples: [HardSample]
    /// One row per k = 1...K.
    public var massByK: [MassRow]
    /// Records used for the correlation: every `correlationStride`-th.
    public var correlationRecords: Int
    /// m: 1 when every record is used, else ⌈N·K² / 2^31⌉.
    public var correlationStride: Int
    /// The classes of the correlation matrix, ascending (all C when C ≤ 4,096).
    public var correlationClasses: [Int]
    /// The 20 most correlated pairs, by correlation descending, then (a, b) ascending.
    public var topPairs: [Pair]
    /// Pearson correlation between the teacher's and a student's class correlations (i < j), when measured.
    public var studentSimilarity: Double?
    /// Parts left out, and why (no labels, no replayable views).
    public var skipped: [String]
    /// The matrix itself (row-major over `correlationClasses`): written to correlation.npy, not to the JSON.
    public var matrix: [Double] = []
    /// Positions in the matrix of the classes the heatmap shows (Spec/ANALYZE.md 4: at most 100, the most
    /// frequent top-1 classes, ascending); not in the JSON.
    public var heatmapPositions: [Int] = []

    enum CodingKeys: String, CodingKey {
        case records, classes, k, n, overall, perEpoch = "per_epoch", perClass = "per_class", perImage = "per_image"
        case hardShareThreshold = "hard_share_threshold", hardImageShare = "hard_image_share", hardSamples = "hard_samples"
        case massByK = "mass_by_k", correlationRecords = "correlation_records", correlationStride = "correlation_stride"
        case correlationClasses = "correlation_classes", topPairs = "top_pairs", studentSimilarity = "student_similarity", skipped
    }

    init(first: FirstPass, second: SecondPass, options: PassAnalysis.Options, records: Int, k: Int, classes: Int,
         bytesPerRecord: [Double]) {
        func agreement(_ counts: [Int]) -> Agreement {
            Agreement(records: counts[0], top1: counts[0] > 0 ? Double(counts[1]) / Double(counts[0]) : 0,
                      topN: counts[0] > 0 ? Double(counts[2]) / Double(counts[0]) : 0)
        }
        self.records = records
        self.classes = classes
        self.k = k
        n = first.n
        hardShareThreshold = options.hardShare
        let labelled = first.labels != nil
        overall = labelled ? agreement(first.perEpoch.reduce([0, 0, 0]) { zip($0, $1).map(+) }) : nil
        perEpoch = labelled ? zip(first.epochs, first.perEpoch).map { EpochAgreement(epoch: $0, agreement: agreement($1)) } : []
        perClass = first.perClass.enumerated().compactMap { $1[0] > 0 ? ClassAgreement(label: $0, agreement: agreement($1)) : nil }
        perImage = labelled ? Self.imageAgreement(first) : nil
        let imagesWithRecords = first.imageRecords.filter { $0 > 0 }.count
        hardImageShare = labelled ? Double(second.hard.count) / Double(max(1, imagesWithRecords)) : nil
        hardSamples = second.hard.enumerated().map { slot, id in
            let m = Double(first.imageRecords[Int(id)])
            let candidates = (0..<3).compactMap { c -> (Int, Double)? in
                let cls = second.candidates[3 * slot + c]
                return cls < 0 ? nil : (Int(cls), second.candidateSums[3 * slot + c] / m)
            }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
            return HardSample(sampleID: id, label: Int(first.labels![Int(id)]), records: Int(m),
                              missShare: Double(first.imageMisses[Int(id)]) / m, topClasses: candidates.map(\.0),
                              topMeans: candidates.map(\.1))
        }
        massByK = (0..<k).map { j in
            MassRow(k: j + 1, mean: first.massSum[j] / Double(max(1, first.records)), p10: first.percentile(10, k: j),
                    p50: first.percentile(50, k: j), p90: first.percentile(90, k: j),
                    residual: first.residualSum[j] / Double(max(1, first.records)), bytesPerRecord: j < bytesPerRecord.count ? bytesPerRecord[j] : nil)
        }
        correlationRecords = second.used
        correlationStride = second.stride
        correlationClasses = second.selected
        matrix = second.correlation()
        let width = second.selected.count
        var pairs: [Pair] = []
        for i in 0..<width {
            for j in (i + 1)..<max(i + 1, width) { pairs.append(Pair(a: second.selected[i], b: second.selected[j], correlation: matrix[i * width + j])) }
        }
        topPairs = Array(pairs.sorted { $0.correlation != $1.correlation ? $0.correlation > $1.correlation : ($0.a, $0.b) < ($1.a, $1.b) }.prefix(20))
        skipped = labelled ? [] : ["agreement and hard samples: no image store (labels) was given"]
    }

    private static func imageAgreement(_ first: FirstPass) -> ImageAgreement {
        var top1 = [Int](repeating: 0, count: 10), topN = top1
        var sumTop1 = 0.0, sumTopN = 0.0, images = 0
        for id in 0..<first.imageRecords.count where first.imageRecords[id] > 0 {
            let m = Double(first.imageRecords[id])
            let a = Double(first.imageTop1[id]) / m, b = (m - Double(first.imageMisses[id])) / m
            sumTop1 += a
            sumTopN += b
            top1[min(9, Int(a * 10))] += 1
            topN[min(9, Int(b * 10))] += 1
            images += 1
        }
        return ImageAgreement(images: images, meanTop1Share: sumTop1 / Double(max(1, images)),
                              meanTopNShare: sumTopN / Double(max(1, images)), top1Histogram: top1, topNHistogram: topN)
    }

    /// Hard samples in report order (share descending, then key bytes ascending), with their keys.
    mutating func orderHardSamples(keys: KeyTable) {
        for i in hardSamples.indices { hardSamples[i].key = keys.key(Int(hardSamples[i].sampleID)) }
        hardSamples.sort { a, b in
            a.missShare != b.missShare ? a.missShare > b.missShare : Array(a.key.utf8).lexicographicallyPrecedes(Array(b.key.utf8))
        }
    }
}

/// Bytes per record this format would take storing only the top k of each record (Spec/ANALYZE.md 3): the
/// first records of the first epoch, truncated, written by this project's writer.
enum TopKBytes {
    static func measure(_ dataset: ShardDataset, records wanted: Int) throws -> [Double] {
        guard let epoch = dataset.epochs.first else { return [] }
        var records: [ShardRecord] = []
        for shard in dataset.shards(epoch: epoch).sorted(by: { $0.schema.rank < $1.schema.rank }) where records.count < wanted {
            let cursor = shard.makeCursor()
            for ordinal in 0..<min(shard.recordCount, wanted - records.count) { records.append(try cursor.record(at: ordinal)) }
        }
        guard !records.isEmpty, let first = dataset.shards(epoch: epoch).first else { return [] }
        let folder = NSTemporaryDirectory() + "tinyshard-topk-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        return try (1...dataset.manifest.k).map { k in
            var schema = first.schema
            schema.k = k
            schema.recordsPerBlock = ShardSchema.defaultRecordsPerBlock(k: k)
            let writer = try ShardWriter(path: folder + "/k\(k).tshard", schema: schema)
            for record in records {
                try writer.append(sampleID: record.sampleID, indices: Array(record.indices.prefix(k)),
                                  values: Array(record.values.prefix(k)), augmentation: record.augmentation)
            }
            return Double(try writer.finish().bytes) / Double(records.count)
        }
    }
}
