/// A shard taken apart into the fields a hostile writer controls (preamble, header JSON, blocks with
/// their sections and decoded bytes, record count) and put back together with every length, offset and
/// checksum recomputed — so that mutations reach the decoders instead of stopping at a CRC. With a small
/// probability a step is left unsealed, so the checksum paths are fuzzed too.
struct ShardParts {
    struct Section {
        var codec: UInt8
        var reserved: [UInt8]
        var stored: [UInt8]
        var decodedLength: Int
    }

    struct Block {
        var magic: [UInt8]
        var count: Int
        var firstOrdinal: UInt64
        var reserved: Int
        var sections: [Section]
        var trailing: [UInt8]
    }

    var magic: [UInt8]
    var major: Int
    var minor: Int
    var header: [UInt8]
    var blocks: [Block]
    var records: UInt64
    /// What serialization leaves out or breaks on purpose.
    var dropFooter = false
    var truncate: Int?
    var unsealed: Set<String> = []

    /// Parses a well-formed shard (a seed); nil for anything else.
    init?(_ bytes: [UInt8]) {
        guard bytes.count >= 20 + 32 else { return nil }
        magic = Array(bytes[0..<8])
        major = bytes.u16(8)
        minor = bytes.u16(10)
        let h = bytes.u32(12)
        guard h <= bytes.count, 20 + h + 32 <= bytes.count else { return nil }
        header = Array(bytes[16..<(16 + h)])
        let footer = bytes.count - 32
        guard Array(bytes[footer..<(footer + 4)]) == Array("TSFT".utf8) else { return nil }
        records = bytes.u64(footer + 16)
        let indexOffset = min(Int(clamping: bytes.u64(footer + 8)), footer)
        var offset = 20 + h
        blocks = []
        while offset + 32 <= min(indexOffset, footer) {
            let payloadLength = bytes.u32(offset + 16)
            guard payloadLength <= indexOffset - offset - 32 else { return nil }
            let payload = Array(bytes[(offset + 32)..<(offset + 32 + payloadLength)])
            var sections: [Section] = []
            var p = 0
            for _ in 0..<5 {
                guard p + 12 <= payload.count else { return nil }
                let stored = payload.u32(p + 4)
                guard p + 12 + stored <= payload.count else { return nil }
                sections.append(Section(codec: payload[p], reserved: Array(payload[(p + 1)..<(p + 4)]),
                                        stored: Array(payload[(p + 12)..<(p + 12 + stored)]), decodedLength: payload.u32(p + 8)))
                p += 12 + stored
            }
            blocks.append(Block(magic: Array(bytes[offset..<(offset + 4)]), count: bytes.u32(offset + 4), firstOrdinal: bytes.u64(offset + 8),
                                reserved: bytes.u32(offset + 24), sections: sections, trailing: Array(payload[p...])))
            offset += 32 + payloadLength
        }
    }

    func serialized() -> [UInt8] {
        var out = magic
        out.appendLE(major, 2)
        out.appendLE(minor, 2)
        out.appendLE(header.count, 4)
        out += header
        out.appendCRC(of: 0..<out.count)
        if unsealed.contains("header") { out[out.count - 1] ^= 0x55 }
        var extents: [(Int, Int)] = []
        for (number, block) in blocks.enumerated() {
            var payload: [UInt8] = []
            for section in block.sections {
                payload.append(section.codec)
                payload += section.reserved
                payload.appendLE(section.stored.count, 4)
                payload.appendLE(section.decodedLength, 4)
                payload += section.stored
            }
            payload += block.trailing
            let start = out.count
            out += block.magic
            out.appendLE(block.count, 4)
            out.put64Append(block.firstOrdinal)
            out.appendLE(payload.count, 4)
            out.appendLE(Int(FuzzZlib.crc(payload[...])), 4)
            out.appendLE(block.reserved, 4)
            out.appendCRC(of: start..<out.count)
            if unsealed.contains("block\(number)") { out[out.count - 1] ^= 0x55 }
            out += payload
            if unsealed.contains("payload\(number)"), !payload.isEmpty { out[out.count - 1] ^= 0x55 }
            extents.append((start, out.count - start))
        }
        if !dropFooter {
            let indexOffset = out.count
            out += Array("TSIX".utf8)
            out.appendLE(extents.count, 4)
            for (offset, length) in extents {
                out.put64Append(UInt64(offset))
                out.appendLE(length, 4)
            }
            out.appendCRC(of: indexOffset..<out.count)
            let footer = out.count
            out += Array("TSFT".utf8)
            out.appendLE(extents.count, 4)
            out.put64Append(UInt64(indexOffset))
            out.put64Append(records)
            out.appendLE(12 + 12 * extents.count, 4)
            out.appendCRC(of: footer..<out.count)
            if unsealed.contains("footer") { out[out.count - 1] ^= 0x55 }
        }
        if let truncate, truncate < out.count { out.removeLast(out.count - truncate) }
        return out
    }

    /// One structure-aware mutation.
    mutating func mutate(_ random: inout FuzzRandom) {
        switch random.below(14) {
        case 0, 1: JSONMutations.mutate(&header, &random)
        case 2, 3, 4, 5: mutateDecodedSection(&random)
        case 6: mutateFraming(&random)
        case 7:
            guard !blocks.isEmpty else { return }
            let b = random.below(blocks.count)
            switch random.below(4) {
            case 0: blocks[b].count = random.pick([0, 1, blocks[b].count + 1, blocks[b].count - 1, 65_537, Int(UInt32.max)])
            case 1: blocks[b].firstOrdinal = random.pick([0, 1, blocks[b].firstOrdinal &+ 1, UInt64.max, UInt64(Int.max)])
            case 2: blocks[b].reserved = 1
            default: blocks[b].magic[random.below(4)] ^= 1
            }
        case 8:
            guard !blocks.isEmpty else { return }
            blocks[random.below(blocks.count)].trailing += [UInt8(truncatingIfNeeded: random.next())]
        case 9:
            records = random.pick([0, records &+ 1, records &- 1, records &* 2, UInt64(UInt32.max) * 65_536, UInt64.max])
        case 10:
            switch random.below(3) {
            case 0: dropFooter = true
            case 1: truncate = random.below(serialized().count)
            default: major = random.pick([0, 2, 0xFFFF]); if random.chance(50) { truncate = 12 + random.below(4) }
            }
        case 11:
            guard !blocks.isEmpty else { return }
            if random.chance(50) { blocks.append(blocks[random.below(blocks.count)]) } else { blocks.swapAt(random.below(blocks.count), random.below(blocks.count)) }
        case 12:
            unsealed.insert(random.pick(["header", "footer", "block0", "payload0", "block1", "payload1"]))
        default:
            minor = random.pick([0, 1, 2, 0xFFFF])
        }
    }

    /// Decodes a section (inflating it), changes the decoded bytes, and stores them back as stored or
    /// zlib, so that the change reaches the record decoder.
    private mutating func mutateDecodedSection(_ random: inout FuzzRandom) {
        guard !blocks.isEmpty else { return }
        let b = random.below(blocks.count)
        let s = random.below(5)
        var section = blocks[b].sections[s]
        var decoded = section.codec == 1 ? (FuzzZlib.decompress(section.stored, limit: section.decodedLength) ?? section.stored) : section.stored
        guard !decoded.isEmpty else { return }
        switch random.below(4) {
        case 0: decoded[random.below(decoded.count)] = random.pick([0, 0xFF, 0x7C, 0x7E, 0x3C, 0x01, 0x80])
        case 1: decoded[random.below(decoded.count)] ^= UInt8(1 << random.below(8))
        case 2: decoded.swapAt(random.below(decoded.count), random.below(decoded.count))
        default: for i in 0..<min(decoded.count, 8) { decoded[random.below(decoded.count)] = UInt8(truncatingIfNeeded: i &* 37 &+ Int(random.next() & 0xFF)) }
        }
        if random.chance(50) {
            section.codec = 1
            section.stored = FuzzZlib.compress(decoded)
        } else {
            section.codec = 0
            section.stored = decoded
        }
        section.decodedLength = decoded.count
        blocks[b].sections[s] = section
    }

    private mutating func mutateFraming(_ random: inout FuzzRandom) {
        guard !blocks.isEmpty else { return }
        let b = random.below(blocks.count)
        let s = random.below(5)
        switch random.below(5) {
        case 0: blocks[b].sections[s].codec = random.pick([0, 1, 2, 255])
        case 1: blocks[b].sections[s].reserved[random.below(3)] = 1
        case 2: blocks[b].sections[s].decodedLength = random.pick([0, blocks[b].sections[s].decodedLength + 1, 1 << 30, Int(UInt32.max)])
        case 3: blocks[b].sections[s].stored.append(0)
        default: if !blocks[b].sections[s].stored.isEmpty { blocks[b].sections[s].stored.removeLast() }
        }
    }
}

extension Array where Element == UInt8 {
    mutating func put64Append(_ value: UInt64) { for i in 0..<8 { append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) } }
}
