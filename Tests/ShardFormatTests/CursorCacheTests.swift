import Foundation
import XCTest
@testable import ShardFormat

/// ShardCursor keeps the last `cachedBlocks` decoded blocks: any access pattern and cache size must
/// give the stored records, and a block that failed its checks is never served from the cache.
final class CursorCacheTests: XCTestCase {
    let schema = ShardSchema(classes: 700, k: 6, sorted: false, augmentation: .seed, recordsPerBlock: 5)

    func testRandomAccessWithEveryCacheSize() throws {
        let directory = try TemporaryDirectory("cache")
        var rng = SplitMix64(seed: 17)
        let records = RecordGenerator.records(schema: schema, count: 48, using: &rng)  // 10 blocks, the last of 3
        let path = directory.file("cache.tshard")
        try writeShard(path, schema, records)
        let reader = try ShardReader(path: path)
        for cached in [0, 1, 2, 3, 9, 10, 64] {
            let cursor = reader.makeCursor(cachedBlocks: cached)
            XCTAssertEqual(cursor.cachedBlocks, max(1, cached))
            // Random jumps, runs inside one block, and revisits of recently used blocks.
            var ordinals = (0..<records.count).shuffled(using: &rng)
            ordinals += Array(0..<records.count) + Array((0..<records.count).reversed())
            ordinals += (0..<100).map { _ in [0, 1, 5, 47, 46, Int.random(in: 0..<48, using: &rng)].randomElement(using: &rng)! }
            for ordinal in ordinals {
                XCTAssertEqual(TestRecord(try cursor.record(at: ordinal)), records[ordinal], "cache \(cached), ordinal \(ordinal)")
            }
            // Sparse and dense batches that cross every block, in an order that thrashes a small cache.
            let batch = (0..<records.count).map { ($0 * 7) % records.count }
            var indices = [Int32](repeating: 0, count: batch.count * 6)
            var values = [Float](repeating: 0, count: batch.count * 6)
            try indices.withUnsafeMutableBufferPointer { i in
                try values.withUnsafeMutableBufferPointer { v in try cursor.sparse(batch, indices: i, values: v) }
            }
            for (row, ordinal) in batch.enumerated() {
                XCTAssertEqual(Array(indices[(row * 6)..<((row + 1) * 6)]), records[ordinal].indices, "cache \(cached)")
            }
            var dense = [Float](repeating: 0, count: 3 * 700)
            try dense.withUnsafeMutableBufferPointer { try cursor.dense(44..<47, into: $0) }
            for (row, ordinal) in (44..<47).enumerated() {
                let record = records[ordinal]
                XCTAssertEqual(dense[row * 700 + Int(record.indices[0])], Float(record.values[0]))
                let other = (0..<700).first { !record.indices.contains(Int32($0)) }!
                XCTAssertEqual(dense[row * 700 + other].bitPattern, expectedResidual(record.valueBits, classes: 700)?.bitPattern)
            }
        }
    }

    func testFailedBlocksAreNeverServedFromTheCache() throws {
        let directory = try TemporaryDirectory("cache-damage")
        var rng = SplitMix64(seed: 18)
        let records = RecordGenerator.records(schema: schema, count: 20, using: &rng)  // 4 blocks
        let clean = directory.file("clean.tshard")
        try writeShard(clean, schema, records)
        // Block 2 with a NaN value and every checksum recomputed: it decodes, but breaks a record rule.
        var model = try ShardFileModel(try readBytes(clean))
        var bits = ValueSection.decode(try model.decoded(block: 2, section: 2), k: 6)
        bits[3][4] = Float16.nan.bitPattern
        model.store(block: 2, section: 2, ValueSection.encode(bits))
        let path = directory.file("damaged.tshard")
        try writeBytes(model.serialized(), to: path)
        let reader = try ShardReader(path: path)
        for cached in [1, 2, 4] {
            let cursor = reader.makeCursor(cachedBlocks: cached)
            XCTAssertEqual(TestRecord(try cursor.record(at: 0)), records[0])
            XCTAssertEqual(TestRecord(try cursor.record(at: 19)), records[19])
            for ordinal in [10, 12, 14, 10] {  // every record of the block is refused, again and again
                let error = shardError(try cursor.record(at: ordinal))
                XCTAssertEqual(error?.code, .badValue, "cache \(cached), ordinal \(ordinal)")
                XCTAssertEqual(error?.location.block, 2)
                XCTAssertEqual(error?.location.record, 13)
            }
            XCTAssertEqual(TestRecord(try cursor.record(at: 5)), records[5])
            assertShardError(.badValue, try cursor.record(at: 11))
            XCTAssertEqual(TestRecord(try cursor.record(at: 0)), records[0], "the cache still serves good blocks")
        }
    }
}
