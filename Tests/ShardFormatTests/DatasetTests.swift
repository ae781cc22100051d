import Foundation
import XCTest
@testable import ShardFormat

/// A dataset folder (Spec section 6): DatasetWriter → ShardDataset lookups by (epoch, key) → verifier,
/// then damaged manifests, missing files and foreign shards.
final class DatasetTests: XCTestCase {
    let keys = (0..<20).map { String(format: "img%03d", $0) }
    let schema = ShardSchema(classes: 100, k: 3, augmentation: .seed, recordsPerBlock: 4, provenance: ["teacher": "unit"])
    /// (epoch, rank) → key ids written there. Keys 8 and 9 are in both ranks of epoch 0.
    let plan: [(epoch: Int, rank: Int, ids: [UInt32])] = [
        (0, 0, Array(0..<10)), (0, 1, Array(8..<16)), (1, 0, Array(0..<6)), (1, 1, Array(10..<20)),
    ]

    /// Writes the dataset; returns the records written per (epoch, rank).
    @discardableResult
    func writeDataset(_ directory: String, keys: [String]? = nil, seed: UInt64 = 1) throws -> [[Int]: [TestRecord]] {
        let writer = try DatasetWriter(directory: directory, keys: try KeyTable(sorting: keys ?? self.keys), schema: schema)
        var rng = SplitMix64(seed: seed)
        var written: [[Int]: [TestRecord]] = [:]
        for (epoch, rank, ids) in plan {
            let shard = try writer.shardWriter(epoch: epoch, rank: rank)
            let records = ids.map { RecordGenerator.record(schema: schema, sampleID: $0, using: &rng) }
            for record in records { try shard.append(record) }
            try writer.finish(shard)
            written[[epoch, rank]] = records
        }
        _ = try writer.finish()
        return written
    }

    func copyDataset(_ source: String, _ name: String, in directory: TemporaryDirectory) throws -> String {
        let target = directory.file(name)
        try FileManager.default.copyItem(atPath: source, toPath: target)
        return target
    }

    func editManifest(_ directory: String, _ change: (inout DatasetManifest) -> Void) throws {
        var manifest = try DatasetManifest.read(directory: directory)
        change(&manifest)
        try manifest.write(directory: directory)
    }

    func shardName(_ epoch: Int, _ rank: Int) -> String { DatasetWriter.shardFileName(epoch: epoch, rank: rank) }

    func testWriteLookUpAndVerify() throws {
        let directory = try TemporaryDirectory("dataset")
        let root = directory.file("ds")
        let written = try writeDataset(root)
        let dataset = try ShardDataset(directory: root)
        XCTAssertEqual(dataset.epochs, [0, 1])
        XCTAssertEqual(try dataset.keys.loadAll().keys, keys)
        XCTAssertEqual(dataset.manifest.shards.map(\.file), [shardName(0, 0), shardName(0, 1), shardName(1, 0), shardName(1, 1)])
        XCTAssertEqual(dataset.manifest.classes, 100)
        XCTAssertEqual(dataset.manifest.k, 3)
        XCTAssertEqual(dataset.manifest.keys.count, 20)
        let keysCRC = CRC32.hex(referenceCRC32(try readBytes(root + "/keys.tsk")))
        XCTAssertEqual(dataset.manifest.keys.crc32, keysCRC)
        for (entry, shard) in zip(dataset.manifest.shards, dataset.shards) {
            let bytes = try readBytes(root + "/" + entry.file)
            XCTAssertEqual(entry.bytes, bytes.count)
            XCTAssertEqual(entry.crc32, CRC32.hex(referenceCRC32(bytes)))
            XCTAssertEqual(entry.records, written[[entry.epoch, entry.rank]]?.count)
            XCTAssertEqual(shard.schema.provenance["dataset_checksum"], keysCRC)
            XCTAssertEqual(shard.schema.provenance["teacher"], "unit")
        }

        for (epoch, rank, ids) in plan {
            for (ordinal, id) in ids.enumerated() {
                guard let found = try dataset.locate(epoch: epoch, key: keys[Int(id)]) else {
                    XCTFail("epoch \(epoch) key \(keys[Int(id)]) not found")
                    continue
                }
                let owner = epoch == 0 && (8..<10).contains(id) ? 0 : rank  // lowest rank wins
                XCTAssertEqual(found.shard.schema.rank, owner)
                XCTAssertEqual(found.shard.schema.epoch, epoch)
                let expected = written[[epoch, owner]]!.first { $0.sampleID == id }!
                XCTAssertEqual(TestRecord(try found.shard.record(at: found.ordinal)), expected)
                if owner == rank { XCTAssertEqual(found.ordinal, ordinal) }
            }
        }
        // Key 9 of epoch 0 is in both ranks with different values: rank 0's record is returned.
        let both = try XCTUnwrap(try dataset.locate(epoch: 0, key: "img009"))
        XCTAssertEqual(both.shard.schema.rank, 0)
        XCTAssertNotEqual(written[[0, 0]]!.last, written[[0, 1]]!.dropFirst().first)
        XCTAssertNil(try dataset.locate(epoch: 1, key: "img007"))
        XCTAssertNil(try dataset.locate(epoch: 2, key: "img000"))
        XCTAssertNil(try dataset.locate(epoch: 0, key: "img999"))
        XCTAssertNil(try dataset.locate(epoch: 0, sampleID: 25))

        let report = ShardVerifier().verifyDataset(directory: root)
        XCTAssertTrue(report.isClean, "\(report.problems)")
        XCTAssertEqual(report.files, 5, "four shards and the key table")
        XCTAssertEqual(report.records, plan.map(\.ids.count).reduce(0, +))
    }

    func testDamagedDatasetsAreReportedWithTheFile() throws {
        let directory = try TemporaryDirectory("dataset-damage")
        let clean = directory.file("clean")
        try writeDataset(clean)
        let verifier = ShardVerifier()

        func problems(_ root: String) -> [(code: String, file: String)] {
            verifier.verifyDataset(directory: root).problems.map { ($0.code, $0.file ?? "") }
        }

        // 1. Wrong CRC of one shard in the manifest.
        let wrongCRC = try copyDataset(clean, "crc", in: directory)
        try editManifest(wrongCRC) { $0.shards[1].crc32 = "00000000" }
        var found = problems(wrongCRC)
        XCTAssertEqual(found.map(\.code), ["manifest-mismatch"])
        XCTAssertEqual(found.first?.file, wrongCRC + "/" + shardName(0, 1))

        // 2. Wrong size and record count.
        let wrongSize = try copyDataset(clean, "size", in: directory)
        try editManifest(wrongSize) { $0.shards[2].bytes += 1; $0.shards[3].records -= 1 }
        found = problems(wrongSize)
        XCTAssertEqual(found.map(\.code), ["manifest-mismatch", "manifest-mismatch", "manifest-mismatch"], "\(found)")
        XCTAssertEqual(Set(found.map(\.file)), [wrongSize + "/" + shardName(1, 0), wrongSize + "/" + shardName(1, 1)])
        assertShardError(.manifestMismatch, try ShardDataset(directory: wrongSize))

        // 3. A missing shard file.
        let missing = try copyDataset(clean, "missing", in: directory)
        try FileManager.default.removeItem(atPath: missing + "/" + shardName(1, 0))
        found = problems(missing)
        XCTAssertEqual(found.map(\.code), ["io"])
        XCTAssertEqual(found.first?.file, missing + "/" + shardName(1, 0))
        let missingError = shardError(try ShardDataset(directory: missing))
        XCTAssertEqual(missingError?.code, .io)
        XCTAssertEqual(missingError?.location.file, missing + "/" + shardName(1, 0))

        // 4. A shard of another dataset (other keys, so another dataset_checksum) put in place, with the
        //    manifest's size and CRC updated so that only the checksum link betrays it.
        let other = directory.file("other")
        try writeDataset(other, keys: keys.map { $0 + "-other" }, seed: 1)
        let foreign = try copyDataset(clean, "foreign", in: directory)
        let name = shardName(0, 1)
        try FileManager.default.removeItem(atPath: foreign + "/" + name)
        try FileManager.default.copyItem(atPath: other + "/" + name, toPath: foreign + "/" + name)
        let otherBytes = try readBytes(foreign + "/" + name)
        try editManifest(foreign) {
            $0.shards[1].bytes = otherBytes.count
            $0.shards[1].crc32 = CRC32.hex(referenceCRC32(otherBytes))
        }
        found = problems(foreign)
        XCTAssertEqual(found.map(\.code), ["manifest-mismatch"], "\(found)")
        XCTAssertEqual(found.first?.file, foreign + "/" + name)
        XCTAssertTrue(verifier.verifyDataset(directory: foreign).problems.first?.message.contains("dataset_checksum") ?? false)
        let foreignError = shardError(try ShardDataset(directory: foreign))
        XCTAssertEqual(foreignError?.code, .manifestMismatch)
        XCTAssertEqual(foreignError?.location.file, foreign + "/" + name)

        // 5. The key table: wrong CRC and wrong count in the manifest; damaged file.
        let keyCRC = try copyDataset(clean, "keycrc", in: directory)
        try editManifest(keyCRC) { $0.keys.crc32 = "ffffffff" }
        found = problems(keyCRC)
        XCTAssertTrue(found.contains { $0.code == "manifest-mismatch" && $0.file == keyCRC + "/keys.tsk" }, "\(found)")
        let keyCount = try copyDataset(clean, "keycount", in: directory)
        try editManifest(keyCount) { $0.keys.count = 21 }
        XCTAssertEqual(problems(keyCount).map(\.code), ["manifest-mismatch"])
        assertShardError(.manifestMismatch, try ShardDataset(directory: keyCount))

        // 6. The manifest itself: missing, not JSON, a path outside the folder, a second shard for one
        //    (epoch, rank), header fields that disagree.
        let noManifest = try copyDataset(clean, "nomanifest", in: directory)
        try FileManager.default.removeItem(atPath: noManifest + "/manifest.json")
        XCTAssertEqual(problems(noManifest).map(\.code), ["io"])
        assertShardError(.io, try ShardDataset(directory: noManifest))
        let garbage = try copyDataset(clean, "garbage", in: directory)
        try writeBytes(Array("{\"format\": ".utf8), to: garbage + "/manifest.json")
        XCTAssertEqual(problems(garbage).map(\.code), ["manifest-mismatch"])
        let escape = try copyDataset(clean, "escape", in: directory)
        try editManifest(escape) { $0.shards[0].file = "../clean/" + self.shardName(0, 0) }
        XCTAssertEqual(problems(escape).map(\.code), ["manifest-mismatch"])
        let twice = try copyDataset(clean, "twice", in: directory)
        try editManifest(twice) { $0.shards.append($0.shards[0]) }
        XCTAssertEqual(problems(twice).map(\.code), ["manifest-mismatch"])
        let fields = try copyDataset(clean, "fields", in: directory)
        try editManifest(fields) { $0.classes = 101 }
        XCTAssertEqual(problems(fields).map(\.code), Array(repeating: "manifest-mismatch", count: 4))
        let epochs = try copyDataset(clean, "epochs", in: directory)
        try editManifest(epochs) { $0.shards[3].epoch = 7 }
        XCTAssertEqual(problems(epochs).map(\.code), ["manifest-mismatch"])
        assertShardError(.manifestMismatch, try ShardDataset(directory: epochs))
    }

    func testSampleIDsBeyondTheKeyTableAreReported() throws {
        let directory = try TemporaryDirectory("dataset-ids")
        let root = directory.file("ds")
        let writer = try DatasetWriter(directory: root, keys: try KeyTable(sorting: ["a", "b", "c"]), schema: schema)
        let shard = try writer.shardWriter(epoch: 0, rank: 0)
        try shard.append(TestRecord(sampleID: 2, augmentation: [0, 0, 0, 0], indices: [1, 2, 3], values: [0.5, 0.25, 0.125]))
        try shard.append(TestRecord(sampleID: 3, augmentation: [0, 0, 0, 0], indices: [1, 2, 3], values: [0.5, 0.25, 0.125]))
        try writer.finish(shard)
        _ = try writer.finish()
        let problems = ShardVerifier().verifyDataset(directory: root).problems
        XCTAssertEqual(problems.map(\.code), ["manifest-mismatch"])
        XCTAssertEqual(problems.first?.record, 1)
        XCTAssertEqual(problems.first?.sampleID, 3)
    }

    /// Problems inside a dataset's shard name the sample by its key.
    func testShardProblemsNameTheKey() throws {
        let directory = try TemporaryDirectory("dataset-keyname")
        let root = directory.file("ds")
        try writeDataset(root)
        let path = root + "/" + shardName(1, 1)
        var model = try ShardFileModel(try readBytes(path))
        var bits = ValueSection.decode(try model.decoded(block: 0, section: 2), k: 3)
        bits[1][0] = Float16.nan.bitPattern
        model.store(block: 0, section: 2, ValueSection.encode(bits))
        let damaged = model.serialized()
        try writeBytes(damaged, to: path)
        try editManifest(root) {
            $0.shards[3].bytes = damaged.count
            $0.shards[3].crc32 = CRC32.hex(referenceCRC32(damaged))
        }
        let problems = ShardVerifier().verifyDataset(directory: root).problems
        XCTAssertEqual(problems.map(\.code), ["bad-value"])
        XCTAssertEqual(problems.first?.sampleKey, keys[11])
        XCTAssertEqual(problems.first?.record, 1)
    }
}
