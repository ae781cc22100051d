/// Sample ids of a block without decoding its records: what sample-id tables are built from (Spec/FORMAT.md
/// 1.3). The block's header, its payload checksum and the sample-id section's own rules (codec, reserved
/// bytes, D, S, inflation) are checked; the other four sections are checked when a record of the block is
/// read. Reading ids this way costs ~4 decoded bytes per record, against ~470 for a whole K = 100 record,
/// which is what makes a table of an ImageNet-21k epoch (14.2 M records) take a fraction of a second.
struct BlockSampleIDs {
    private var scratch: [UInt8] = []

    /// The ids of block `b` of `reader`, into `ids` (resized to the block's record count).
    mutating func read(_ reader: ShardReader, block b: Int, into ids: inout [UInt32]) throws {
        let range = reader.ordinals(ofBlock: b)
        do {
            let bytes = reader.blockBytes(b)
            let header = try BlockHeader(bytes)
            guard header.count == range.count, header.firstOrdinal == range.lowerBound else {
                throw ShardError(.blockStructure,
                    "block holds \(header.count) records from ordinal \(header.firstOrdinal); the index expects \(range.count) from \(range.lowerBound)")
            }
            guard BlockLayout.headerSize + header.payloadLength == bytes.count else {
                throw ShardError(.blockStructure, "payload length \(header.payloadLength) does not match the index's block length \(bytes.count)")
            }
            let payload = UnsafeRawBufferPointer(rebasing: bytes[BlockLayout.headerSize...])
            guard CRC32.checksum(payload) == header.payloadCRC else { throw ShardError(.blockCRC, "payload checksum mismatch") }
            try readSection(payload, count: header.count, into: &ids)
        } catch let error as ShardError {
            // Named by the block's first record, as a reader that met the damage decoding it would name it.
            throw error.located(ShardLocation(file: reader.path, block: b, record: range.lowerBound))
        }
    }

    private mutating func readSection(_ payload: UnsafeRawBufferPointer, count n: Int, into ids: inout [UInt32]) throws {
        var reader = ByteReader(payload, failure: .badSection)
        let codec = try reader.u8("sample ids section codec")
        let reserved = try reader.bytes(3, "sample ids section header")
        let stored = Int(try reader.u32("sample ids section length"))
        let decoded = Int(try reader.u32("sample ids section length"))
        guard codec <= 1 else { throw ShardError(.badSection, "sample ids section: codec \(codec) is not 0 (stored) or 1 (zlib)") }
        guard reserved.allSatisfy({ $0 == 0 }) else { throw ShardError(.badSection, "sample ids section: reserved bytes must be 0") }
        guard decoded == 4 * n else {
            throw ShardError(.badSection, "sample ids section decodes to \(decoded) bytes; \(n) records need \(4 * n)")
        }
        let section = try reader.bytes(stored, "sample ids section")
        if ids.count != n { ids = [UInt32](repeating: 0, count: n) }
        if codec == 0 {
            guard stored == decoded else { throw ShardError(.badSection, "sample ids section: stored length \(stored) ≠ \(decoded)") }
            ids.withUnsafeMutableBufferPointer { BytePlanes.join(section, width: 4, into: $0) }
            return
        }
        guard decoded <= 1032 * stored else {
            throw ShardError(.badSection, "sample ids section: \(stored) zlib bytes cannot inflate to \(decoded)")
        }
        if scratch.count < decoded { scratch = [UInt8](repeating: 0, count: decoded) }
        let inflated = scratch.withUnsafeMutableBytes { Zlib.decompress(section, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<decoded])) }
        guard inflated else { throw ShardError(.badSection, "sample ids section: zlib data does not inflate to \(decoded) bytes") }
        scratch.withUnsafeBytes { planes in
            ids.withUnsafeMutableBufferPointer { BytePlanes.join(UnsafeRawBufferPointer(rebasing: planes[0..<decoded]), width: 4, into: $0) }
        }
    }
}
