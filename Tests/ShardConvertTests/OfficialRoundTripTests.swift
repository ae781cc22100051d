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

    func testIn1kExportIsByteIdenticalToTheInput() throws {
        try checkByteIdentical(try converted("in1k_top10", classes: 1000))
    }

    func testIn22kExportIsByteIdenticalToTheInput() throws {
        try checkByteIdentical(try converted("in22k_top100", classes: 21841))
    }

    func testIn1kKeysInSeveralRanksAndLookups() throws {
        try checkRanksAndLookups(try converted("in1k_top10", classes: 1000), k: 10, classes: 1000)
    }

    func testIn22kKeysInSeveralRanksAndLookups() throws {
        try checkRanksAndLookups(try converted("in22k_top100", classes: 21841), k: 100, classes: 21841)
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

    /// Every exported file equals the input file of the same name, and nothing else is written.
    private func checkByteIdentical(_ run: Converted) throws {
        let input = try filesByPath(run.source)
        let exported = try filesByPath(run.exported)
        XCTAssertEqual(Set(exported.keys), Set(input.keys))
        for (name, bytes) in input {
            XCTAssertEqual(exported[name], bytes, name)
        }
    }

    /// Each (epoch, rank) shard holds exactly that rank's records in file order, padded keys included; a
    /// lookup by (epoch, key) finds a record of that key in a rank that has it.
    private func checkRanksAndLookups(_ run: Converted, k: Int, classes: Int) throws {
        let (shared, sharedRecords) = run.fixture.keysInSeveralRanks()
        XCTAssertEqual(sharedRecords, 2, "the fixture puts one key in two ranks of each of its 2 epochs")
        XCTAssertEqual(run.summary.keysInSeveralRanks, sharedRecords)
        XCTAssertEqual(run.summary.duplicatesDropped, 0)
        XCTAssertEqual(run.summary.recordsRead, run.fixture.recordCount)
        XCTAssertEqual(run.summary.recordsWritten, run.fixture.recordCount)
        XCTAssertEqual(run.summary.k, k)
        XCTAssertEqual(run.summary.classes, classes)
        let allKeys = Set(run.fixture.ranks.flatMap(\.keys))
        XCTAssertEqual(run.summary.keys, allKeys.count)

        let dataset = try ShardDataset(directory: run.dataset)
        XCTAssertEqual(dataset.keys.count, allKeys.count)
        XCTAssertEqual(dataset.manifest.classes, classes)
        for rank in run.fixture.ranks {
            let shard = try XCTUnwrap(dataset.shards.first { $0.schema.epoch == rank.epoch && $0.schema.rank == rank.rank })
            XCTAssertEqual(shard.recordCount, rank.records.count)
            let cursor = shard.makeCursor()
            for (ordinal, (key, bytes)) in zip(rank.keys, rank.records).enumerated() {
                let record = try cursor.record(at: ordinal)
                let expected = Self.parse(bytes, k: k)
                XCTAssertEqual(try dataset.keys.key(Int(record.sampleID)), key)
                XCTAssertEqual(record.seed, expected.seed, "key \(key)")
                XCTAssertEqual(record.indices, expected.indices, "key \(key)")
                XCTAssertEqual(record.values.map(\.bitPattern), expected.valueBits, "key \(key)")
            }
        }
        for epoch in Set(run.fixture.ranks.map(\.epoch)) {
            XCTAssertEqual(shared[epoch]?.count, 1, "epoch \(epoch)")
            for key in shared[epoch] ?? [] {
                let holders = run.fixture.ranks.filter { $0.epoch == epoch && $0.keys.contains(key) }
                XCTAssertEqual(holders.count, 2, "\(key) is in two ranks of epoch \(epoch)")
                // The two copies differ (another seed): both are kept.
                let copies = holders.map { $0.records[$0.keys.firstIndex(of: key)!] }
                XCTAssertNotEqual(copies[0], copies[1])
                let (shard, ordinal) = try XCTUnwrap(try dataset.locate(epoch: epoch, key: key))
                let holder = try XCTUnwrap(holders.first { $0.rank == shard.schema.rank })
                XCTAssertEqual(try shard.record(at: ordinal).seed, Self.parse(holder.records[holder.keys.firstIndex(of: key)!], k: k).seed)
            }
        }
    }

    static func parse(_ bytes: [UInt8], k: Int) -> (seed: Int32, indices: [Int32], valueBits: [UInt16]) {
        func u16(_ offset: Int) -> UInt16 { UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8 }
        let seed = Int32(bitPattern: UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24)
        return (seed, (0..<k).map { Int32(Int16(bitPattern: u16(4 + 2 * $0))) }, (0..<k).map { u16(4 + 2 * k + 2 * $0) })
    }
}
