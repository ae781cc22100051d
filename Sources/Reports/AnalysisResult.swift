import Distill
import Foundation
import ShardFormat

/// What ``PassAnalysis`` found, in the shape of `analysis.json` (Spec/ANALYZE.md names every field's meaning).
public struct AnalysisResult: Codable, Sendable {
    public struct Agreement: Codable, Sendable {
        public var records: Int
        public var top1: Double
        public var topN: Double
    }

    public struct EpochAgreement: Codable, Sendable {
        public var epoch: Int
        public var agreement: Agreement
    }

    public struct ClassAgreement: Codable, Sendable {
        public var label: Int
        public var agreement: Agreement
    }

    /// Per image, over the images with records: mean shares and 10-bin histograms of top-1 and top-n shares.
    public struct ImageAgreement: Codable, Sendable {
        public var images: Int
        public var meanTop1Share: Double
        public var meanTopNShare: Double
        public var top1Histogram: [Int]
        public var topNHistogram: [Int]
    }

    public struct HardSample: Codable, Sendable {
        public var sampleID: UInt32
        public var key: String = ""
        public var label: Int
        public var records: Int
        public var missShare: Double
        /// The three candidate classes (Spec/ANALYZE.md 2), by mean stored value descending.
        public var topClasses: [Int]
        public var topMeans: [Double]
    }

    public struct MassRow: Codable, Sendable {
        public var k: Int
        public var mean: Double
        public var p10: Double
        public var p50: Double
        public var p90: Double
        public var residual: Double
        public var bytesPerRecord: Double?
    }

    public struct Pair: Codable, Sendable {
        public var a: Int
        public var b: Int
        public var correlation: Double
    }

    public var records: Int
    public var classes: Int
    public var k: Int
    /// n of top-n (min(5, K)).
    public var n: Int
    public var overall: Agreement?
    public var perEpoch: [EpochAgreement]
    public var perClass: [ClassAgreement]
    public var perImage: ImageAgreement?
    public var hardShareThreshold: Double
    public var hardImageShare: Double?
    public var hardSamples: [HardSample]
    public var massByK: [MassRow]
    /// Records used for the correlation: every `correlationStride`-th.
    public var correlationRecords: Int
    public var correlationStride: Int
    public var correlationClasses: [Int]
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
            schema.recordsPerBlock = TeacherPass.Options(epochs: 1, k: k).recordsPerBlock
            let writer = try ShardWriter(path: folder + "/k\(k).tshard", schema: schema)
            for record in records {
                try writer.append(sampleID: record.sampleID, indices: Array(record.indices.prefix(k)),
                                  values: Array(record.values.prefix(k)), augmentation: record.augmentation)
            }
            return Double(try writer.finish().bytes) / Double(records.count)
        }
    }
}
