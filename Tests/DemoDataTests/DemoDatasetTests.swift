import DemoData
import Foundation
import ShardFormat
import XCTest

final class DemoDatasetTests: XCTestCase {
    func testDemoIsDeterministicAndValid() throws {
        let folder = TemporaryFolder("demo")
        let options = DemoOptions(recordsPerShard: 150, epochs: 2, ranks: 2, classes: 60, k: 5, recordsPerBlock: 64, outputSize: 96)
        let summary = try DemoDataset.write(to: folder.file("a"), options: options)
        _ = try DemoDataset.write(to: folder.file("b"), options: options)
        XCTAssertEqual(summary.recordsWritten, 600)
        XCTAssertEqual(summary.keys, 300)
        XCTAssertEqual(summary.shards, 4)
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.file("a")) {
            XCTAssertEqual(FileManager.default.contents(atPath: folder.file("a/" + name)),
                           FileManager.default.contents(atPath: folder.file("b/" + name)), name)
        }
        let report = ShardVerifier().verifyDataset(directory: folder.file("a"))
        XCTAssertTrue(report.isClean, "\(report.problems)")
        let dataset = try ShardDataset(directory: folder.file("a"))
        XCTAssertEqual(dataset.shards[0].schema.augmentation, .params(outputHeight: 96, outputWidth: 96))
        // Every image once per epoch.
        for epoch in 0..<2 {
            var ids: [UInt32] = []
            for shard in dataset.shards(epoch: epoch) {
                try shard.forEachRecord { _, record in ids.append(record.sampleID) }
            }
            XCTAssertEqual(ids.sorted(), (0..<300).map(UInt32.init))
        }
        // The teacher is peaked: the top probability is usually well above uniform.
        var peaked = 0
        try dataset.shards[0].forEachRecord { _, record in if record.values[0] > 0.2 { peaked += 1 } }
        XCTAssertGreaterThan(peaked, 100)
        // A different seed gives different data.
        var other = options
        other.seed = 1
        _ = try DemoDataset.write(to: folder.file("c"), options: other)
        XCTAssertNotEqual(FileManager.default.contents(atPath: folder.file("a/epoch0000-rank000.tshard")),
                          FileManager.default.contents(atPath: folder.file("c/epoch0000-rank000.tshard")))
    }

    func testStatisticsAddUp() throws {
        let folder = TemporaryFolder("demo")
        _ = try DemoDataset.write(to: folder.path, options: DemoOptions(recordsPerShard: 100, epochs: 1, ranks: 1, classes: 300,
                                                                        k: 4, recordsPerBlock: 32))
        let reader = try ShardReader(path: folder.file("epoch0000-rank000.tshard"))
        let statistics = try reader.statistics()
        XCTAssertEqual(statistics.records, 100)
        XCTAssertEqual(statistics.blocks, 4)
        let sections = statistics.sections.reduce(0) { $0 + $1.stored }
        XCTAssertEqual(sections + statistics.overheadBytes, reader.fileSize)
        XCTAssertEqual(statistics[.sampleIDs].decoded, 400)
        XCTAssertEqual(statistics[.augmentation].decoded, 8000)
        XCTAssertEqual(statistics[.values].decoded, 800)
        XCTAssertEqual(statistics[.indices].decoded, 800)  // C = 300: two bytes per index
        XCTAssertEqual(statistics[.order].decoded, 100)  // 4! = 24 fits one byte
        var sum = ShardStatistics()
        sum += statistics
        sum += statistics
        XCTAssertEqual(sum.records, 200)
        XCTAssertEqual(sum.fileBytes, 2 * reader.fileSize)
    }
}
