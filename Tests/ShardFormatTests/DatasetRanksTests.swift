import Foundation
import XCTest
@testable import ShardFormat

/// A dataset written by several writers (ranks of a distributed pass): rank 0 writes the key table and
/// the manifest, the others only shards; rank 0 takes their shards in by reading the files, never trusting
/// them — a shard of another dataset, epoch or schema, or a damaged one, is refused with the file named.
final class DatasetRanksTests: XCTestCase {
    let keys = (0..<12).map { String(format: "k%02d", $0) }
    let schema = ShardSchema(classes: 50, k: 4, augmentation: .seed, recordsPerBlock: 3, provenance: ["teacher": "ranks"])

    /// Rank 0's writer and a second writer (rank 1) on the same folder; each writes epochs 0 and 1.
    func writeRanks(_ root: String, otherSchema: ShardSchema? = nil, otherKeys: [String]? = nil) throws
        -> (zero: DatasetWriter, records: [[Int]: [TestRecord]]) {
        let zero = try DatasetWriter(directory: root, keys: try KeyTable(sorting: keys), schema: schema)
        let one = try DatasetWriter(directory: root, keys: try KeyTable(sorting: otherKeys ?? keys), schema: otherSchema ?? schema,
                                    writesKeyTable: false)
        var rng = SplitMix64(seed: 7)
        var written: [[Int]: [TestRecord]] = [:]
        for epoch in 0..<2 {
            for (rank, writer) in [(0, zero), (1, one)] {
                let shard = try writer.shardWriter(epoch: epoch, rank: rank)
                // Ranks 0 and 1 both hold sample 5: a padding duplicate, as a distributed sampler writes.
                let ids: [UInt32] = rank == 0 ? [0, 2, 4, 5, 6] : [1, 3, 5, 7, 9]
                let records = ids.map { RecordGenerator.record(schema: writer.baseSchema, sampleID: $0, using: &rng) }
                for record in records { try shard.append(record) }
                try writer.finish(shard)
                written[[epoch, rank]] = records
            }
        }
        return (zero, written)
    }

    func testRankZeroAdoptsTheOtherRanksShardsAndTheDatasetVerifiesClean() throws {
        let directory = try TemporaryDirectory("ranks")
        let root = directory.file("ds")
        let (zero, written) = try writeRanks(root)
        for epoch in 0..<2 { try zero.adoptShard(epoch: epoch, rank: 1) }
        let manifest = try zero.finish()
        XCTAssertEqual(manifest.shards.map { [$0.epoch, $0.rank] }, [[0, 0], [0, 1], [1, 0], [1, 1]])
        let dataset = try ShardDataset(directory: root)
        for entry in manifest.shards {
            let bytes = try readBytes(root + "/" + entry.file)
            XCTAssertEqual(entry.bytes, bytes.count)
            XCTAssertEqual(entry.crc32, CRC32.hex(referenceCRC32(bytes)))
        }
        let report = ShardVerifier().verifyDataset(directory: root)
        XCTAssertTrue(report.isClean, "\(report.problems)")
        XCTAssertEqual(report.records, 20)
        // The duplicate resolves to the lowest rank; rank 1's own samples are found in its shard.
        let five = try XCTUnwrap(try dataset.locate(epoch: 1, key: "k05"))
        XCTAssertEqual(five.shard.schema.rank, 0)
        let seven = try XCTUnwrap(try dataset.locate(epoch: 0, key: "k07"))
        XCTAssertEqual(seven.shard.schema.rank, 1)
        XCTAssertEqual(try seven.shard.record(at: seven.ordinal).sampleID, written[[0, 1]]![3].sampleID)
        // Only rank 0 wrote a key table.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root).filter { $0.hasSuffix(".tsk") }, ["keys.tsk"])
    }

    func testAdoptionRefusesShardsThatAreNotThisDatasetsOrAreDamaged() throws {
        let directory = try TemporaryDirectory("ranks-bad")
        // Another key table: the shard's dataset_checksum is not this dataset's.
        let foreign = directory.file("foreign")
        let (zeroForeign, _) = try writeRanks(foreign, otherKeys: keys.map { $0 + "x" })
        assertAdoption(.manifestMismatch, try zeroForeign.adoptShard(epoch: 0, rank: 1), mentions: "dataset_checksum")
        // Another schema (K).
        var otherK = schema
        otherK.k = 3
        let (zeroK, _) = try writeRanks(directory.file("k"), otherSchema: otherK)
        assertAdoption(.manifestMismatch, try zeroK.adoptShard(epoch: 1, rank: 1), mentions: "classes 50, k 3")
        // A missing shard, a second adoption, and a flipped byte in a block.
        let root = directory.file("ds")
        let (zero, _) = try writeRanks(root)
        assertShardError(.io, try zero.adoptShard(epoch: 2, rank: 1))
        try zero.adoptShard(epoch: 0, rank: 1)
        assertAdoption(.manifestMismatch, try zero.adoptShard(epoch: 0, rank: 1), mentions: "a second shard")
        let path = root + "/" + DatasetWriter.shardFileName(epoch: 1, rank: 1)
        var bytes = try readBytes(path)
        bytes[bytes.count / 2] ^= 0x40  // inside a block (header and index are far smaller than half the file)
        try writeBytes(bytes, to: path)
        let error = shardError(try zero.adoptShard(epoch: 1, rank: 1))
        XCTAssertNotNil(error)
        XCTAssertEqual(error?.location.file, path)
        XCTAssertTrue([.blockCRC, .badIndex, .blockStructure, .footerCRC].contains(error?.code), "\(String(describing: error))")
    }

    private func assertAdoption<T>(_ code: ShardErrorCode, _ body: @autoclosure () throws -> T, mentions fragment: String,
                                   file: StaticString = #filePath, line: UInt = #line) {
        guard let error = shardError(try body(), file: file, line: line) else { return }
        XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
        XCTAssertTrue(error.description.contains(fragment), "\(fragment) not in \(error)", file: file, line: line)
        XCTAssertNotNil(error.location.file, file: file, line: line)
    }
}
