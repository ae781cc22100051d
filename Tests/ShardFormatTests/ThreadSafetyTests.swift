import Dispatch
import Foundation
import XCTest
@testable import ShardFormat

/// One ShardReader shared by several threads, each with its own cursor, gives the same results as one
/// thread; the lazily built sample-id table survives concurrent first calls.
final class ThreadSafetyTests: XCTestCase {
    let schema = ShardSchema(classes: 1000, k: 5, augmentation: .seed, recordsPerBlock: 16)

    func makeShard(_ directory: TemporaryDirectory) throws -> (String, [TestRecord]) {
        var rng = SplitMix64(seed: 2)
        let records = RecordGenerator.records(schema: schema, count: 200, idLimit: 10_000, using: &rng)
        let path = directory.file("shared.tshard")
        try writeShard(path, schema, records)
        return (path, records)
    }

    /// A thread-safe slot per iteration of concurrentPerform.
    final class Results<T>: @unchecked Sendable {
        private let lock = NSLock()
        private var values: [Int: T] = [:]
        func set(_ i: Int, _ value: T) { lock.lock(); values[i] = value; lock.unlock() }
        func get(_ i: Int) -> T? { lock.lock(); defer { lock.unlock() }; return values[i] }
    }

    func testConcurrentCursorsOnOneReaderAgree() throws {
        let directory = try TemporaryDirectory("threads")
        let (path, records) = try makeShard(directory)
        let reader = try ShardReader(path: path)
        let threads = 8
        let results = Results<Result<[TestRecord], Error>>()
        let dense = Results<[Float]>()
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            results.set(t, Result {
                let cursor = reader.makeCursor()
                // Each thread walks the records in its own order, so that cursors decode blocks out of step.
                var rng = SplitMix64(seed: UInt64(t))
                let order = t == 0 ? Array(0..<records.count) : (0..<records.count).shuffled(using: &rng)
                var out = [TestRecord?](repeating: nil, count: records.count)
                for ordinal in order { out[ordinal] = TestRecord(try cursor.record(at: ordinal)) }
                var rows = [Float](repeating: 0, count: 4 * 1000)
                try rows.withUnsafeMutableBufferPointer { try cursor.dense([0, 57, 199, 100], into: $0) }
                dense.set(t, rows)
                return out.map { $0! }
            })
        }
        for t in 0..<threads {
            XCTAssertEqual(try results.get(t)?.get(), records, "thread \(t)")
            XCTAssertEqual(dense.get(t), dense.get(0), "thread \(t)")
        }
    }

    func testConcurrentFirstLookupsBuildOneCorrectTable() throws {
        let directory = try TemporaryDirectory("threads-lookup")
        let (path, records) = try makeShard(directory)
        for round in 0..<5 {
            let reader = try ShardReader(path: path)  // fresh: no table yet
            let results = Results<Result<[Int?], Error>>()
            DispatchQueue.concurrentPerform(iterations: 8) { t in
                results.set(t, Result { try records.map { try reader.ordinal(ofSample: $0.sampleID) } + [try reader.ordinal(ofSample: 10_001)] })
            }
            let expected: [Int?] = Array(0..<records.count) + [nil]
            for t in 0..<8 { XCTAssertEqual(try results.get(t)?.get(), expected, "round \(round), thread \(t)") }
        }
    }

    func testConcurrentLookupsOnADamagedShardAllThrow() throws {
        let directory = try TemporaryDirectory("threads-damaged")
        let (path, records) = try makeShard(directory)
        var bytes = try readBytes(path)
        let layout = try ShardLayout(bytes)
        bytes[layout.payloadOffset(5) + 9] ^= 4
        try writeBytes(bytes, to: path)
        let reader = try ShardReader(path: path)
        let results = Results<String>()
        DispatchQueue.concurrentPerform(iterations: 6) { t in
            do {
                _ = try reader.ordinal(ofSample: records[t].sampleID)
                results.set(t, "no error")
            } catch let error as ShardError {
                results.set(t, error.code.rawValue)
            } catch {
                results.set(t, "\(error)")
            }
        }
        for t in 0..<6 { XCTAssertEqual(results.get(t), "block-crc", "thread \(t)") }
    }
}
