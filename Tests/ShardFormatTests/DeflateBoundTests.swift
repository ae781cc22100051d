import CZlib
import XCTest
@testable import ShardFormat

/// ``DeflateBound``: never above the length zlib really produces, for both strategies, on byte planes
/// of every kind a block can hold (uniform, skewed, long runs, runs across plane ends, planes longer
/// than one deflate block); and tight enough to rule a strategy out where it loses clearly.
final class DeflateBoundTests: XCTestCase {
    private func planes(_ kind: Int, lengths: [Int], using rng: inout SplitMix64) -> [UInt8] {
        var bytes: [UInt8] = []
        for length in lengths {
            for i in 0..<length {
                switch kind {
                case 0: bytes.append(UInt8.random(in: 0...255, using: &rng))
                case 1: bytes.append(rng.chance(0.9) ? 0 : UInt8.random(in: 0...3, using: &rng))
                case 2: bytes.append(UInt8((i / Int.random(in: 1...300, using: &rng)) % 3))
                case 3: bytes.append(0)
                default: bytes.append(UInt8(i % 7 == 0 ? 1 : 0))
                }
            }
        }
        return bytes
    }

    func testBoundsNeverExceedTheStream() throws {
        var rng = SplitMix64(seed: 3)
        let rle = SectionDeflater(strategy: Z_RLE)
        let huffman = SectionDeflater(strategy: Z_HUFFMAN_ONLY)
        for lengths in [[1], [5], [100, 100], [12_800, 12_800], [40_000], [3, 20_000, 7], [0, 50, 0, 900]] {
            for kind in 0..<5 {
                let bytes = planes(kind, lengths: lengths, using: &rng)
                var ends: [Int] = []
                for length in lengths { ends.append((ends.last ?? 0) + length) }
                var output = [UInt8](repeating: 0, count: bytes.count + 1024)
                try bytes.withUnsafeBytes { input in
                    for codec in [rle, huffman] {
                        let size = try XCTUnwrap(output.withUnsafeMutableBytes { codec.compress(input, planeEnds: ends, into: $0) })
                        let bound = codec.lowerBound(input, planeEnds: ends)
                        XCTAssertLessThanOrEqual(bound, size, "planes \(lengths), kind \(kind), \(codec.hasCheapBound ? "Huffman-only" : "RLE")")
                        XCTAssertGreaterThan(bound, 0)
                    }
                }
            }
        }
    }

    func testBoundsRuleOutTheLoser() throws {
        var rng = SplitMix64(seed: 4)
        let rle = SectionDeflater(strategy: Z_RLE)
        let huffman = SectionDeflater(strategy: Z_HUFFMAN_ONLY)
        let uniform = planes(0, lengths: [4096], using: &rng)
        let zeros = planes(3, lengths: [4096], using: &rng)
        uniform.withUnsafeBytes { input in
            // Uniform bytes cannot shrink: neither strategy gets to run.
            XCTAssertGreaterThanOrEqual(huffman.lowerBound(input, planeEnds: [4096]), 4096)
            XCTAssertGreaterThanOrEqual(rle.lowerBound(input, planeEnds: [4096]), 4096)
        }
        zeros.withUnsafeBytes { input in
            // One long run: RLE's bound stays tiny, Huffman-only needs at least a bit per byte... of entropy 0,
            // so only its header and trailer; neither may exceed what zlib makes.
            XCTAssertLessThan(rle.lowerBound(input, planeEnds: [4096]), 64)
        }
    }
}
