import Foundation
import XCTest
@testable import ShardFormat

/// Every byte of a shard is covered by a checksum, so any single damaged byte must be found by the
/// verifier and make the reader throw — never crash, never return different data. Any truncation must
/// make the file incomplete.
final class CorruptionTests: XCTestCase {
    /// A small shard: a few blocks, seed augmentation, a partial last block.
    func makeShard(_ directory: TemporaryDirectory) throws -> (bytes: [UInt8], records: [TestRecord]) {
        var rng = SplitMix64(seed: 4242)
        let schema = ShardSchema(classes: 300, k: 3, augmentation: .seed, recordsPerBlock: 3,
                                 provenance: ["dataset_checksum": "01234567"])
        let records = RecordGenerator.records(schema: schema, count: 8, idLimit: 5000, using: &rng)
        let path = directory.file("clean.tshard")
        try writeShard(path, schema, records)
        return (try readBytes(path), records)
    }

    /// Reads everything a reader can give: open, every record, the sample-id table. Returns the records
    /// or throws.
    func readEverything(_ path: String, ids: [UInt32]) throws -> [TestRecord] {
        let reader = try ShardReader(path: path)
        let cursor = reader.makeCursor()
        let records = try (0..<reader.recordCount).map { TestRecord(try cursor.record(at: $0)) }
        for id in ids { _ = try reader.ordinal(ofSample: id) }
        return records
    }

    func testEveryDamagedByteIsDetected() throws {
        let directory = try TemporaryDirectory("flip")
        let (clean, records) = try makeShard(directory)
        XCTAssertLessThan(clean.count, 1500, "keep the shard small: this test writes it twice per byte")
        XCTAssertEqual(try readEverything(directory.file("clean.tshard"), ids: records.map(\.sampleID)), records)
        let path = directory.file("damaged.tshard")
        let verifier = ShardVerifier(threads: 1)  // thread counts are covered by VerifierOptionsTests
        var codes: [String: Int] = [:]
        for offset in 0..<clean.count {
            for mask in [UInt8(0xFF), UInt8(1) << UInt8(offset % 8)] {
                var damaged = clean
                damaged[offset] ^= mask
                try writeBytes(damaged, to: path)
                let report = verifier.verifyShard(path: path)
                XCTAssertFalse(report.isClean, "byte \(offset) ^ \(mask): the verifier found nothing")
                for problem in report.problems { codes[problem.code, default: 0] += 1 }
                do {
                    let read = try readEverything(path, ids: records.map(\.sampleID))
                    XCTFail("byte \(offset) ^ \(mask): the reader accepted the file" + (read == records ? "" : " and returned different data"))
                } catch is ShardError {
                } catch {
                    XCTFail("byte \(offset) ^ \(mask): \(error) is not a ShardError")
                }
            }
        }
        // The damage lands in every kind of region.
        for code in ["bad-magic", "unsupported-version", "header-crc", "block-crc", "bad-index", "footer-crc", "incomplete"] {
            XCTAssertNotNil(codes[code], "no flip produced \(code): \(codes)")
        }
    }

    func testEveryTruncationIsIncomplete() throws {
        let directory = try TemporaryDirectory("cut")
        let (clean, _) = try makeShard(directory)
        let path = directory.file("cut.tshard")
        let verifier = ShardVerifier(threads: 1)  // thread counts are covered by VerifierOptionsTests
        for length in 0..<clean.count {
            try writeBytes(Array(clean[0..<length]), to: path)
            let report = verifier.verifyShard(path: path)
            XCTAssertFalse(report.isClean, "cut at \(length)")
            // Even a file shorter than the magic (or empty) is the start of a shard: incomplete.
            XCTAssertEqual(report.problems.map(\.code), ["incomplete"], "cut at \(length): \(report.problems)")
            assertShardError(.incomplete, try ShardReader(path: path), "cut at \(length)")
        }
        // A short file that is not the start of a shard is not one.
        for short: [UInt8] in [[0x89, 0x54, 0x53, 0x58], Array("hello".utf8), [0x89, 0x54, 0x53, 0x48, 0x0D, 0x0A, 0x1A, 0x58]] {
            try writeBytes(short, to: path)
            assertShardError(.badMagic, try ShardReader(path: path), "\(short)")
            XCTAssertEqual(verifier.verifyShard(path: path).problems.map(\.code), ["bad-magic"])
        }
    }

    /// Damage inside a block is reported with the block, and other blocks stay readable.
    func testDamagedBlockIsLocatedAndOthersStayReadable() throws {
        let directory = try TemporaryDirectory("locate")
        let (clean, records) = try makeShard(directory)
        let layout = try ShardLayout(clean)
        var damaged = clean
        damaged[layout.payloadOffset(1) + 5] ^= 0x40
        let path = directory.file("block1.tshard")
        try writeBytes(damaged, to: path)
        let report = ShardVerifier().verifyShard(path: path)
        XCTAssertEqual(report.problems.map(\.code), ["block-crc"])
        XCTAssertEqual(report.problems.first?.block, 1)
        XCTAssertEqual(report.problems.first?.file, path)
        let reader = try ShardReader(path: path)
        let cursor = reader.makeCursor()
        for ordinal in [0, 1, 2, 6, 7] { XCTAssertEqual(TestRecord(try cursor.record(at: ordinal)), records[ordinal]) }
        for ordinal in 3..<6 {
            let error = shardError(try cursor.record(at: ordinal))
            XCTAssertEqual(error?.code, .blockCRC)
            XCTAssertEqual(error?.location.block, 1)
        }
        // The failed block is not cached as decoded: asking again fails again.
        assertShardError(.blockCRC, try cursor.record(at: 4))
        assertShardError(.blockCRC, try reader.ordinal(ofSample: records[0].sampleID))
    }

    /// A record that breaks a content rule (here with every checksum recomputed) is reported by the
    /// verifier with its record, and the reader refuses the whole block.
    func testRecordProblemsAreListedWithTheirRecords() throws {
        let directory = try TemporaryDirectory("records")
        let (clean, _) = try makeShard(directory)
        var model = try ShardFileModel(clean)
        var bits = ValueSection.decode(try model.decoded(block: 2, section: 2), k: 3)
        bits[0][0] = Float16.nan.bitPattern
        bits[1][2] = Float16(2).bitPattern
        model.store(block: 2, section: 2, ValueSection.encode(bits))
        let path = directory.file("values.tshard")
        try writeBytes(model.serialized(), to: path)
        let report = ShardVerifier().verifyShard(path: path)
        XCTAssertEqual(report.problems.map(\.code), ["bad-value", "bad-value"])
        XCTAssertEqual(report.problems.map(\.record), [6, 7])
        XCTAssertEqual(report.problems.map(\.block), [2, 2])
        assertShardError(.badValue, try ShardReader(path: path).record(at: 7))
        XCTAssertEqual(ShardVerifier(maxProblems: 1).verifyShard(path: path).omittedProblems, 1)
    }

    func testMissingAndNonRegularFilesAreIOErrors() throws {
        let directory = try TemporaryDirectory("io")
        assertShardError(.io, try ShardReader(path: directory.file("absent.tshard")))
        assertShardError(.io, try ShardReader(path: directory.path))
        XCTAssertEqual(ShardVerifier().verifyShard(path: directory.file("absent.tshard")).problems.map(\.code), ["io"])
    }
}
