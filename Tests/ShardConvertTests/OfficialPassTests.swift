import Foundation
import ShardFormat
import XCTest
@testable import ShardConvert

/// A real multi-rank pass, written by the official writer's rules (``OfficialPassWriter``): 1,001 images
/// over 3 ranks for 2 epochs, so the distributed sampler pads one image per epoch into a second rank.
/// Converting and exporting gives back every file byte for byte, with any thread count.
final class OfficialPassTests: XCTestCase {
    let pass = OfficialPassWriter(images: 1001, worldSize: 3, epochs: 2, k: 5, classes: 40, seed: 2024)

    func testThreeRankPassRoundTripsByteForByte() throws {
        let folder = TemporaryFolder("official-pass")
        let source = folder.file("source")
        let padded = try pass.write(to: source)
        XCTAssertEqual(padded.map(\.count), [1, 1], "1,002 positions for 1,001 images: one image per epoch is padded")

        var datasets: [Int: [String: Data]] = [:]
        for threads in [1, 2] {
            let dataset = folder.file("dataset-\(threads)")
            // Small blocks: the shards have many, and a short last one.
            let summary = try OfficialImporter.importDataset(
                from: source, to: dataset, options: OfficialImportOptions(classes: pass.classes, recordsPerBlock: 16, threads: threads))
            XCTAssertEqual(summary.recordsRead, 2 * 1002)
            XCTAssertEqual(summary.recordsWritten, 2 * 1002, "every rank keeps its copy of a padded key")
            XCTAssertEqual(summary.duplicatesDropped, 0)
            XCTAssertEqual(summary.keysInSeveralRanks, 2)
            XCTAssertEqual(summary.keys, 1001)
            XCTAssertEqual(summary.shards, 6)
            XCTAssertTrue(ShardVerifier().verifyDataset(directory: dataset).isClean)
            datasets[threads] = try filesByPath(dataset)

            let exported = folder.file("exported-\(threads)")
            let export = try OfficialExporter.export(dataset: dataset, to: exported)
            XCTAssertEqual(export.records, 2 * 1002)
            let input = try filesByPath(source)
            let output = try filesByPath(exported)
            XCTAssertEqual(Set(output.keys), Set(input.keys))
            XCTAssertEqual(input.count, 12)
            for (name, bytes) in input {
                XCTAssertEqual(output[name], bytes, "\(name) (threads \(threads))")
            }
            try checkPaddedImagesAreInTwoShards(dataset, padded: padded)
        }
        XCTAssertEqual(datasets[1], datasets[2], "the dataset's bytes do not depend on the thread count")
    }

    /// Per epoch, the sample ids that two ranks' shards share are exactly the padded images', with other
    /// seeds in the two shards.
    private func checkPaddedImagesAreInTwoShards(_ path: String, padded: [[Int]]) throws {
        let dataset = try ShardDataset(directory: path)
        for epoch in 0..<pass.epochs {
            var holders: [UInt32: [(rank: Int, seed: Int32)]] = [:]
            for shard in dataset.shards where shard.schema.epoch == epoch {
                for ordinal in 0..<shard.recordCount {
                    let record = try shard.record(at: ordinal)
                    holders[record.sampleID, default: []].append((shard.schema.rank, record.seed!))
                }
            }
            let shared = holders.filter { $0.value.count > 1 }
            let paddedIDs = try padded[epoch].map { try dataset.keys.id(of: pass.key($0))! }
            XCTAssertEqual(Set(shared.keys), Set(paddedIDs), "epoch \(epoch)")
            for (id, copies) in shared {
                XCTAssertEqual(copies.count, 2, "sample \(id), epoch \(epoch)")
                XCTAssertNotEqual(copies[0].rank, copies[1].rank)
                XCTAssertNotEqual(copies[0].seed, copies[1].seed, "each rank's copy is its own teacher output")
            }
        }
    }

    /// A key repeated within one rank's keys file (which the official writer never writes) is dropped,
    /// counted, and absent from the export; the rest round-trips.
    func testRepeatWithinARankIsDroppedAndCounted() throws {
        let folder = TemporaryFolder("official-repeat")
        try OfficialWriter.write(to: folder.path, k: 3, epoch: 0, ranks: [["b", "a", "b", "c"], ["a", "d"]])
        let dataset = folder.file("dataset")
        let summary = try OfficialImporter.importDataset(from: folder.path, to: dataset, options: OfficialImportOptions(classes: 50))
        XCTAssertEqual(summary.recordsRead, 6)
        XCTAssertEqual(summary.duplicatesDropped, 1)
        XCTAssertEqual(summary.recordsWritten, 5)
        XCTAssertEqual(summary.keysInSeveralRanks, 1)
        let exported = folder.file("exported")
        _ = try OfficialExporter.export(dataset: dataset, to: exported)
        let input = try OfficialFixture(path: folder.path)
        let output = try OfficialFixture(path: exported)
        XCTAssertEqual(output.ranks[0].keys, ["b", "a", "c"])
        XCTAssertEqual(output.ranks[0].records, [input.ranks[0].records[0], input.ranks[0].records[1], input.ranks[0].records[3]])
        XCTAssertEqual(output.ranks[1].keys, input.ranks[1].keys)
        XCTAssertEqual(output.ranks[1].records, input.ranks[1].records)
    }
}
