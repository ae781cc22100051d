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
