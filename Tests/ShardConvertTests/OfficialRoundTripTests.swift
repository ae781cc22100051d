import Foundation
import ShardFormat
import XCTest
@testable import ShardConvert

/// Official layout → dataset → official layout on both shared fixture sets, converted once per class.
final class OfficialRoundTripTests: XCTestCase {
    struct Converted {
        let source: String
        let fixture: OfficialFixture
        let summary: ConversionSummary
        let dataset: String
        let exported: String
        let progress: [ConversionProgress]
    }

    nonisolated(unsafe) static var folder: TemporaryFolder?
    nonisolated(unsafe) static var converted: [String: Converted] = [:]

    override class func tearDown() {
        folder = nil
        converted = [:]
        super.tearDown()
    }

    /// Converts and exports a fixture set on first use.
    func converted(_ name: String, classes: Int) throws -> Converted {
        if let done = Self.converted[name] { return done }
        let source = try SharedFixtures.official(name)
        let folder = Self.folder ?? TemporaryFolder("official")
        Self.folder = folder
        var progress: [ConversionProgress] = []
        let dataset = folder.file(name + "-dataset")
        let summary = try OfficialImporter.importDataset(
            from: source, to: dataset, options: OfficialImportOptions(classes: classes, teacher: "fixture-teacher", recordsPerBlock: 128),
            progress: { progress.append($0) })
        let exported = folder.file(name + "-exported")
        _ = try OfficialExporter.export(dataset: dataset, to: exported)
        let result = Converted(source: source, fixture: try OfficialFixture(path: source), summary: summary, dataset: dataset,
                               exported: exported, progress: progress)
        Self.converted[name] = result
        return result
    }

    func testIn1kExportIsByteIdenticalToTheDeduplicatedInput() throws {
        try checkByteIdentical(try converted("in1k_top10", classes: 1000))
    }

    func testIn22kExportIsByteIdenticalToTheDeduplicatedInput() throws {
        try checkByteIdentical(try converted("in22k_top100", classes: 21841))
    }

    func testIn1kDuplicatesAndLookups() throws {
        try checkDeduplicationAndLookups(try converted("in1k_top10", classes: 1000), k: 10, classes: 1000)
    }

    func testIn22kDuplicatesAndLookups() throws {
        try checkDeduplicationAndLookups(try converted("in22k_top100", classes: 21841), k: 100, classes: 21841)
    }

    func testConvertedDatasetVerifiesCleanWithProvenance() throws {
        let run = try converted("in1k_top10", classes: 1000)
        let report = ShardVerifier().verifyDataset(directory: run.dataset)
        XCTAssertTrue(report.isClean, "\(report.problems)")
        let dataset = try ShardDataset(directory: run.dataset)
        XCTAssertEqual(dataset.shards.count, 4)
        for shard in dataset.shards {
            let schema = shard.schema
            XCTAssertEqual(schema.augmentation, .seed)
            XCTAssertEqual(schema.valueKind, .probability)
            XCTAssertTrue(schema.sorted)
            XCTAssertEqual(schema.recordsPerBlock, 128)
            XCTAssertEqual(schema.provenance["source"], "official-tinyvit")
            XCTAssertEqual(schema.provenance["teacher"], "fixture-teacher")
            XCTAssertEqual(schema.provenance["writer"], "tinyshard \(TinyShardVersion.current)")
        }
        XCTAssertEqual(run.progress.last?.done, run.fixture.recordCount)
        XCTAssertEqual(run.progress.last?.total, run.fixture.recordCount)
    }

    private func checkByteIdentical(_ run: Converted) throws {
        let (ranks, _) = run.fixture.deduplicated()
        var files = Set<String>()
        for rank in ranks {
            let folder = "\(run.exported)/logits_top\(run.fixture.k)_epoch\(rank.epoch)"
            let keys = try Data(contentsOf: URL(fileURLWithPath: "\(folder)/rank\(rank.rank)-keys.txt"))
            let values = try Data(contentsOf: URL(fileURLWithPath: "\(folder)/rank\(rank.rank)-values.bin"))
            XCTAssertEqual(keys, Data(rank.keys.map { $0 + "\n" }.joined().utf8), "keys of epoch \(rank.epoch) rank \(rank.rank)")
            XCTAssertEqual(values, Data(rank.records.joined()), "values of epoch \(rank.epoch) rank \(rank.rank)")
            files.insert("logits_top\(run.fixture.k)_epoch\(rank.epoch)/rank\(rank.rank)-keys.txt")
            files.insert("logits_top\(run.fixture.k)_epoch\(rank.epoch)/rank\(rank.rank)-values.bin")
        }
        let written = Set(FileManager.default.enumerator(atPath: run.exported)!.compactMap { $0 as? String }.filter { $0.contains("/") })
        XCTAssertEqual(written, files)
        // Ranks without duplicates are byte-identical to the untouched input files.
        let untouched = run.fixture.ranks.filter { original in
            ranks.contains { $0.epoch == original.epoch && $0.rank == original.rank && $0.keys.count == original.keys.count }
        }
        XCTAssertGreaterThan(untouched.count, 0)
        for rank in untouched {
            let name = "logits_top\(run.fixture.k)_epoch\(rank.epoch)/rank\(rank.rank)-values.bin"
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: run.exported + "/" + name)),
                           try Data(contentsOf: URL(fileURLWithPath: run.source + "/" + name)))
        }
    }

    private func checkDeduplicationAndLookups(_ run: Converted, k: Int, classes: Int) throws {
        let (ranks, dropped) = run.fixture.deduplicated()
        XCTAssertEqual(dropped, 2, "the fixture puts one key in both ranks of each of its 2 epochs")
        XCTAssertEqual(run.summary.duplicatesDropped, dropped)
        XCTAssertEqual(run.summary.recordsRead, run.fixture.recordCount)
        XCTAssertEqual(run.summary.recordsWritten, run.fixture.recordCount - dropped)
        XCTAssertEqual(run.summary.k, k)
        XCTAssertEqual(run.summary.classes, classes)
        let allKeys = Set(run.fixture.ranks.flatMap(\.keys))
        XCTAssertEqual(run.summary.keys, allKeys.count)

        let dataset = try ShardDataset(directory: run.dataset)
        XCTAssertEqual(dataset.keys.count, allKeys.count)
        XCTAssertEqual(dataset.manifest.classes, classes)
        var cursors: [String: ShardCursor] = [:]  // one per shard: records come in order, blocks decode once
        for rank in ranks {
            for (key, bytes) in zip(rank.keys, rank.records) {
                guard let (shard, ordinal) = try dataset.locate(epoch: rank.epoch, key: key) else {
                    XCTFail("no record for (\(rank.epoch), \(key))")
                    continue
                }
                XCTAssertEqual(shard.schema.rank, rank.rank, "key \(key) must come from the lowest rank that has it")
                let cursor = cursors[shard.path] ?? shard.makeCursor()
                cursors[shard.path] = cursor
                let record = try cursor.record(at: ordinal)
                let expected = Self.parse(bytes, k: k)
                XCTAssertEqual(record.seed, expected.seed, "key \(key)")
                XCTAssertEqual(record.indices, expected.indices, "key \(key)")
                XCTAssertEqual(record.values.map(\.bitPattern), expected.valueBits, "key \(key)")
            }
        }
        // The dropped copy really is the higher rank's: its record differs from the one kept.
        for original in run.fixture.ranks where original.rank > 0 {
            let kept = ranks.first { $0.epoch == original.epoch && $0.rank == original.rank }!
            for (key, bytes) in zip(original.keys, original.records) where !kept.keys.contains(key) {
                let (shard, ordinal) = try XCTUnwrap(try dataset.locate(epoch: original.epoch, key: key))
                XCTAssertLessThan(shard.schema.rank, original.rank)
                XCTAssertNotEqual(try shard.record(at: ordinal).seed, Self.parse(bytes, k: k).seed)
            }
        }
    }

    static func parse(_ bytes: [UInt8], k: Int) -> (seed: Int32, indices: [Int32], valueBits: [UInt16]) {
        func u16(_ offset: Int) -> UInt16 { UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8 }
        let seed = Int32(bitPattern: UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24)
        return (seed, (0..<k).map { Int32(Int16(bitPattern: u16(4 + 2 * $0))) }, (0..<k).map { u16(4 + 2 * k + 2 * $0) })
    }
}
