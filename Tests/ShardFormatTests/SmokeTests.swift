import XCTest
@testable import ShardFormat

final class SmokeTests: XCTestCase {
    func testWriteReadRoundTrip() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("smoke-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/a.tshard"
        let schema = ShardSchema(classes: 1000, k: 5, augmentation: .seed, recordsPerBlock: 7)
        let writer = try ShardWriter(path: path, schema: schema)
        var expected: [ShardRecord] = []
        for i in 0..<50 {
            var idx = Set<Int32>()
            while idx.count < 5 { idx.insert(Int32.random(in: 0..<1000)) }
            let values: [Float16] = [0.3, 0.2, 0.1, 0.05, 0.01]
            let rec = ShardRecord(sampleID: UInt32(100 - i), augmentation: [1, 2, 3, UInt8(i)], indices: Array(idx), values: values)
            try writer.append(sampleID: rec.sampleID, indices: rec.indices, values: rec.values, augmentation: rec.augmentation)
            expected.append(rec)
        }
        let info = try writer.finish()
        XCTAssertEqual(info.records, 50)
        let reader = try ShardReader(path: path)
        XCTAssertEqual(reader.recordCount, 50)
        for (i, rec) in expected.enumerated() { XCTAssertEqual(try reader.record(at: i), rec) }
        XCTAssertEqual(try reader.ordinal(ofSample: 90), 10)
        var dense = [Float](repeating: 0, count: 2000)
        try dense.withUnsafeMutableBufferPointer { try reader.makeCursor().dense([0, 1], into: $0) }
        XCTAssertEqual(Double(dense[0..<1000].reduce(0, +)), 1.0, accuracy: 1e-4)
        XCTAssertTrue(ShardVerifier().verifyShard(path: path).isClean)
    }
}
