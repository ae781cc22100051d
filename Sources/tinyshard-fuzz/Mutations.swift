import CZlib
import ShardFormat

/// A small deterministic generator (SplitMix64): a campaign is replayable from its seed.
struct FuzzRandom {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 { Mix64.next(&state) }

    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
}

/// Byte-level mutations shared by every target: flips, interesting integers, inserts, deletes, copies.
enum ByteMutations {
    static let interesting32: [UInt32] = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x1_0000, 0x7FFF_FFFF, 0x8000_0000,
                                          0xFFFF_FFFE, 0xFFFF_FFFF, 65_536, 65_537, 1 << 24, 1032]

    static func mutate(_ bytes: inout [UInt8], _ random: inout FuzzRandom, maxSize: Int = 1 << 20) {
        if bytes.isEmpty { bytes = [UInt8(truncatingIfNeeded: random.next())]; return }
        switch random.below(8) {
        case 0:
            bytes[random.below(bytes.count)] ^= UInt8(1 << random.below(8))
        case 1:
            bytes[random.below(bytes.count)] = UInt8(truncatingIfNeeded: random.next())
        case 2 where bytes.count >= 4:
            let at = random.below(bytes.count - 3)
            let value = random.pick(interesting32)
            for i in 0..<4 { bytes[at + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
        case 3 where bytes.count < maxSize:
            let at = random.below(bytes.count + 1)
            let count = 1 + random.below(16)
            bytes.insert(contentsOf: (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }, at: at)
        case 4:
            let at = random.below(bytes.count)
            bytes.removeSubrange(at..<min(bytes.count, at + 1 + random.below(16)))
        case 5:
            let from = random.below(bytes.count)
            let length = min(bytes.count - from, 1 + random.below(64))
            let chunk = Array(bytes[from..<(from + length)])
            let to = random.below(bytes.count)
            for i in 0..<chunk.count where to + i < bytes.count { bytes[to + i] = chunk[i] }
        case 6:
            bytes.removeLast(random.below(min(bytes.count, 64)) + 1)
        default:
            let at = random.below(bytes.count)
            bytes[at] = UInt8(truncatingIfNeeded: Int(bytes[at]) + random.pick([-1, 1, -128, 127]))
        }
    }
}

/// JSON-aware edits: the cases the spec's grammar exists for (duplicates, escapes, integer forms, BOM,
/// UTF-16, depth, lone surrogates), applied at token boundaries so the rest stays well-formed.
enum JSONMutations {
    static let snippets = ["1.0", "1e1", "0e5", "-0", "1E400", "-1", "null", "true", "0", "[0,0]", "[]", "{}", "\"\\ud800\"",
                           "\"\\u006b\"", "\"k\"", "NaN", "Infinity", "99999999999999999999999", "\"\"", "[[[[[[[[]]]]]]]]",
                           "\"\\ud83d\\ude00\"", "\"caf\u{E9}\"", "65535", "65536", "16777217", "2147483648", "1.5e1"]

    static func mutate(_ bytes: inout [UInt8], _ random: inout FuzzRandom) {
        let boundaries = bytes.indices.filter { [UInt8(ascii: ":"), UInt8(ascii: ","), UInt8(ascii: "{"), UInt8(ascii: "[")].contains(bytes[$0]) }
        switch random.below(9) {
        case 0 where !boundaries.isEmpty:  // replace the value after a ':' or ','
            let start = random.pick(boundaries) + 1
            var end = start
            while end < bytes.count, ![UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]")].contains(bytes[end]) { end += 1 }
            bytes.replaceSubrange(start..<end, with: Array(random.pick(snippets).utf8))
        case 1 where !boundaries.isEmpty:  // duplicate a member
            let start = random.pick(boundaries) + 1
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: ",") && bytes[end] != UInt8(ascii: "}") { end += 1 }
            let member = Array(bytes[start..<end])
            if member.contains(UInt8(ascii: ":")) { bytes.insert(contentsOf: member + [UInt8(ascii: ",")], at: start) }
        case 2: bytes = [0xEF, 0xBB, 0xBF] + bytes
        case 3: bytes = Array(String(decoding: bytes, as: UTF8.self).utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        case 4 where bytes.last == UInt8(ascii: "}"): bytes.insert(UInt8(ascii: ","), at: bytes.count - 1)
        case 5 where !boundaries.isEmpty:  // escape a letter of a name
            if let at = bytes.indices.first(where: { $0 > random.pick(boundaries) && (0x61...0x7A).contains(bytes[$0]) }) {
                let hex = String(bytes[at], radix: 16)
                bytes.replaceSubrange(at...at, with: Array("\\u00\(hex)".utf8))
            }
        case 6 where !boundaries.isEmpty:  // an unknown key with a deep or odd value
            let at = random.pick(boundaries.filter { bytes[$0] == UInt8(ascii: "{") } + [boundaries[0]]) + 1
            let depth = random.pick([1, 30, 62, 63, 64, 65, 200])
            bytes.insert(contentsOf: Array(("\"zz\":" + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + ",").utf8), at: at)
        default: ByteMutations.mutate(&bytes, &random, maxSize: 1 << 16)
        }
    }
}

/// zlib for the mutator (the library's codec is internal to ShardFormat).
enum FuzzZlib {
    static func compress(_ input: [UInt8], level: Int32 = 6) -> [UInt8] {
        var bound = compressBound(uLong(input.count))
        var output = [UInt8](repeating: 0, count: Int(bound))
        let status = input.withUnsafeBytes { src in output.withUnsafeMutableBytes { out in
            compress2(out.baseAddress!.assumingMemoryBound(to: Bytef.self), &bound,
                      src.baseAddress?.assumingMemoryBound(to: Bytef.self), uLong(input.count), level)
        } }
        guard status == Z_OK else { return input }
        return Array(output[0..<Int(bound)])
    }

    /// Inflates a whole stream, up to `limit` bytes; nil when it is damaged or larger.
    static func decompress(_ input: [UInt8], limit: Int) -> [UInt8]? {
        guard limit <= 64 << 20 else { return nil }
        var output = [UInt8](repeating: 0, count: max(limit, 1))
        var length = uLong(output.count)
        let status = input.withUnsafeBytes { src in output.withUnsafeMutableBytes { out in
            uncompress(out.baseAddress!.assumingMemoryBound(to: Bytef.self), &length,
                       src.baseAddress?.assumingMemoryBound(to: Bytef.self), uLong(input.count))
        } }
        return status == Z_OK ? Array(output[0..<Int(length)]) : nil
    }

    static func crc(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBytes { UInt32(truncatingIfNeeded: crc32(0, $0.baseAddress?.assumingMemoryBound(to: Bytef.self), uInt($0.count))) }
    }
}

extension Array where Element == UInt8 {
    func u16(_ at: Int) -> Int { Int(self[at]) | Int(self[at + 1]) << 8 }
    func u32(_ at: Int) -> Int { (0..<4).reduce(0) { $0 | Int(self[at + $1]) << (8 * $1) } }
    func u64(_ at: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(self[at + $1]) << (8 * UInt64($1)) } }
    mutating func put32(_ value: Int, at: Int) { for i in 0..<4 { self[at + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) } }
    mutating func put64(_ value: UInt64, at: Int) { for i in 0..<8 { self[at + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) } }
    mutating func appendLE(_ value: Int, _ width: Int) { for i in 0..<width { append(UInt8(truncatingIfNeeded: value >> (8 * i))) } }
    mutating func appendCRC(of range: Range<Int>) { appendLE(Int(FuzzZlib.crc(self[range])), 4) }
}
