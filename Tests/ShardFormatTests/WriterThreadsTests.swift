import Foundation
import XCTest
@testable import ShardFormat

/// Parallel block encoding (``ShardWriter/threads``) writes exactly the bytes of one thread, on shapes
/// with several blocks and a short last block, and cleans up after itself.
final class WriterThreadsTests: XCTestCase {
    /// (schema, records): K from 1 to 100 (the radix sort of class indices from K = 32, with 1, 2 and 3
    /// byte passes), every augmentation kind, logits and unsorted.
    private func shapes() -> [(ShardSchema, Int)] {
        [
            (ShardSchema(classes: 5, k: 1, recordsPerBlock: 3), 20),
            (ShardSchema(classes: 1000, k: 10, augmentation: .seed, recordsPerBlock: 16), 203),
            (ShardSchema(classes: 21841, k: 100, augmentation: .seed, recordsPerBlock: 8), 61),
            (ShardSchema(classes: 300, k: 3, augmentation: .params(outputHeight: 224, outputWidth: 224), recordsPerBlock: 4), 37),
            (ShardSchema(classes: 70000, k: 7, valueKind: .logit, sorted: false, recordsPerBlock: 5), 52),
            (ShardSchema(classes: 200, k: 40, recordsPerBlock: 6), 25),
            (ShardSchema(classes: 1 << 24, k: 33, valueKind: .logit, recordsPerBlock: 7), 30),
        ]
    }

    private func write(_ schema: ShardSchema, _ records: [TestRecord], to path: String, threads: [Int]) throws -> [UInt8] {
        let writer = try ShardWriter(path: path, schema: schema, threads: threads[0])
        for (i, record) in records.enumerated() {
            // A change of thread count mid-shard takes effect from the next block, bytes unchanged.
            writer.threads = threads[i * threads.count / records.count]
            try writer.append(record)
        }
        try writer.finish()
        return try readBytes(path)
    }

    func testEveryThreadCountWritesTheBytesOfOneThread() throws {
        let directory = try TemporaryDirectory("threads")
        var rng = SplitMix64(seed: 17)
        for (number, (schema, count)) in shapes().enumerated() {
            let records = RecordGenerator.records(schema: schema, count: count, using: &rng)
            let one = try write(schema, records, to: directory.file("\(number)-1.tshard"), threads: [1])
            for threads in [[2], [3], [2, 1, 4, 1]] {
                let path = directory.file("\(number)-\(threads).tshard")
                let bytes = try write(schema, records, to: path, threads: threads)
                XCTAssertEqual(bytes, one, "shape \(number) (K = \(schema.k)), threads \(threads)")
            }
            let reader = try ShardReader(path: directory.file("\(number)-1.tshard"))
            XCTAssertGreaterThan(reader.blockCount, 2, "shape \(number)")
            XCTAssertEqual(try (0..<reader.recordCount).map { TestRecord(try reader.record(at: $0)) }, records, "shape \(number)")
            XCTAssertTrue(ShardVerifier().verifyShard(path: directory.file("\(number)-1.tshard")).isClean, "shape \(number)")
        }
    }

    func testDiscardWithBlocksInFlightLeavesNoFile() throws {
        let directory = try TemporaryDirectory("threads-discard")
        var rng = SplitMix64(seed: 5)
        let schema = ShardSchema(classes: 21841, k: 100, recordsPerBlock: 2)
        let path = directory.file("discarded.tshard")
        let writer = try ShardWriter(path: path, schema: schema, threads: 2)
        for record in RecordGenerator.records(schema: schema, count: 40, using: &rng) { try writer.append(record) }
        writer.discard()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), [])
    }

    func testThreadCountBelowOneIsRefused() throws {
        let directory = try TemporaryDirectory("threads-refused")
        assertShardError(.invalidArgument, try ShardWriter(path: directory.file("x.tshard"), schema: ShardSchema(classes: 10, k: 1), threads: 0))
    }
}
