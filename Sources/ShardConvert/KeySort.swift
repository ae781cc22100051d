#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The lines of a keys file in the key table's order (bytes compared as by memcmp, a prefix first), equal
/// keys by line number, so that the first line of a repeated key comes first.
///
/// Sorted a piece at a time (``pieceLines``): a sort entry takes 24 bytes, and the 1.8 million lines of
/// one rank of an ImageNet-21k pass would need 42 MB of them at once.
enum KeySort {
    /// Lines per piece: ~12 MB of sort entries.
    static let pieceLines = 1 << 19

    /// The line ranges to sort one at a time, in line order.
    static func pieces(_ lines: KeyLines, size: Int = pieceLines) -> [Range<Int>] {
        stride(from: 0, to: lines.count, by: max(1, size)).map { $0..<min($0 + max(1, size), lines.count) }
    }

    /// A line's sort key: its first 16 bytes as two big-endian words, zero-padded. Keys hold no NUL, so
    /// padding sorts before every byte and most comparisons are two integer compares; only keys that
    /// share 16 bytes look at the rest.
    private struct Entry {
        var high: UInt64
        var low: UInt64
        var line: UInt32
    }

    /// The lines of `range` in key order.
    static func sortedLines(_ lines: KeyLines, _ range: Range<Int>) -> [UInt32] {
        lines.text.withUnsafeBytes { text in
            lines.starts.withUnsafeBufferPointer { starts in
                var entries = range.map { line -> Entry in
                    let start = Int(starts[line])
                    let length = Int(starts[line + 1]) - 1 - start
                    return Entry(high: word(text, start, length, 0), low: word(text, start, length, 8), line: UInt32(line))
                }
                entries.sort { a, b in
                    if a.high != b.high { return a.high < b.high }
                    if a.low != b.low { return a.low < b.low }
                    let order = compareTails(text, starts, Int(a.line), Int(b.line))
                    return order != 0 ? order < 0 : a.line < b.line
                }
                return entries.map(\.line)
            }
        }
    }

    /// Bytes [offset, offset + 8) of a key as a big-endian word, zero past its end.
    private static func word(_ text: UnsafeRawBufferPointer, _ start: Int, _ length: Int, _ offset: Int) -> UInt64 {
        if length >= offset + 8 {
            return UInt64(bigEndian: text.loadUnaligned(fromByteOffset: start + offset, as: UInt64.self))
        }
        var value: UInt64 = 0
        for i in offset..<(offset + 8) {
            value = value << 8 | (i < length ? UInt64(text[start + i]) : 0)
        }
        return value
    }

    /// Byte order of two keys whose first 16 bytes are equal: the rest, then the length.
    private static func compareTails(_ text: UnsafeRawBufferPointer, _ starts: UnsafeBufferPointer<UInt32>, _ a: Int, _ b: Int) -> Int {
        let aStart = Int(starts[a]) + 16
        let bStart = Int(starts[b]) + 16
        let aLength = max(0, Int(starts[a + 1]) - 1 - aStart)
        let bLength = max(0, Int(starts[b + 1]) - 1 - bStart)
        let common = min(aLength, bLength)
        if common > 0 {
            let order = Int(memcmp(text.baseAddress! + aStart, text.baseAddress! + bStart, common))
            if order != 0 { return order }
        }
        return aLength < bLength ? -1 : aLength > bLength ? 1 : 0
    }
}
