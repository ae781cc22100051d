import Foundation
import XCTest
@testable import ShardFormat

/// ShardStatistics accounts for every byte of a shard, section by section, as the file's own block
/// and section headers say.
final class ShardStatisticsTests: XCTestCase {
    func testEveryByteIsAccountedFor() throws {
        let directory = try TemporaryDirectory("stats")
        var rng = SplitMix64(seed: 44)
        var total = ShardStatistics()
        var expectedTotalBytes = 0
        for (n, schema) in [ShardSchema(classes: 10, k: 3, recordsPerBlock: 2),
                            ShardSchema(classes: 5000, k: 12, augmentation: .seed, recordsPerBlock: 64),
                            ShardSchema(classes: 300, k: 2, augmentation: .params(outputHeight: 64, outputWidth: 64), recordsPerBlock: 7),
                            ShardSchema(classes: 10, k: 1, recordsPerBlock: 3)].enumerated() {
            for count in [0, 1, 150] {
                let path = directory.file("s\(n)-\(count).tshard")
                try writeShard(path, schema, RecordGenerator.records(schema: schema, count: count, using: &rng))
                let bytes = try readBytes(path)
                let model = try ShardFileModel(bytes)
                let stats = try ShardReader(path: path).statistics()
                XCTAssertEqual(stats.files, 1)
                XCTAssertEqual(stats.records, count)
                XCTAssertEqual(stats.blocks, model.blocks.count)
                XCTAssertEqual(stats.fileBytes, bytes.count)
                XCTAssertEqual(stats.headerBytes, 20 + model.header.count)
                XCTAssertEqual(stats.indexBytes, 12 + 12 * model.blocks.count)
                XCTAssertEqual(stats.footerBytes, 32)
                for section in ShardStatistics.Section.allCases {
                    let s = section.rawValue
                    XCTAssertEqual(stats[section].stored, model.blocks.map { $0.sections[s].stored.count }.reduce(0, +), "\(section)")
                    XCTAssertEqual(stats[section].decoded, model.blocks.map { Int($0.sections[s].decodedLength) }.reduce(0, +), "\(section)")
                    XCTAssertEqual(stats[section].zlibBlocks, model.blocks.filter { $0.sections[s].codec == 1 }.count, "\(section)")
                }
                let sectionBytes = ShardStatistics.Section.allCases.map { stats[$0].stored }.reduce(0, +)
                XCTAssertEqual(stats.overheadBytes + sectionBytes, bytes.count, "every byte is in exactly one bucket")
                XCTAssertEqual(stats[.values].decoded, 2 * count * schema.k)
                total += stats
                expectedTotalBytes += bytes.count
            }
        }
        XCTAssertEqual(total.files, 12)
        XCTAssertEqual(total.fileBytes, expectedTotalBytes)
        XCTAssertEqual((total + ShardStatistics()).fileBytes, expectedTotalBytes)
    }

    /// A dataset's statistics walk its shards on several threads: the sum must be the walk in order's, and
    /// with two damaged shards the error must be the first one's in manifest order, whatever thread got there
    /// first.
    func testDatasetStatisticsMatchTheWalkInOrder() throws {
        let directory = try TemporaryDirectory("stats-dataset")
        let schema = ShardSchema(classes: 50, k: 4, recordsPerBlock: 3)
        let keys = (0..<40).map { "key\($0)" }
        let writer = try DatasetWriter(directory: directory.path, keys: try KeyTable(sorting: keys), schema: schema)
        var rng = SplitMix64(seed: 46)
        for rank in 0..<5 {
            let shard = try writer.shardWriter(epoch: 0, rank: rank)
            for id in stride(from: rank, to: keys.count, by: 5) {
                try shard.append(RecordGenerator.record(schema: schema, sampleID: UInt32(id), using: &rng))
            }
            try writer.finish(shard)
        }
        _ = try writer.finish()
        let dataset = try ShardDataset(directory: directory.path)
        let inOrder = try dataset.shards.reduce(ShardStatistics()) { $0 + (try $1.statistics()) }
        for threads in [1, 2, 8] { XCTAssertEqual(try dataset.statistics(threads: threads), inOrder, "\(threads) threads") }

        for rank in [3, 1] {  // a byte of block 1's header: same size, so the manifest still agrees
            let path = dataset.shards[rank].path
            var bytes = try readBytes(path)
            bytes[dataset.shards[rank].blocks[1].offset + 8] ^= 0x01
            try writeBytes(bytes, to: path)
        }
        let damaged = try ShardDataset(directory: directory.path)
        for threads in [1, 2, 8] {
            let error = shardError(try damaged.statistics(threads: threads))
            XCTAssertEqual(error?.code, .blockCRC)
            XCTAssertEqual(error?.location.file, damaged.shards[1].path, "\(threads) threads")
        }
    }

    func testDamagedSectionHeadersAreReported() throws {
        let directory = try TemporaryDirectory("stats-damage")
        let schema = ShardSchema(classes: 10, k: 3, recordsPerBlock: 2)
        var rng = SplitMix64(seed: 45)
        let path = directory.file("s.tshard")
        try writeShard(path, schema, RecordGenerator.records(schema: schema, count: 5, using: &rng))
        let clean = try readBytes(path)
        var model = try ShardFileModel(clean)
        model.blocks[1].trailing = [0, 0]
        try writeBytes(model.serialized(), to: path)
        let error = shardError(try ShardReader(path: path).statistics())
        XCTAssertEqual(error?.code, .badSection)
        XCTAssertEqual(error?.location.block, 1)

        var flipped = clean
        flipped[try ShardLayout(clean).blockOffsets[2] + 17] ^= 1  // payload length: block header CRC fails
        try writeBytes(flipped, to: path)
        assertShardError(.blockCRC, try ShardReader(path: path).statistics())
    }
}
