import XCTest
@testable import ShardFormat

/// ``ShardSchema/defaultRecordsPerBlock(k:)``: the largest power of two R with R·K ≤ 2,048.
final class BlockSizeDefaultTests: XCTestCase {
    func testLandmarks() {
        XCTAssertEqual(ShardSchema.defaultRecordsPerBlock(k: 100), 16)
        XCTAssertEqual(ShardSchema.defaultRecordsPerBlock(k: 10), 128)
        XCTAssertEqual(ShardSchema.defaultRecordsPerBlock(k: 5), 256)
        XCTAssertEqual(ShardSchema.defaultRecordsPerBlock(k: 1), 2_048)
        XCTAssertEqual(ShardSchema.defaultRecordsPerBlock(k: 256), 8)
        XCTAssertEqual(ShardSchema.defaultRecordsPerBlock(k: 0), 2_048)
    }

    func testEveryKGetsTheLargestPowerOfTwoThatFits() {
        for k in 1...ShardSchema.maxK {
            let r = ShardSchema.defaultRecordsPerBlock(k: k)
            XCTAssertEqual(r & (r - 1), 0, "K = \(k): \(r) is not a power of two")
            XCTAssertLessThanOrEqual(r * k, 2_048, "K = \(k)")
            XCTAssertGreaterThan(2 * r * k, 2_048, "K = \(k)")
            XCTAssertNoThrow(try ShardSchema(classes: 256, k: k, recordsPerBlock: r).validate())
        }
    }
}
