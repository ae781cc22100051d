import XCTest
@testable import ShardFormat

/// The block decoder checks order numbers against K! − 1 byte by byte and decodes a permutation only for
/// records it returns: the bound must agree with the full decode at the edges.
final class OrderBoundTests: XCTestCase {
    func testBoundAgreesWithDecodeAtTheEdges() {
        for k in [1, 2, 10, 12, 13, 20, 21, 100, 256] {
            let largest = OrderNumber.largest(k: k)
            XCTAssertEqual(largest.count, OrderNumber.byteLengths[k], "K = \(k)")
            var ranks = [UInt8](repeating: 0, count: k), digits = [UInt8](repeating: 0, count: k)
            func both(_ number: [UInt8]) -> (bound: Bool, decode: Bool) {
                let bound = number.withUnsafeBytes { n in largest.withUnsafeBufferPointer { OrderNumber.isValid(n, largest: $0) } }
                let decode = number.withUnsafeBytes { n in
                    ranks.withUnsafeMutableBufferPointer { r in digits.withUnsafeMutableBufferPointer { OrderNumber.decode(n, ranks: r, digits: $0) } }
                }
                return (bound, decode)
            }
            guard !largest.isEmpty else { continue }      // K = 1: L = 0, every (empty) number is valid
            let atLargest = both(largest)
            XCTAssertTrue(atLargest.bound && atLargest.decode, "K = \(k): K! − 1 is valid")
            XCTAssertEqual(ranks.map(Int.init), Array((0..<k).reversed()), "K = \(k): K! − 1 is the reversed order")
            var aboveLargest = largest                      // K!: add one to K! − 1
            for i in aboveLargest.indices {
                aboveLargest[i] &+= 1
                if aboveLargest[i] != 0 { break }
            }
            if aboveLargest.contains(where: { $0 != 0 }) {  // K! may need a byte more than L: then no L bytes reach it
                let atFactorial = both(aboveLargest)
                XCTAssertFalse(atFactorial.bound, "K = \(k): K! is refused by the bound")
                XCTAssertFalse(atFactorial.decode, "K = \(k): K! is refused by the decode")
            }
            let all = both([UInt8](repeating: 0xFF, count: largest.count))
            XCTAssertEqual(all.bound, all.decode, "K = \(k): all ones")
            let zero = both([UInt8](repeating: 0, count: largest.count))
            XCTAssertTrue(zero.bound && zero.decode, "K = \(k): zero is the identity")
        }
    }
}
