import Foundation

/// Lower bounds on the length of the zlib streams ``SectionDeflater`` makes, from the bytes alone in one
/// pass, so that a block encoder compresses with a candidate strategy only when it could still beat the
/// best result so far (at K = 100 that leaves one zlib run per section: RLE for the values, Huffman-only
/// for the indices, none for the order numbers).
///
/// zlib ends a deflate block at every plane end (Z_BLOCK) and after every 16,383 symbols, and writes each
/// block stored, with the fixed code, or with its own Huffman code, whichever is shortest. So a block
/// costs at least the least of: its bytes plus 35 bits (stored); the fixed code's lengths of its symbols
/// (8 or 9 bits a byte); the entropy of its symbols (no prefix code does better) plus its code's
/// description (at least 29 bits of counts and 1 bit per 2 symbols used). The symbols are the bytes for
/// Z_HUFFMAN_ONLY; for Z_RLE they are what zlib's greedy parse emits (a run of at least 3 copies of the
/// previous byte, up to 258, becomes one length symbol with its extra bits and a distance), which
/// ``rle(_:planeEnds:)`` replays. The stream adds 2 header and 4 trailer bytes. Should zlib parse
/// differently, only the choice between candidates could suffer, never a file: any stream is valid.
enum DeflateBound {
    /// lit_bufsize − 1 at memLevel 8: symbols zlib gathers before it ends a block on its own.
    static let symbolsPerBlock = (1 << 14) - 1
    /// Literal/length symbols: 256 bytes, end of block, 29 length codes.
    private static let alphabet = 286

    static func huffmanOnly(_ input: UnsafeRawBufferPointer, planeEnds: [Int]) -> Int {
        guard let bytes = input.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return 6 }
        // Four interleaved tables, so that runs of one byte do not stall on a single counter.
        return withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 4 * 256) { tables in
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: alphabet) { counts in
                var bits = 0.0
                var start = 0
                for end in planeEnds {
                    var blockStart = start
                    while blockStart < end {
                        let blockEnd = min(end, blockStart + symbolsPerBlock)
                        tables.update(repeating: 0)
                        var i = blockStart
                        while i + 4 <= blockEnd {
                            tables[Int(bytes[i])] &+= 1
                            tables[256 + Int(bytes[i + 1])] &+= 1
                            tables[512 + Int(bytes[i + 2])] &+= 1
                            tables[768 + Int(bytes[i + 3])] &+= 1
                            i += 4
                        }
                        while i < blockEnd {
                            tables[Int(bytes[i])] &+= 1
                            i += 1
                        }
                        counts.update(repeating: 0)
                        for symbol in 0..<256 {
                            counts[symbol] = tables[symbol] &+ tables[256 + symbol] &+ tables[512 + symbol] &+ tables[768 + symbol]
                        }
                        bits += blockBits(counts, symbols: blockEnd - blockStart, bytes: blockEnd - blockStart)
                        blockStart = blockEnd
                    }
                    start = end
                }
                return Self.bytes(bits)
            }
        }
    }

    static func rle(_ input: UnsafeRawBufferPointer, planeEnds: [Int]) -> Int {
        guard let bytes = input.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return 6 }
        let raw = UnsafeRawPointer(bytes)
        return withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 4 * 256) { literals in
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: alphabet) { counts in
                literals.update(repeating: 0)
                counts.update(repeating: 0)
                var bits = 0.0
                var symbols = 0
                var blockStart = 0
                var matches = 0
                var extraBits = 0
                func endBlock(at i: Int) {
                    for symbol in 0..<256 {
                        counts[symbol] = literals[symbol] &+ literals[256 + symbol] &+ literals[512 + symbol] &+ literals[768 + symbol]
                    }
                    bits += blockBits(counts, symbols: symbols, bytes: i - blockStart, matches: matches, extraBits: extraBits)
                    literals.update(repeating: 0)
                    counts.update(repeating: 0)
                    symbols = 0
                    blockStart = i
                    matches = 0
                    extraBits = 0
                }
                var start = 0
                for end in planeEnds {
                    var i = start
                    blockStart = start
                    while i < end {
                        // No run can start at a position unless it and the next two equal the byte
                        // before them. `equal` flags (0x80) bytes equal to their predecessor, maybe with
                        // false alarms but never a miss; where no three flags in a row start in the first
                        // six bytes, those six are literals (most of a plane of uniform bytes).
                        if i > 0, i + 8 <= end, symbols + 6 <= symbolsPerBlock {
                            let same = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                                ^ raw.loadUnaligned(fromByteOffset: i - 1, as: UInt64.self)
                            let equal = (same &- 0x0101_0101_0101_0101) & ~same & 0x8080_8080_8080_8080
                            if equal & (equal >> 8) & (equal >> 16) & 0x0000_8080_8080_8080 == 0 {
                                literals[Int(bytes[i])] &+= 1
                                literals[256 + Int(bytes[i + 1])] &+= 1
                                literals[512 + Int(bytes[i + 2])] &+= 1
                                literals[768 + Int(bytes[i + 3])] &+= 1
                                literals[Int(bytes[i + 4])] &+= 1
                                literals[256 + Int(bytes[i + 5])] &+= 1
                                symbols += 6
                                i += 6
                                continue
                            }
                        }
                        let byte = bytes[i]
                        // zlib's test: the previous byte, then at least 3 more of it, with 3 bytes left.
                        if i > 0, end - i >= 3, bytes[i - 1] == byte, bytes[i + 1] == byte, bytes[i + 2] == byte {
                            var run = 3
                            let limit = min(258, end - i)
                            while run < limit, bytes[i + run] == byte { run += 1 }
                            counts[lengthCode[run - 3]] &+= 1
                            extraBits += lengthExtraBits[run - 3]
                            matches += 1
                            i += run
                        } else {
                            literals[Int(byte)] &+= 1
                            i += 1
                        }
                        symbols += 1
                        if symbols == symbolsPerBlock { endBlock(at: i) }
                    }
                    if symbols > 0 { endBlock(at: i) }
                    start = end
                }
                return Self.bytes(bits)
            }
        }
    }

    /// The fewest bits zlib can spend on one block: `counts` of its literal and length symbols (the end
    /// of block is added here), covering `bytes` input bytes, with `matches` distances and the length
    /// symbols' `extraBits`.
    private static func blockBits(_ counts: UnsafeMutableBufferPointer<UInt32>, symbols: Int, bytes: Int,
                                  matches: Int = 0, extraBits: Int = 0) -> Double {
        counts[256] &+= 1
        let stored = Double(8 * bytes + 35)
        var fixed = Double(3 + extraBits + 5 * matches)
        var entropy = xLog2x(symbols + 1)
        var used = 0
        for symbol in 0..<alphabet {
            let count = Int(counts[symbol])
            guard count > 0 else { continue }
            used += 1
            entropy -= xLog2x(count)
            fixed += Double(count * (symbol < 144 ? 8 : symbol < 256 ? 9 : symbol < 280 ? 7 : 8))
        }
        // Distances cost at least 1 bit each with a code of their own (zlib gives it two codes at least).
        let dynamic = 3 + 29 + Double(used) / 2 + entropy + Double(extraBits + matches)
        return min(stored, fixed, dynamic)
    }

    /// x·log2 x, from a table below 2^15 (every count within one block).
    private static func xLog2x(_ x: Int) -> Double { x < xLog2xTable.count ? xLog2xTable[x] : Double(x) * log2(Double(x)) }
    private static let xLog2xTable: [Double] = (0..<(1 << 15)).map { $0 < 2 ? 0 : Double($0) * log2(Double($0)) }

    /// Header and trailer, and the bits rounded down with a margin: a bound must never exceed the truth.
    private static func bytes(_ bits: Double) -> Int { 6 + Int((bits * (1 - 1e-9) / 8).rounded(.down)) }

    /// Deflate's length symbol (257...285) for each match length 3...258 (RFC 1951 3.2.5).
    private static let lengthCode: [Int] = (3...258).map { length in
        let bases = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
        return 257 + bases.lastIndex { $0 <= length }!
    }
    private static let lengthExtraBits: [Int] = (3...258).map { length in
        switch length {
        case 3...10, 258: return 0
        case 11...18: return 1
        case 19...34: return 2
        case 35...66: return 3
        case 67...130: return 4
        default: return 5
        }
    }
}
