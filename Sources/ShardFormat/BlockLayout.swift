/// The block layout of Spec/FORMAT.md sections 1.2 and 3: column sections built from records (writer
/// side) and decoded back into columns (reader side).
enum BlockLayout {
    static let magic: [UInt8] = Array("TSBK".utf8)
    /// The magic as a little-endian u32, compared in one load (block headers are read on every block access).
    static let magicWord = UInt32(0x4B42_5354)
    static let headerSize = 32
    static let sectionHeaderSize = 12
    static let sectionCount = 5

    /// Decoded section lengths for n records, in section order.
    static func decodedLengths(records n: Int, schema: ShardSchema) -> [Int] {
        [4 * n, schema.augmentation.codeSize * n, 2 * n * schema.k, schema.indexWidth * n * schema.k,
         schema.orderLength * n]
    }
}

extension BlockLayout {
    /// The sample ids of a block whose frame already passed ``DecodedBlock/decode``: only the first
    /// section is read (and inflated), into `ids` (n values). What the verifier's duplicate pass uses.
    static func sampleIDs(ofBlock bytes: UnsafeRawBufferPointer, into ids: inout [UInt32], scratch: inout [UInt8]) throws {
        var reader = ByteReader(bytes, offset: headerSize, failure: .badSection)
        let n = Int(bytes.u32(at: 4))
        let codec = try reader.u8()
        _ = try reader.bytes(3)
        let stored = Int(try reader.u32())
        let decoded = Int(try reader.u32())
        let section = try reader.bytes(stored)
        guard decoded == 4 * n else { throw ShardError(.badSection, "sample-id section length changed") }
        if ids.count != n { ids = [UInt32](repeating: 0, count: n) }
        if codec == 0 {
            ids.withUnsafeMutableBufferPointer { BytePlanes.join(section, width: 4, into: $0) }
            return
        }
        if scratch.count < decoded { scratch = [UInt8](repeating: 0, count: decoded) }
        let ok = scratch.withUnsafeMutableBytes { Zlib.decompress(section, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<decoded])) }
        guard ok else { throw ShardError(.badSection, "sample-id section does not inflate") }
        scratch.withUnsafeBytes { planes in
            ids.withUnsafeMutableBufferPointer { BytePlanes.join(UnsafeRawBufferPointer(rebasing: planes[0..<decoded]), width: 4, into: $0) }
        }
    }
}

/// The byte-plane transform: byte 0 of every value, then byte 1 of every value, and so on.
enum BytePlanes {
    /// Reassembles `output.count` values of `width` bytes from their planes.
    static func join<T: FixedWidthInteger>(_ planes: UnsafeRawBufferPointer, width: Int, into output: UnsafeMutableBufferPointer<T>) {
        let n = output.count
        for i in 0..<n { output[i] = T(planes[i]) }
        for plane in 1..<max(width, 1) {
            let shift = T(8 * plane)
            let base = plane * n
            for i in 0..<n { output[i] |= T(planes[base + i]) << shift }
        }
    }
}

/// A parsed block header, checked against its own CRC.
struct BlockHeader {
    var count: Int
    var firstOrdinal: Int
    var payloadLength: Int
    var payloadCRC: UInt32

    init(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count >= BlockLayout.headerSize else {
            throw ShardError(.blockStructure, "block is shorter than its 32-byte header")
        }
        guard bytes.u32(at: 0) == BlockLayout.magicWord else { throw ShardError(.blockStructure, "block magic is not TSBK") }
        guard CRC32.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<28])) == bytes.u32(at: 28) else {
            throw ShardError(.blockCRC, "block header checksum mismatch")
        }
        guard bytes.u32(at: 24) == 0 else { throw ShardError(.blockStructure, "reserved block header field is not 0") }
        count = Int(bytes.u32(at: 4))
        let first = bytes.u64(at: 8)
        guard first <= UInt64(Int.max / 2) else { throw ShardError(.blockStructure, "first ordinal \(first) is out of range") }
        firstOrdinal = Int(first)
        payloadLength = Int(bytes.u32(at: 16))
        payloadCRC = bytes.u32(at: 20)
        guard count >= 1 else { throw ShardError(.blockStructure, "block holds no records") }
    }
}
