import Foundation
@testable import ShardFormat

// A second, test-side reading of Spec/FORMAT.md, written from the spec and not from the library:
//  - `ShardFileModel` parses a complete shard into its parts (checking every checksum) and serializes
//    parts back into a file with every offset, length and checksum recomputed. Tests use it to check the
//    writer's layout and to build damaged files in which exactly one rule is broken.
//  - `ReferenceShard` decodes the records from a model (section 3), independently of the library.
// Only zlib itself (inflate) is borrowed from the library.

struct ModelError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// CRC-32 (reflected 0xEDB88320, init and final xor 0xFFFFFFFF), bit by bit: slow and obviously right.
func referenceCRC32<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return crc ^ 0xFFFF_FFFF
}

extension Array where Element == UInt8 {
    func u16(at offset: Int) -> UInt16 { UInt16(self[offset]) | UInt16(self[offset + 1]) << 8 }
    func u32(at offset: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(self[offset + $1]) << (8 * UInt32($1)) } }
    func u64(at offset: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(self[offset + $1]) << (8 * UInt64($1)) } }

    mutating func put16(_ value: UInt16, at offset: Int) { for i in 0..<2 { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) } }
    mutating func put32(_ value: UInt32, at offset: Int) { for i in 0..<4 { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) } }
    mutating func put64(_ value: UInt64, at offset: Int) { for i in 0..<8 { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) } }

    mutating func append16(_ value: UInt16) { append(contentsOf: (0..<2).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }) }
    mutating func append32(_ value: UInt32) { append(contentsOf: (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }) }
    mutating func append64(_ value: UInt64) { append(contentsOf: (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }) }

    var hex: String { map { String(format: "%02x", $0) }.joined() }
}

func bytes(hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        out.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return out
}

/// Where the parts of a complete shard sit (offsets into the file).
struct ShardLayout {
    var headerLength: Int
    var blocksStart: Int { 20 + headerLength }
    var blockOffsets: [Int]
    var blockLengths: [Int]
    var indexOffset: Int
    var footerOffset: Int

    func payloadOffset(_ block: Int) -> Int { blockOffsets[block] + 32 }

    /// Offset of the first byte of section `s` of block `b` (its 12-byte section header).
    func sectionOffset(_ bytes: [UInt8], block b: Int, section s: Int) -> Int {
        var offset = payloadOffset(b)
        for _ in 0..<s { offset += 12 + Int(bytes.u32(at: offset + 4)) }
        return offset
    }

    init(_ bytes: [UInt8]) throws {
        guard bytes.count >= 52 else { throw ModelError("file too short") }
        headerLength = Int(bytes.u32(at: 12))
        footerOffset = bytes.count - 32
        guard Array(bytes[footerOffset..<(footerOffset + 4)]) == Array("TSFT".utf8) else { throw ModelError("no footer") }
        let blockCount = Int(bytes.u32(at: footerOffset + 4))
        let index = Int(bytes.u64(at: footerOffset + 8))
        indexOffset = index
        blockOffsets = (0..<blockCount).map { Int(bytes.u64(at: index + 8 + 12 * $0)) }
        blockLengths = (0..<blockCount).map { Int(bytes.u32(at: index + 16 + 12 * $0)) }
    }
}

struct ShardFileModel {
    struct Section: Equatable {
        var codec: UInt8
        var reserved: [UInt8] = [0, 0, 0]
        var stored: [UInt8]
        var decodedLength: UInt32
    }

    struct Block: Equatable {
        var magic: [UInt8] = Array("TSBK".utf8)
        var count: UInt32
        var firstOrdinal: UInt64
        var reserved: UInt32 = 0
        var sections: [Section]
        /// Bytes after the five sections inside the payload (none in a valid file).
        var trailing: [UInt8] = []
    }

    var magic: [UInt8]
    var major: UInt16
    var minor: UInt16
    var header: [UInt8]
    var blocks: [Block]
    var recordCount: UInt64

    static let fileMagic: [UInt8] = [0x89, 0x54, 0x53, 0x48, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Parses a complete, structurally valid shard; throws on any checksum or layout mismatch.
    init(_ bytes: [UInt8]) throws {
        func check(_ condition: Bool, _ what: String) throws { if !condition { throw ModelError(what) } }
        try check(bytes.count >= 20, "file shorter than a preamble")
        magic = Array(bytes[0..<8])
        major = bytes.u16(at: 8)
        minor = bytes.u16(at: 10)
        let h = Int(bytes.u32(at: 12))
        try check(20 + h <= bytes.count, "header runs past the end")
        header = Array(bytes[16..<(16 + h)])
        try check(referenceCRC32(bytes[0..<(16 + h)]) == bytes.u32(at: 16 + h), "header CRC")
        let layout = try ShardLayout(bytes)
        let footer = layout.footerOffset
        try check(referenceCRC32(bytes[footer..<(footer + 28)]) == bytes.u32(at: footer + 28), "footer CRC")
        recordCount = bytes.u64(at: footer + 16)
        let indexLength = Int(bytes.u32(at: footer + 24))
        try check(indexLength == 12 + 12 * layout.blockOffsets.count, "index length")
        try check(layout.indexOffset + indexLength == footer, "index placement")
        let index = layout.indexOffset
        try check(Array(bytes[index..<(index + 4)]) == Array("TSIX".utf8), "index magic")
        try check(Int(bytes.u32(at: index + 4)) == layout.blockOffsets.count, "index block count")
        try check(referenceCRC32(bytes[index..<(index + indexLength - 4)]) == bytes.u32(at: index + indexLength - 4), "index CRC")
        var expectedOffset = 20 + h
        blocks = []
        for b in 0..<layout.blockOffsets.count {
            let offset = layout.blockOffsets[b]
            try check(offset == expectedOffset, "block \(b) offset")
            let block = Array(bytes[offset..<(offset + layout.blockLengths[b])])
            try check(referenceCRC32(block[0..<28]) == block.u32(at: 28), "block \(b) header CRC")
            let payloadLength = Int(block.u32(at: 16))
            try check(32 + payloadLength == block.count, "block \(b) length")
            let payload = Array(block[32...])
            try check(referenceCRC32(payload) == block.u32(at: 20), "block \(b) payload CRC")
            var sections: [Section] = []
            var p = 0
            for _ in 0..<5 {
                let stored = Int(payload.u32(at: p + 4))
                sections.append(Section(codec: payload[p], reserved: Array(payload[(p + 1)..<(p + 4)]),
                                        stored: Array(payload[(p + 12)..<(p + 12 + stored)]), decodedLength: payload.u32(at: p + 8)))
                p += 12 + stored
            }
            blocks.append(Block(magic: Array(block[0..<4]), count: block.u32(at: 4), firstOrdinal: block.u64(at: 8),
                                reserved: block.u32(at: 24), sections: sections, trailing: Array(payload[p...])))
            expectedOffset += block.count
        }
        try check(expectedOffset == layout.indexOffset, "index follows the last block")
    }

    /// The file, with every offset, length and checksum computed from the parts.
    func serialized() -> [UInt8] {
        var out = magic
        out.append16(major)
        out.append16(minor)
        out.append32(UInt32(header.count))
        out += header
        out.append32(referenceCRC32(out))
        var extents: [(UInt64, UInt32)] = []
        for block in blocks {
            var payload: [UInt8] = []
            for section in block.sections {
                payload.append(section.codec)
                payload += section.reserved
                payload.append32(UInt32(section.stored.count))
                payload.append32(section.decodedLength)
                payload += section.stored
            }
            payload += block.trailing
            var head = block.magic
            head.append32(block.count)
            head.append64(block.firstOrdinal)
            head.append32(UInt32(payload.count))
            head.append32(referenceCRC32(payload))
            head.append32(block.reserved)
            head.append32(referenceCRC32(head))
            extents.append((UInt64(out.count), UInt32(32 + payload.count)))
            out += head + payload
        }
        let indexOffset = out.count
        var index = Array("TSIX".utf8)
        index.append32(UInt32(blocks.count))
        for (offset, length) in extents { index.append64(offset); index.append32(length) }
        index.append32(referenceCRC32(index))
        out += index
        var footer = Array("TSFT".utf8)
        footer.append32(UInt32(blocks.count))
        footer.append64(UInt64(indexOffset))
        footer.append64(recordCount)
        footer.append32(UInt32(index.count))
        footer.append32(referenceCRC32(footer))
        return out + footer
    }

    /// The decoded bytes of a section (inflated when its codec is zlib).
    func decoded(block b: Int, section s: Int) throws -> [UInt8] {
        let section = blocks[b].sections[s]
        switch section.codec {
        case 0: return section.stored
        case 1:
            var out = [UInt8](repeating: 0, count: Int(section.decodedLength))
            let ok = section.stored.withUnsafeBytes { input in out.withUnsafeMutableBytes { Zlib.decompress(input, into: $0) } }
            guard ok else { throw ModelError("block \(b) section \(s) does not inflate") }
            return out
        default: throw ModelError("codec \(section.codec)")
        }
    }

    /// Replaces a section by `decoded`, stored as is (codec 0).
    mutating func store(block b: Int, section s: Int, _ decoded: [UInt8]) {
        blocks[b].sections[s] = Section(codec: 0, stored: decoded, decodedLength: UInt32(decoded.count))
    }

    var headerObject: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(header))) as? [String: Any] ?? [:]
    }
}

// MARK: Section transforms, written from section 3

enum Planes {
    static func split(_ values: [UInt32], width: Int) -> [UInt8] {
        var out: [UInt8] = []
        for plane in 0..<width { out += values.map { UInt8(truncatingIfNeeded: $0 >> (8 * plane)) } }
        return out
    }

    static func join(_ bytes: [UInt8], width: Int) -> [UInt32] {
        let n = width == 0 ? 0 : bytes.count / width
        return (0..<n).map { i in (0..<width).reduce(UInt32(0)) { $0 | UInt32(bytes[$1 * n + i]) << (8 * $1) } }
    }
}

enum ValueSection {
    /// t_0 = b_0, t_j = b_{j-1} − b_j mod 65536; first the t_0 of every record (2 planes), then
    /// t_1..t_{K-1} of every record, record-major (2 planes).
    static func encode(_ bits: [[UInt16]]) -> [UInt8] {
        let firsts = bits.map { UInt32($0[0]) }
        var later: [UInt32] = []
        for record in bits {
            for j in record.indices.dropFirst() { later.append(UInt32(record[j - 1] &- record[j])) }
        }
        return Planes.split(firsts, width: 2) + Planes.split(later, width: 2)
    }

    static func decode(_ bytes: [UInt8], k: Int) -> [[UInt16]] {
        let n = bytes.count / (2 * k)
        let firsts = Planes.join(Array(bytes[0..<(2 * n)]), width: 2).map { UInt16($0) }
        let later = Planes.join(Array(bytes[(2 * n)...]), width: 2).map { UInt16($0) }
        return (0..<n).map { i in
            var record: [UInt16] = [firsts[i]]
            for j in 1..<k { record.append(record[j - 1] &- later[i * (k - 1) + j - 1]) }
            return record
        }
    }
}

/// Little-endian unsigned integers of any length as byte arrays, for order numbers.
enum ByteBignum {
    static func multiplyAdd(_ x: inout [UInt8], _ factor: Int, _ addend: Int) {
        var carry = addend
        for i in x.indices {
            let v = Int(x[i]) * factor + carry
            x[i] = UInt8(v & 0xFF)
            carry = v >> 8
        }
        while carry > 0 { x.append(UInt8(carry & 0xFF)); carry >>= 8 }
    }

    /// x = x / divisor; returns the remainder.
    static func divide(_ x: inout [UInt8], _ divisor: Int) -> Int {
        var remainder = 0
        for i in x.indices.reversed() {
            let v = remainder << 8 | Int(x[i])
            x[i] = UInt8(v / divisor)
            remainder = v % divisor
        }
        return remainder
    }

    static func isZero(_ x: [UInt8]) -> Bool { x.allSatisfy { $0 == 0 } }

    static func bitLength(_ x: [UInt8]) -> Int {
        guard let top = x.lastIndex(where: { $0 != 0 }) else { return 0 }
        return top * 8 + (8 - x[top].leadingZeroBitCount)
    }

    static func factorial(_ k: Int) -> [UInt8] {
        var x: [UInt8] = [1]
        for f in stride(from: 2, through: k, by: 1) { multiplyAdd(&x, f, 0) }
        return x
    }

    /// x − 1 (x > 0).
    static func decrement(_ x: [UInt8]) -> [UInt8] {
        var y = x
        var i = 0
        while y[i] == 0 { y[i] = 0xFF; i += 1 }
        y[i] -= 1
        return y
    }

    static func increment(_ x: [UInt8]) -> [UInt8] {
        var y = x
        var i = 0
        while i < y.count, y[i] == 0xFF { y[i] = 0; i += 1 }
        if i < y.count { y[i] += 1 } else { y.append(1) }
        return y
    }

    /// Pads or trims (only zero bytes) to exactly `length` bytes.
    static func fixed(_ x: [UInt8], _ length: Int) -> [UInt8] {
        precondition(x.dropFirst(length).allSatisfy { $0 == 0 })
        return Array(x.prefix(length)) + [UInt8](repeating: 0, count: max(0, length - x.count))
    }
}

enum OrderSection {
    /// L = ⌈bitlength(K! − 1) / 8⌉.
    static func length(k: Int) -> Int { (ByteBignum.bitLength(ByteBignum.decrement(ByteBignum.factorial(k))) + 7) / 8 }

    /// The order number of a record's stored indices (section 3.5), L bytes.
    static func encode(_ indices: [Int32]) -> [UInt8] {
        let k = indices.count
        let sorted = indices.sorted()
        let ranks = indices.map { sorted.firstIndex(of: $0)! }
        var x: [UInt8] = []
        for j in 0..<k {
            let d = ((j + 1)..<k).filter { ranks[$0] < ranks[j] }.count
            ByteBignum.multiplyAdd(&x, k - j, d)
        }
        return ByteBignum.fixed(x, length(k: k))
    }

    /// The ranks r_j, or nil when X ≥ K!.
    static func decode(_ bytes: [UInt8], k: Int) -> [Int]? {
        var x = bytes
        var digits = [Int](repeating: 0, count: k)
        for j in stride(from: k - 1, through: 0, by: -1) { digits[j] = ByteBignum.divide(&x, k - j) }
        guard ByteBignum.isZero(x) else { return nil }
        var rest = Array(0..<k)
        return digits.map { rest.remove(at: $0) }
    }
}

/// Records decoded from a model, section by section, following Spec section 3 only.
struct ReferenceShard {
    var header: [String: Any]
    var classes: Int
    var k: Int
    var recordsPerBlock: Int
    var augmentationSize: Int
    var records: [TestRecord] = []

    init(_ bytes: [UInt8]) throws {
        let model = try ShardFileModel(bytes)
        guard model.magic == ShardFileModel.fileMagic, model.major == 1 else { throw ModelError("magic/version") }
        header = model.headerObject
        guard let classes = header["classes"] as? Int, let k = header["k"] as? Int,
              let r = header["records_per_block"] as? Int,
              let augmentation = header["augmentation"] as? [String: Any], let kind = augmentation["kind"] as? String
        else { throw ModelError("header fields") }
        self.classes = classes
        self.k = k
        recordsPerBlock = r
        augmentationSize = ["none": 0, "seed": 4, "params": 80][kind] ?? -1
        let width = classes <= 256 ? 1 : classes <= 65536 ? 2 : 3
        let orderLength = OrderSection.length(k: k)
        var total = 0
        for (b, block) in model.blocks.enumerated() {
            let n = Int(block.count)
            guard block.magic == Array("TSBK".utf8), block.firstOrdinal == UInt64(b * r), n >= 1, n <= r,
                  b == model.blocks.count - 1 || n == r else { throw ModelError("block \(b) counts") }
            let expected = [4 * n, augmentationSize * n, 2 * n * k, width * n * k, orderLength * n]
            var decoded: [[UInt8]] = []
            for s in 0..<5 {
                let section = block.sections[s]
                guard Int(section.decodedLength) == expected[s], section.reserved == [0, 0, 0] else { throw ModelError("section \(s) length") }
                let bytes = try model.decoded(block: b, section: s)
                guard bytes.count == expected[s] else { throw ModelError("section \(s) decoded size") }
                decoded.append(bytes)
            }
            guard block.trailing.isEmpty else { throw ModelError("payload has trailing bytes") }
            let ids = Planes.join(decoded[0], width: 4)
            let values = ValueSection.decode(decoded[2], k: k)
            let gaps = Planes.join(decoded[3], width: width)
            for i in 0..<n {
                var sorted: [Int32] = []
                var last = -1
                for j in 0..<k {
                    last += Int(gaps[i * k + j]) + 1
                    sorted.append(Int32(truncatingIfNeeded: last))
                }
                guard last < classes else { throw ModelError("index out of range") }
                guard let ranks = OrderSection.decode(Array(decoded[4][(i * orderLength)..<((i + 1) * orderLength)]), k: k) else {
                    throw ModelError("bad order")
                }
                records.append(TestRecord(
                    sampleID: ids[i],
                    augmentation: Array(decoded[1][(i * augmentationSize)..<((i + 1) * augmentationSize)]),
                    indices: ranks.map { sorted[$0] }, valueBits: values[i]))
            }
            total += n
        }
        guard total == Int(model.recordCount) else { throw ModelError("record count") }
    }
}
