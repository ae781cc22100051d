import XCTest
@testable import ShardFormat

/// ``ShardSchema/defaultRecordsPerBlock(k:)``: the largest power of two R with R·K ≤ 16,384.
final class BlockSizeDefaultTests: XCTestCase {
    func testLandmarks() {
        XCTAssertEqual(ShardSchema.defaultRecordsPerBlock(k: 100), 128)
        XCTAssertEqual(ShardSchema.defaultRecordsPerBlock(k: 10), 1024)
        XCTAssertEqual(ShardSchema.defaultRecordsPerBlock(k: 5), 2048)
        XCTAssertEqual(ShardSchema.defaultRecordsPerBlock(k: 1), 16_384)
        XCTAssertEqual(ShardSchema.defaultRecordsPerBlock(k: 256), 64)
        XCTAssertEqual(ShardSchema.defaultRecordsPerBlock(k: 0), 16_384)
    }

    func testEveryKGetsTheLargestPowerOfTwoThatFits() {
        for k in 1...ShardSchema.maxK {
            let r = ShardSchema.defaultRecordsPerBlock(k: k)
            XCTAssertEqual(r & (r - 1), 0, "K = \(k): \(r) is not a power of two")
            XCTAssertLessThanOrEqual(r * k, 16_384, "K = \(k)")
            XCTAssertGreaterThan(2 * r * k, 16_384, "K = \(k)")
            XCTAssertNoThrow(try ShardSchema(classes: 256, k: k, recordsPerBlock: r).validate())
        }
    }
}
