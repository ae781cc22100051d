import Foundation
import XCTest
@testable import ShardFormat

/// The order section's codec (Spec 3.5): byte lengths, the worked example, round trips up to K = 256
/// (through the UInt64 fast path up to K = 20 and the bignum path from K = 21), and rejection of X ≥ K!.
final class OrderNumberTests: XCTestCase {
    /// Ranks r_j of stored indices: entry j's position among the sorted indices.
    func ranks(of indices: [Int32]) -> [UInt8] {
        let sorted = indices.sorted()
        return indices.map { UInt8(sorted.firstIndex(of: $0)!) }
    }

    func encode(_ ranks: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0xAA, count: OrderNumber.byteLength(k: ranks.count))
        ranks.withUnsafeBufferPointer { r in out.withUnsafeMutableBytes { OrderNumber.encode(ranks: r, into: $0) } }
        return out
    }

    /// The decoded ranks, or nil when the library rejects the number.
    func decode(_ bytes: [UInt8], k: Int) -> [UInt8]? {
        var ranks = [UInt8](repeating: 0, count: k)
        var digits = [UInt8](repeating: 0, count: k)
        let ok = bytes.withUnsafeBytes { input in
            ranks.withUnsafeMutableBufferPointer { r in digits.withUnsafeMutableBufferPointer { OrderNumber.decode(input, ranks: r, digits: $0) } }
        }
        return ok ? ranks : nil
    }

    func testSpecWorkedExample() throws {
        // K = 3, stored indices [7, 2, 5]: s = [2, 5, 7], r = [2, 0, 1], d = [2, 0, 0], X = 4, L = 1.
        let r = ranks(of: [7, 2, 5])
        XCTAssertEqual(r, [2, 0, 1])
        XCTAssertEqual(OrderNumber.byteLength(k: 3), 1)
        XCTAssertEqual(encode(r), [0x04])
        XCTAssertEqual(decode([0x04], k: 3), [2, 0, 1])
        XCTAssertEqual(OrderSection.encode([7, 2, 5]), [0x04])

        // And in a written file: the order section holds 04, the index section the gaps 2, 2, 1.
        let directory = try TemporaryDirectory("order")
        let path = directory.file("example.tshard")
        try writeShard(path, ShardSchema(classes: 10, k: 3, recordsPerBlock: 1),
                       [TestRecord(sampleID: 0, indices: [7, 2, 5], values: [0.5, 0.25, 0.125])])
        let model = try ShardFileModel(try readBytes(path))
        XCTAssertEqual(try model.decoded(block: 0, section: 4), [0x04])
        XCTAssertEqual(try model.decoded(block: 0, section: 3), [2, 2, 1])
    }

    func testByteLengthIsCeilingOfLog2FactorialOverEight() {
        XCTAssertEqual(OrderNumber.byteLength(k: 1), 0)
        var log2Factorial = 0.0
        for k in 1...256 {
            log2Factorial += log2(Double(k))
            let expected = Int((log2Factorial / 8).rounded(.up))
            // Guard the floating-point reference against a value too close to a whole byte to trust.
            let distance = abs(log2Factorial / 8 - (log2Factorial / 8).rounded())
            if k > 2 { XCTAssertGreaterThan(distance, 1e-9, "K = \(k): reference too close to call") }
            XCTAssertEqual(OrderNumber.byteLength(k: k), expected, "K = \(k)")
            XCTAssertEqual(OrderNumber.byteLength(k: k), OrderSection.length(k: k), "K = \(k)")
        }
        // Landmarks: 20! < 2^64 ≤ 21!, 256! needs 1684 bits.
        XCTAssertEqual(OrderNumber.byteLength(k: 20), 8)
        XCTAssertEqual(OrderNumber.byteLength(k: 21), 9)
        XCTAssertEqual(OrderNumber.byteLength(k: 256), 211)
        XCTAssertEqual(ShardSchema(classes: 300, k: 10).orderLength, 3)
    }

    func testRandomPermutationsRoundTripAndMatchTheReferenceEncoding() {
        var rng = SplitMix64(seed: 31)
        for k in [1, 2, 3, 7, 12, 19, 20, 21, 22, 33, 64, 100, 255, 256] {
            var permutations: [[UInt8]] = [Array(0..<UInt8(k - 1)) + [UInt8(k - 1)]]  // identity: X = 0
            permutations.append(Array(permutations[0].reversed()))                       // reversed: X = K! − 1
            for _ in 0..<(k > 100 ? 3 : 20) { permutations.append(permutations[0].shuffled(using: &rng)) }
            for ranks in permutations {
                let bytes = encode(ranks)
                XCTAssertEqual(bytes.count, OrderNumber.byteLength(k: k))
                XCTAssertEqual(decode(bytes, k: k), ranks, "K = \(k)")
                // Independent encoding (byte bignum, straight from the spec's formula).
                XCTAssertEqual(bytes, OrderSection.encode(ranks.map { Int32($0) }), "K = \(k)")
                XCTAssertEqual(OrderSection.decode(bytes, k: k), ranks.map(Int.init), "K = \(k)")
            }
            XCTAssertTrue(encode(permutations[0]).allSatisfy { $0 == 0 }, "identity must be X = 0 at K = \(k)")
            if k >= 2 {
                XCTAssertEqual(encode(permutations[1]), ByteBignum.fixed(ByteBignum.decrement(ByteBignum.factorial(k)), OrderNumber.byteLength(k: k)),
                               "reversed must be X = K! − 1 at K = \(k)")
            }
        }
    }

    func testNumbersAtOrAboveKFactorialAreRejected() {
        for k in [2, 3, 5, 10, 19, 20, 21, 22, 40, 128, 256] {
            let length = OrderNumber.byteLength(k: k)
            let factorial = ByteBignum.factorial(k)
            let kFactorial = ByteBignum.fixed(factorial, length)
            let maximum = ByteBignum.fixed(ByteBignum.decrement(factorial), length)
            XCTAssertNotNil(decode(maximum, k: k), "K! − 1 must decode at K = \(k)")
            XCTAssertNil(decode(kFactorial, k: k), "K! must be rejected at K = \(k)")
            XCTAssertNil(decode(ByteBignum.fixed(ByteBignum.increment(factorial), length), k: k), "K! + 1 at K = \(k)")
            XCTAssertNil(decode([UInt8](repeating: 0xFF, count: length), k: k), "all ones at K = \(k)")
            // Only the top byte too big: catches a decoder that drops high bits.
            var top = [UInt8](repeating: 0, count: length)
            top[length - 1] = 0xFF
            XCTAssertNil(decode(top, k: k), "top byte 0xFF at K = \(k)")
        }
    }
}
