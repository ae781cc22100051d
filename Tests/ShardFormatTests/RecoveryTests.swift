import Foundation
import XCTest
@testable import ShardFormat

/// ShardRecovery keeps every intact block of a damaged or unfinished shard, reports what it lost, and
/// writes a shard that verifies clean.
final class RecoveryTests: XCTestCase {
    let schema = ShardSchema(classes: 500, k: 4, augmentation: .seed, recordsPerBlock: 4, provenance: ["teacher": "t"])

    func makeShard(_ directory: TemporaryDirectory, count: Int = 18) throws -> (path: String, records: [TestRecord]) {
        var rng = SplitMix64(seed: 8)
        let records = RecordGenerator.records(schema: schema, count: count, using: &rng)
        let path = directory.file("source.tshard")
        try writeShard(path, schema, records)
        return (path, records)
    }

    func readAll(_ path: String) throws -> [TestRecord] {
        let reader = try ShardReader(path: path)
        return try (0..<reader.recordCount).map { TestRecord(try reader.record(at: $0)) }
    }

    func testDamagedMiddleBlockIsDroppedAndEveryOtherBlockKept() throws {
        let directory = try TemporaryDirectory("recover-middle")
        let (path, records) = try makeShard(directory)  // blocks of 4, 4, 4, 4, 2
        var bytes = try readBytes(path)
        let layout = try ShardLayout(bytes)
        bytes[layout.payloadOffset(2) + 3] ^= 0x01
        try writeBytes(bytes, to: path)
        XCTAssertFalse(ShardVerifier().verifyShard(path: path).isClean)

        let output = directory.file("recovered.tshard")
        let report = try ShardRecovery.recover(source: path, output: output)
        XCTAssertEqual(report.blocksRecovered, 4)
        XCTAssertEqual(report.recordsRecovered, 14)
        XCTAssertEqual(report.recordsExpected, 18)
        XCTAssertEqual(report.recordsKnownLost, 4)
        XCTAssertEqual(report.damaged.count, 1)
        XCTAssertEqual(report.damaged.first?.offset, layout.blockOffsets[2])
        XCTAssertEqual(report.damaged.first?.length, layout.blockLengths[2])
        XCTAssertTrue(ShardVerifier().verifyShard(path: output).isClean)
        XCTAssertEqual(try readAll(output), Array(records[0..<8] + records[12...]))
        XCTAssertEqual(try ShardReader(path: output).schema, schema)
    }

    func testDamagedFirstAndLastBlocksOfACompleteFile() throws {
        let directory = try TemporaryDirectory("recover-ends")
        let (path, records) = try makeShard(directory)
        var bytes = try readBytes(path)
        let layout = try ShardLayout(bytes)
        bytes[layout.blockOffsets[0] + 4] ^= 0x02        // block 0 header (count field): header CRC fails
        bytes[layout.payloadOffset(4) + 20] ^= 0x80      // last block payload
        try writeBytes(bytes, to: path)
        let output = directory.file("recovered.tshard")
        let report = try ShardRecovery.recover(source: path, output: output)
        XCTAssertEqual(report.blocksRecovered, 3)
        XCTAssertEqual(report.recordsKnownLost, 6, "4 before the first intact block, 2 after the last")
        XCTAssertEqual(report.damaged.count, 2)
        XCTAssertEqual(try readAll(output), Array(records[4..<16]))
        XCTAssertTrue(ShardVerifier().verifyShard(path: output).isClean)
    }

    func testPartialFileCutMidBlockRecoversEveryCompleteBlock() throws {
        let directory = try TemporaryDirectory("recover-cut")
        let (path, records) = try makeShard(directory)
        let bytes = try readBytes(path)
        let layout = try ShardLayout(bytes)
        for cut in [layout.blockOffsets[3] + 10, layout.blockOffsets[3] + 40, layout.blockOffsets[3], layout.indexOffset, layout.indexOffset + 7] {
            let partial = directory.file("cut.tshard.partial")
            try writeBytes(Array(bytes[0..<cut]), to: partial)
            XCTAssertEqual(ShardVerifier().verifyShard(path: partial).problems.map(\.code), ["incomplete"])
            let output = directory.file("cut-recovered-\(cut).tshard")
            let report = try ShardRecovery.recover(source: partial, output: output)
            let blocks = cut >= layout.indexOffset ? 5 : 3
            XCTAssertEqual(report.blocksRecovered, blocks, "cut at \(cut)")
            XCTAssertNil(report.recordsExpected, "no footer, no known total")
            XCTAssertEqual(report.recordsKnownLost, 0)
            // A cut on a block boundary leaves nothing damaged; a cut inside a block or the index does.
            XCTAssertEqual(report.damaged.isEmpty, cut == layout.blockOffsets[3] || cut == layout.indexOffset,
                           "cut at \(cut): \(report.damaged)")
            XCTAssertEqual(try readAll(output), Array(records[0..<min(records.count, blocks * 4)]), "cut at \(cut)")
            XCTAssertTrue(ShardVerifier().verifyShard(path: output).isClean)
        }
    }

    /// The writer's own unfinished file (`PATH.partial`, blocks written as they fill) is recoverable: with
    /// one thread a full block is in the file when `append` returns; with more, as soon as it is encoded.
    func testUnfinishedWriterFileIsRecoverable() throws {
        for threads in [1, 2] {
            let directory = try TemporaryDirectory("recover-writer")
            var rng = SplitMix64(seed: 9)
            let records = RecordGenerator.records(schema: schema, count: 10, using: &rng)
            let path = directory.file("unfinished.tshard")
            let writer = try ShardWriter(path: path, schema: schema, threads: threads)
            for record in records { try writer.append(record) }
            defer { writer.discard() }
            XCTAssertFalse(FileManager.default.fileExists(atPath: path))
            assertShardError(.incomplete, try ShardReader(path: path + ".partial"))
            let output = directory.file("salvaged.tshard")
            var report = try ShardRecovery.recover(source: path + ".partial", output: output)
            let deadline = Date().addingTimeInterval(30)
            while threads > 1, report.recordsRecovered < 8, Date() < deadline {
                usleep(1000)
                report = try ShardRecovery.recover(source: path + ".partial", output: output)
            }
            XCTAssertEqual(report.recordsRecovered, 8, "two full blocks were written; the third is still in memory (threads \(threads))")
            XCTAssertEqual(try readAll(output), Array(records[0..<8]))
        }
    }

    func testEmptyAndHeaderOnlyFiles() throws {
        let directory = try TemporaryDirectory("recover-empty")
        let (path, _) = try makeShard(directory, count: 0)
        let output = directory.file("empty-recovered.tshard")
        let report = try ShardRecovery.recover(source: path, output: output)
        XCTAssertEqual(report.recordsRecovered, 0)
        XCTAssertEqual(report.recordsExpected, 0)
        XCTAssertEqual(try ShardReader(path: output).recordCount, 0)

        let bytes = try readBytes(path)
        let headerOnly = directory.file("header-only.tshard")
        try writeBytes(Array(bytes[0..<(try ShardLayout(bytes)).blocksStart]), to: headerOnly)
        XCTAssertEqual(try ShardRecovery.recover(source: headerOnly, output: directory.file("h.tshard")).recordsRecovered, 0)

        var damagedHeader = bytes
        damagedHeader[20] ^= 1
        try writeBytes(damagedHeader, to: headerOnly)
        assertShardError(.headerCRC, try ShardRecovery.recover(source: headerOnly, output: directory.file("x.tshard")))
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.file("x.tshard")))
    }
}
