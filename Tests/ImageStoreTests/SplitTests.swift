import XCTest
@testable import ImageStore

final class SplitTests: XCTestCase {
    let keys = (0..<5000).map { "digits_\(zeroPadded($0, width: 5))" }

    func testKeyHashSplitIsDeterministicDisjointAndStable() {
        let split = HeldOutSplit.byKeyHash(keys, heldOutFraction: 0.2)
        XCTAssertEqual(split, HeldOutSplit.byKeyHash(keys, heldOutFraction: 0.2))
        XCTAssertEqual(Set(split.train).union(split.heldOut), Set(0..<5000))
        XCTAssertTrue(Set(split.train).isDisjoint(with: split.heldOut))
        XCTAssertEqual(Double(split.heldOut.count) / 5000, 0.2, accuracy: 0.025)
        // Membership depends on the key alone: a prefix of the keys splits the same way.
        let prefix = HeldOutSplit.byKeyHash(Array(keys.prefix(1000)), heldOutFraction: 0.2)
        XCTAssertEqual(prefix.heldOut, split.heldOut.filter { $0 < 1000 })
        // A different salt gives a different split; fraction 0 and 1 are the extremes.
        XCTAssertNotEqual(HeldOutSplit.byKeyHash(keys, heldOutFraction: 0.2, salt: 1).heldOut, split.heldOut)
        XCTAssertEqual(HeldOutSplit.byKeyHash(keys, heldOutFraction: 0).heldOut, [])
        XCTAssertEqual(HeldOutSplit.byKeyHash(keys, heldOutFraction: 1).train, [])
    }

    func testIndexSplit() {
        let split = HeldOutSplit.byIndex(count: 10, period: 5, offset: 2)
        XCTAssertEqual(split.heldOut, [2, 7])
        XCTAssertEqual(split.train, [0, 1, 3, 4, 5, 6, 8, 9])
        XCTAssertEqual(HeldOutSplit.byIndex(count: 1797, period: 5).heldOut.count, 360)
    }
}
