import Foundation
import XCTest
@testable import ShardFormat

/// ShardVerifier's options: `.checksums` depth finds every changed byte but not records that a writer
/// wrote against the rules (with valid checksums); `.full` finds both; the number of threads does not
/// change the report.
final class VerifierOptionsTests: XCTestCase {
    let schema = ShardSchema(classes: 60, k: 3, augmentation: .seed, recordsPerBlock: 4, provenance: ["teacher": "v"])

    func makeShard(_ directory: TemporaryDirectory) throws -> [UInt8] {
        var rng = SplitMix64(seed: 5)
        let records = RecordGenerator.records(schema: schema, count: 30, using: &rng)  // 8 blocks
        let path = directory.file("clean.tshard")
        try writeShard(path, schema, records)
        return try readBytes(path)
    }

    func codes(_ verifier: ShardVerifier, _ path: String) -> [String] { verifier.verifyShard(path: path).problems.map(\.code) }

    func testChecksumDepthFindsDamageButNotRuleBreaks() throws {
        let directory = try TemporaryDirectory("depth")
        let clean = try makeShard(directory)
        let checksums = ShardVerifier(depth: .checksums)
        let full = ShardVerifier(depth: .full)
        let path = directory.file("x.tshard")

        try writeBytes(clean, to: path)
        XCTAssertEqual(codes(checksums, path), [])
        XCTAssertEqual(codes(full, path), [])

        // A changed payload byte: both depths.
        var flipped = clean
        flipped[try ShardLayout(clean).payloadOffset(3) + 2] ^= 8
        try writeBytes(flipped, to: path)
        XCTAssertEqual(codes(checksums, path), ["block-crc"])
        XCTAssertEqual(codes(full, path), ["block-crc"])

        // A block header that disagrees with the index (its own checksum recomputed): both depths.
        var model = try ShardFileModel(clean)
        model.blocks[1].firstOrdinal = 5
        try writeBytes(model.serialized(), to: path)
        XCTAssertEqual(codes(checksums, path), ["block-structure"])
        XCTAssertEqual(codes(full, path), ["block-structure"])

        // Rule breaks with valid checksums: only the full depth sees them.
        model = try ShardFileModel(clean)
        var bits = ValueSection.decode(try model.decoded(block: 6, section: 2), k: 3)
        bits[0][0] = Float16.infinity.bitPattern
        model.store(block: 6, section: 2, ValueSection.encode(bits))
        var ids = try model.decoded(block: 7, section: 0)
        ids.replaceSubrange(0..<1, with: [try model.decoded(block: 0, section: 0)[0]])
        for plane in 1..<4 { ids[plane * 2] = try model.decoded(block: 0, section: 0)[plane * 4] }
        model.store(block: 7, section: 0, ids)
        try writeBytes(model.serialized(), to: path)
        XCTAssertEqual(codes(checksums, path), [])
        XCTAssertEqual(codes(full, path), ["bad-value", "duplicate-sample"])
        let duplicate = full.verifyShard(path: path).problems.last
        XCTAssertEqual(duplicate?.record, 28)
        XCTAssertEqual(duplicate?.block, 7)
    }

    func testThreadCountDoesNotChangeTheReport() throws {
        let directory = try TemporaryDirectory("threads")
        let clean = try makeShard(directory)
        var model = try ShardFileModel(clean)
        for block in [1, 4, 7] {  // a NaN in three blocks, plus a damaged payload
            var bits = ValueSection.decode(try model.decoded(block: block, section: 2), k: 3)
            bits[bits.count - 1][2] = Float16.nan.bitPattern
            model.store(block: block, section: 2, ValueSection.encode(bits))
        }
        var bytes = model.serialized()
        bytes[try ShardLayout(bytes).payloadOffset(5) + 1] ^= 1
        let path = directory.file("many.tshard")
        try writeBytes(bytes, to: path)
        let one = ShardVerifier(threads: 1).verifyShard(path: path)
        XCTAssertEqual(one.problems.map(\.code), ["bad-value", "bad-value", "block-crc", "bad-value"])
        XCTAssertEqual(one.problems.map(\.block), [1, 4, 5, 7])
        for threads in [2, 3, 8, 100] {
            XCTAssertEqual(ShardVerifier(threads: threads).verifyShard(path: path).problems, one.problems, "\(threads) threads")
        }
        let limited = ShardVerifier(maxProblems: 2, threads: 3).verifyShard(path: path)
        XCTAssertEqual(limited.problems, Array(one.problems.prefix(2)))
        XCTAssertEqual(limited.omittedProblems, 2)
    }

    /// Problems past maxProblems are counted, not listed, however many there are and whichever thread
    /// found them.
    func testOmittedProblemsAreCounted() throws {
        let directory = try TemporaryDirectory("omitted")
        let clean = try makeShard(directory)
        var model = try ShardFileModel(clean)
        var broken = 0
        for block in 0..<model.blocks.count {  // every value of every record: 30 bad records
            var bits = ValueSection.decode(try model.decoded(block: block, section: 2), k: 3)
            for i in bits.indices { bits[i][0] = Float16.nan.bitPattern; broken += 1 }
            model.store(block: block, section: 2, ValueSection.encode(bits))
        }
        let path = directory.file("nan.tshard")
        try writeBytes(model.serialized(), to: path)
        for threads in [1, 2, 5] {
            for limit in [0, 1, 3, 29, 30, 1000] {
                let report = ShardVerifier(maxProblems: limit, threads: threads).verifyShard(path: path)
                XCTAssertEqual(report.problems.count, min(limit, broken), "limit \(limit), \(threads) threads")
                XCTAssertEqual(report.problems.count + report.omittedProblems, broken, "limit \(limit), \(threads) threads")
                XCTAssertEqual(report.isClean, false)
            }
        }
    }

    func testDatasetChecksumDepth() throws {
        let directory = try TemporaryDirectory("depth-dataset")
        let root = directory.file("ds")
        let writer = try DatasetWriter(directory: root, keys: try KeyTable(sorting: (0..<40).map { "k\($0)" }), schema: schema)
        let shard = try writer.shardWriter(epoch: 0, rank: 0)
        var rng = SplitMix64(seed: 3)
        for record in RecordGenerator.records(schema: schema, count: 12, idLimit: 40, using: &rng) { try shard.append(record) }
        try writer.finish(shard)
        _ = try writer.finish()
        let name = DatasetWriter.shardFileName(epoch: 0, rank: 0)
        let path = root + "/" + name
        XCTAssertTrue(ShardVerifier(depth: .checksums).verifyDataset(directory: root).isClean)

        // A rule break written with valid checksums and a matching manifest: only `full` finds it.
        var model = try ShardFileModel(try readBytes(path))
        var bits = ValueSection.decode(try model.decoded(block: 1, section: 2), k: 3)
        bits[2][1] = Float16(-1).bitPattern
        model.store(block: 1, section: 2, ValueSection.encode(bits))
        let broken = model.serialized()
        try writeBytes(broken, to: path)
        var manifest = try DatasetManifest.read(directory: root)
        manifest.shards[0].bytes = broken.count
        manifest.shards[0].crc32 = CRC32.hex(referenceCRC32(broken))
        try manifest.write(directory: root)
        XCTAssertEqual(ShardVerifier(depth: .checksums).verifyDataset(directory: root).problems.map(\.code), [])
        XCTAssertEqual(ShardVerifier(depth: .full).verifyDataset(directory: root).problems.map(\.code), ["bad-value"])

        // A changed byte the manifest does not know about: the whole-file CRC and the block CRC.
        var flipped = broken
        flipped[try ShardLayout(broken).payloadOffset(0) + 3] ^= 2
        try writeBytes(flipped, to: path)
        XCTAssertEqual(ShardVerifier(depth: .checksums).verifyDataset(directory: root).problems.map(\.code), ["manifest-mismatch", "block-crc"])
    }
}
