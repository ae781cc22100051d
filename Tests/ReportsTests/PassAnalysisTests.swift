import DistillTestSupport
import Foundation
import ImageStore
import ShardFormat
import XCTest
@testable import Distill
@testable import Reports

/// `PassAnalysis` (Spec/ANALYZE.md) against the same numbers computed the plain way from every record.
final class PassAnalysisTests: XCTestCase {
    struct Plain {
        var top1 = 0, topN = 0, records = 0
        var perImage: [UInt32: (records: Int, misses: Int)] = [:]
        var masses: [[Double]] = []
        var dense: [[Double]] = []
    }

    /// Every record read one at a time, the dense rows widened: the definitions with nothing clever.
    func plain(_ dataset: ShardDataset, labels: [Int]) throws -> Plain {
        var out = Plain()
        let classes = dataset.manifest.classes, k = dataset.manifest.k
        out.masses = Array(repeating: [], count: k)
        for epoch in dataset.epochs {
            for shard in dataset.shards(epoch: epoch).sorted(by: { $0.schema.rank < $1.schema.rank }) {
                for ordinal in 0..<shard.recordCount {
                    let record = try shard.record(at: ordinal)
                    let label = Int32(labels[Int(record.sampleID)])
                    out.records += 1
                    if record.indices[0] == label { out.top1 += 1 }
                    let inTop = record.indices.prefix(min(5, k)).contains(label)
                    if inTop { out.topN += 1 }
                    var image = out.perImage[record.sampleID] ?? (0, 0)
                    image.records += 1
                    if !inTop { image.misses += 1 }
                    out.perImage[record.sampleID] = image
                    var mass = 0.0
                    for j in 0..<k { mass += Double(record.values[j]); out.masses[j].append(mass) }
                    var row = [Float](repeating: 0, count: classes)
                    try row.withUnsafeMutableBufferPointer { try shard.makeCursor().dense([ordinal], into: $0) }
                    out.dense.append(row.map(Double.init))
                }
            }
        }
        return out
    }

    func testTheAnalysisIsTheDefinitions() throws {
        let dir = try Fixture.temporaryDirectory("analysis")
        let store = try Fixture.store(count: 60, in: dir)
        _ = try Fixture.teacherPass(store: store, directory: dir + "/shards", epochs: 3, k: 4)
        let dataset = try ShardDataset(directory: dir + "/shards")
        let keys = try dataset.keys.loadAll()
        let labels = try (0..<keys.count).map { try store.label(at: store.index(ofKey: keys.key($0))!) }
        var options = PassAnalysis.Options()
        options.hardShare = 0.34  // the tiny teacher is often wrong: some images are hard at this share
        let analysis = try PassAnalysis(dataset: dataset, store: store, options: options)
        let result = try analysis.run()
        let plain = try plain(dataset, labels: labels)

        XCTAssertEqual(result.records, plain.records)
        XCTAssertEqual(result.overall?.records, plain.records)
        XCTAssertEqual(result.overall?.top1, Double(plain.top1) / Double(plain.records))
        XCTAssertEqual(result.overall?.topN, Double(plain.topN) / Double(plain.records))
        XCTAssertEqual(result.perEpoch.map(\.agreement.records).reduce(0, +), plain.records)
        XCTAssertEqual(result.perClass.map(\.agreement.records).reduce(0, +), plain.records)
        let hard = plain.perImage.filter { Double($0.value.misses) / Double($0.value.records) >= 0.34 }
        XCTAssertFalse(hard.isEmpty, "the test wants some hard images")
        XCTAssertEqual(Set(result.hardSamples.map(\.sampleID)), Set(hard.keys))
        XCTAssertEqual(result.hardImageShare, Double(hard.count) / Double(plain.perImage.count))
        let shares = result.hardSamples.map(\.missShare)
        XCTAssertEqual(shares, shares.sorted(by: >), "hard samples are listed hardest first")
        XCTAssertEqual(try analysis.hardSampleKeys().sorted(), result.hardSamples.map(\.key).sorted())

        for (j, row) in result.massByK.enumerated() {
            let masses = plain.masses[j]
            XCTAssertEqual(row.mean, masses.reduce(0, +) / Double(masses.count), accuracy: 1e-12)
            for (p, value) in [(10.0, row.p10), (50.0, row.p50), (90.0, row.p90)] {
                let rank = Int((p / 100 * Double(masses.count)).rounded(.up))
                let element = masses.sorted()[rank - 1]
                XCTAssertEqual(value, Double(min(4095, Int(element * 4096)) + 1) / 4096, "k \(j + 1), p\(p)")
            }
            XCTAssertNotNil(row.bytesPerRecord)
        }
        XCTAssertEqual(result.massByK.last?.residual ?? -1,
                       plain.masses[3].map { max(0, 1 - $0) / 6 }.reduce(0, +) / Double(plain.records), accuracy: 1e-15)

        // Pearson of the dense rows, computed plainly.
        let classes = dataset.manifest.classes, n = Double(plain.dense.count)
        XCTAssertEqual(result.correlationRecords, plain.dense.count)
        for i in 0..<classes {
            for j in 0..<classes {
                let xi = plain.dense.map { $0[i] }, xj = plain.dense.map { $0[j] }
                let mi = xi.reduce(0, +) / n, mj = xj.reduce(0, +) / n
                let cov = zip(xi, xj).map { ($0 - mi) * ($1 - mj) }.reduce(0, +)
                let vi = xi.map { ($0 - mi) * ($0 - mi) }.reduce(0, +), vj = xj.map { ($0 - mj) * ($0 - mj) }.reduce(0, +)
                let expected = vi > 0 && vj > 0 ? cov / (vi * vj).squareRoot() : 0
                XCTAssertEqual(result.matrix[i * classes + j], expected, accuracy: 1e-9, "(\(i), \(j))")
            }
        }
        XCTAssertEqual(result.topPairs.count, 20)

        // A student trained nowhere still gets a similarity in -1...1; the teacher against itself is 1.
        XCTAssertEqual(StudentCorrelation.pairCorrelation(result.matrix, result.matrix, width: classes), 1, accuracy: 1e-12)
        let similarity = try StudentCorrelation.similarity(model: try Fixture.teacher(), store: store, analysis: analysis, teacher: result)
        // Its full softmax against its stored top 4 (the rest spread evenly): close, not equal.
        XCTAssertGreaterThan(similarity, 0.9, "the teacher's own outputs on its stored views follow its stored labels")
    }

    func testShardsItCannotReadAreRefused() throws {
        let dir = try Fixture.temporaryDirectory("analysis-bad")
        let store = try Fixture.store(count: 20, in: dir)
        _ = try Fixture.teacherPass(store: store, directory: dir + "/shards", epochs: 1, k: 3)
        try FileManager.default.createDirectory(atPath: dir + "/other", withIntermediateDirectories: true)
        let other = try Fixture.store(count: 12, in: dir + "/other")
        XCTAssertThrowsError(try PassAnalysis(dataset: try ShardDataset(directory: dir + "/shards"), store: other)) { error in
            XCTAssertTrue("\(error)".contains("[mismatch]") && "\(error)".contains("has no image with the dataset's key"), "\(error)")
        }
    }
}
