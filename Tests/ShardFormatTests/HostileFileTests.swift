import Foundation
import XCTest
@testable import ShardFormat

/// Regression tests for issue 11's hostile files, on small shapes (the 1-16 MiB curve is the
/// benchmark in Tools/hostile, not a timed test).
final class HostileFileTests: XCTestCase {
    let schema = ShardSchema(classes: 10, k: 3, recordsPerBlock: 2, provenance: ["dataset_checksum": "00000000"])

    func records(_ n: Int) -> [TestRecord] {
        (0..<n).map { (i: Int) -> TestRecord in
            let indices: [Int32] = [Int32(i % 10), Int32((i + 1) % 10), Int32((i + 2) % 10)]
            return TestRecord(sampleID: UInt32(i), indices: indices, values: [0.5, 0.25, 0.125])
        }
    }

    func testRangeChecksumsFromPrefixesMatchDirectOnes() {
        var rng = SplitMix64(seed: 3)
        let bytes = (0..<5000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        bytes.withUnsafeBytes { all in
            for _ in 0..<200 {
                let s = Int.random(in: 0...5000, using: &rng)
                let e = Int.random(in: s...5000, using: &rng)
                let direct = CRC32.checksum(UnsafeRawBufferPointer(rebasing: all[s..<e]))
                let viaPrefixes = CRC32Shift.range(prefixToStart: CRC32.checksum(UnsafeRawBufferPointer(rebasing: all[0..<s])),
                                                   prefixToEnd: CRC32.checksum(UnsafeRawBufferPointer(rebasing: all[0..<e])), length: e - s)
                XCTAssertEqual(direct, viaPrefixes, "\(s)..<\(e)")
            }
        }
    }

    /// Fake block headers whose payloads run to the end: each is a candidate with a failing payload CRC,
    /// checked in O(1), and the real blocks after them are still salvaged.
    func testSalvageSkipsFakeHeadersAndKeepsRealBlocks() throws {
        let directory = try TemporaryDirectory("hostile")
        let path = directory.file("a.tshard")
        try writeShard(path, schema, records(6))
        let model = try ShardFileModel(try readBytes(path))
        let layout = try ShardLayout(try readBytes(path))
        var bytes = Array(try readBytes(path)[0..<layout.indexOffset])  // no index, no footer
        var fakes: [UInt8] = []
        for i in 0..<200 {  // each claims a payload to the end of the file
            var header = Array("TSBK".utf8)
            header.append32(1)
            header.append64(0)
            header.append32(UInt32(200 * 32 - 32 * i - 32 + (bytes.count - layout.blocksStart)))
            header.append32(0xDEAD_BEEF)
            header.append32(0)
            header.append32(referenceCRC32(header))
            fakes += header
        }
        bytes.insert(contentsOf: fakes, at: layout.blocksStart)
        try writeBytes(bytes, to: directory.file("b.tshard"))
        let report = try ShardRecovery.recover(source: directory.file("b.tshard"), output: directory.file("c.tshard"))
        XCTAssertEqual(report.blocksRecovered, model.blocks.count)
        XCTAssertEqual(report.recordsRecovered, 6)
        var read: [ShardRecord] = []
        try ShardReader(path: directory.file("c.tshard")).forEachRecord { _, record in read.append(record) }
        XCTAssertEqual(read.map(\.sampleID), (0..<6).map(UInt32.init))
    }

    /// A block whose checksums hold is consumed whole even when its records fail: nothing inside it is
    /// taken for another block (the linear rule of §1.5).
    func testChecksumValidBlockIsConsumedWhole() throws {
        let directory = try TemporaryDirectory("hostile")
        let path = directory.file("a.tshard")
        try writeShard(path, schema, records(4))
        var model = try ShardFileModel(try readBytes(path))
        var order = try model.decoded(block: 0, section: 4)
        order[0] = 6  // record 0: order number 3! (bad-order), block 0 fails its record check
        model.store(block: 0, section: 4, order)
        var bytes = model.serialized()
        let layout = try ShardLayout(bytes)
        bytes = Array(bytes[0..<layout.indexOffset])
        try writeBytes(bytes, to: directory.file("b.tshard"))
        let report = try ShardRecovery.recover(source: directory.file("b.tshard"), output: directory.file("c.tshard"))
        XCTAssertEqual(report.blocksRecovered, 1)
        XCTAssertEqual(report.recordsRecovered, 2)
        XCTAssertEqual(report.damaged.count, 1)
        XCTAssertEqual(report.damaged.first?.offset, layout.blockOffsets[0])
        XCTAssertEqual(report.damaged.first?.length, layout.blockLengths[0])
    }

    /// The verifier lists every bad record of a block, and a block with bad records still takes part in
    /// the duplicate check (issue 11, item 7).
    func testVerifierListsEveryBadRecordAndTheirDuplicates() throws {
        let directory = try TemporaryDirectory("hostile")
        let path = directory.file("a.tshard")
        let wide = ShardSchema(classes: 10, k: 3, recordsPerBlock: 4, provenance: ["dataset_checksum": "00000000"])
        let writer = try ShardWriter(path: path, schema: wide)
        for record in records(4) { try writer.append(sampleID: record.sampleID, indices: record.indices, valueBits: record.valueBits) }
        _ = try writer.finish()
        var model = try ShardFileModel(try readBytes(path))
        var gaps = try model.decoded(block: 0, section: 3)
        gaps[2] = 9   // record 0: an index ≥ C
        model.store(block: 0, section: 3, gaps)
        var order = try model.decoded(block: 0, section: 4)
        order[2] = 6  // record 2: order number 3!
        model.store(block: 0, section: 4, order)
        var ids = try model.decoded(block: 0, section: 0)
        ids[3] = 0    // record 3: sample 0 again
        model.store(block: 0, section: 0, ids)
        try writeBytes(model.serialized(), to: path)
        let report = ShardVerifier().verifyShard(path: path)
        XCTAssertEqual(report.problems.map(\.code), ["index-out-of-range", "bad-order", "duplicate-sample"])
        XCTAssertEqual(report.problems.map(\.record), [0, 2, 3])
    }

    /// A footer claiming 65,536 records per block over empty blocks: the verifier reports each block and
    /// sizes nothing by the claim (the old code allocated 4 bytes per claimed record).
    func testClaimedRecordCountIsNotTrusted() throws {
        let directory = try TemporaryDirectory("hostile")
        let path = directory.file("a.tshard")
        let big = ShardSchema(classes: 10, k: 3, recordsPerBlock: 65_536, provenance: ["dataset_checksum": "00000000"])
        try writeShard(path, big, records(1))
        var model = try ShardFileModel(try readBytes(path))
        let block = model.blocks[0]
        model.blocks = (0..<2000).map { b in
            var copy = block
            copy.count = 65_536
            copy.firstOrdinal = UInt64(b * 65_536)
            return copy
        }
        model.recordCount = 2000 * 65_536
        try writeBytes(model.serialized(), to: path)
        let report = ShardVerifier(maxProblems: 10, threads: 1).verifyShard(path: path)
        XCTAssertEqual(report.records, 2000 * 65_536)
        XCTAssertEqual(Set(report.problems.map(\.code)), ["bad-section"])
        XCTAssertEqual(report.problems.count + report.omittedProblems, 2000)
        XCTAssertNotNil(shardError(try ShardReader(path: path).ordinal(ofSample: 0)))
    }

    /// The writer's duplicate check is not sized by the largest id (recover of a salvaged hostile id).
    func testWriterAcceptsSparseIds() throws {
        let directory = try TemporaryDirectory("hostile")
        let writer = try ShardWriter(path: directory.file("a.tshard"), schema: schema)
        for id: UInt32 in [4_000_000_000, 3, 4_000_000_001, 70, 5] {
            try writer.append(sampleID: id, indices: [1, 2, 3], values: [0.5, 0.25, 0.125] as [Float16])
        }
        assertShardError(.duplicateSample, try writer.append(sampleID: 4_000_000_000, indices: [1, 2, 3], values: [0.5, 0.25, 0.125] as [Float16]))
        assertShardError(.duplicateSample, try writer.append(sampleID: 70, indices: [1, 2, 3], values: [0.5, 0.25, 0.125] as [Float16]))
        _ = try writer.finish()
        XCTAssertEqual(try ShardReader(path: directory.file("a.tshard")).ordinal(ofSample: 4_000_000_001), 2)
    }

    /// Keys that straddle the checker's 1 MiB chunks: the loader, the streaming checker and the
    /// streaming name lookup agree.
    func testKeyTableChunksAgree() throws {
        let keys = (0..<30_000).map { String(format: "n%08d/some/longer/path/%06d.JPEG", $0 % 997, $0) }  // 1.3 MB
        let table = try KeyTable(sorting: keys)
        let bytes = try table.encoded(version: 1)
        try bytes.withUnsafeBytes { raw in
            XCTAssertEqual(try KeyTable.check(fileBytes: raw), table.count)
            XCTAssertEqual(try KeyTable(fileBytes: raw).keys, table.keys)
            let names = try KeyTable.keys([0, 21_337, table.count - 1], fileBytes: raw)
            XCTAssertEqual(names, [0: table.key(0), 21_337: table.key(21_337), table.count - 1: table.key(table.count - 1)])
        }
        let unsorted = KeyTableTests.keyTableFile(text: KeyTableTests.text(table.keys + ["a"]), count: table.count + 1)
        assertShardError(.badKeys, try unsorted.withUnsafeBytes { try KeyTable.check(fileBytes: $0) })
    }
}

final class SampleIDSetTests: XCTestCase {
    /// Agrees with a plain Set on dense runs, scattered ids and pages that switch from array to bitmap.
    func testMatchesASet() {
        var rng = SplitMix64(seed: 9)
        var ids = SampleIDSet()
        var reference = Set<UInt32>()
        let sources: [() -> UInt32] = [
            { UInt32.random(in: 0..<200_000, using: &rng) },
            { UInt32.random(in: 0...UInt32.max, using: &rng) },
            { UInt32.random(in: 0..<300, using: &rng) << 16 | UInt32.random(in: 0..<100, using: &rng) },
        ]
        for step in 0..<60_000 {
            let id = sources[step % 3]()
            XCTAssertEqual(ids.contains(id), reference.contains(id))
            XCTAssertEqual(ids.insert(id), reference.insert(id).inserted)
        }
        XCTAssertEqual(ids.count, reference.count)
        for id in reference.prefix(1000) { XCTAssertTrue(ids.contains(id)) }
        XCTAssertFalse(ids.contains(UInt32.max) && !reference.contains(UInt32.max))
    }
}
