/// The fixed parts of a shard file (Spec/FORMAT.md 1.1 and 1.3): preamble, header, index and footer.
public enum ShardFileLayout {
    /// The 8 bytes every shard starts with: `\x89TSH\r\n\x1a\n`.
    public static let magic: [UInt8] = [0x89, 0x54, 0x53, 0x48, 0x0D, 0x0A, 0x1A, 0x0A]
    /// The major version readers accept; any other is `unsupported-version`.
    public static let majorVersion: UInt16 = 1
    /// 1: written under spec revision 1.1 (the tightened reading rules; no byte layout changed).
    public static let minorVersion: UInt16 = 1
    static let preambleSize = 16
    static let maxHeaderLength = 1 << 20
    static let indexMagic: [UInt8] = Array("TSIX".utf8)
    static let footerMagic: [UInt8] = Array("TSFT".utf8)
    static let footerSize = 32
    static let indexEntrySize = 12

    /// Preamble, header JSON and header CRC for `schema`.
    static func headerBytes(_ schema: ShardSchema) throws -> [UInt8] {
        let json = [UInt8](try schema.jsonData())
        var writer = ByteWriter(capacity: preambleSize + json.count + 4)
        writer.append(magic)
        writer.u16(majorVersion)
        writer.u16(minorVersion)
        writer.u32(UInt32(json.count))
        writer.append(json)
        writer.u32(CRC32.checksum(writer.bytes))
        return writer.bytes
    }

    static func indexBytes(_ blocks: [BlockExtent]) -> [UInt8] {
        var writer = ByteWriter(capacity: 12 + blocks.count * indexEntrySize)
        writer.append(indexMagic)
        writer.u32(UInt32(blocks.count))
        for block in blocks {
            writer.u64(UInt64(block.offset))
            writer.u32(UInt32(block.length))
        }
        writer.u32(CRC32.checksum(writer.bytes))
        return writer.bytes
    }

    static func footerBytes(blockCount: Int, indexOffset: Int, recordCount: Int, indexLength: Int) -> [UInt8] {
        var writer = ByteWriter(capacity: footerSize)
        writer.append(footerMagic)
        writer.u32(UInt32(blockCount))
        writer.u64(UInt64(indexOffset))
        writer.u64(UInt64(recordCount))
        writer.u32(UInt32(indexLength))
        writer.u32(CRC32.checksum(writer.bytes))
        return writer.bytes
    }

    /// Parses and checks the preamble and header; returns the schema and where the first block starts.
    static func readHeader(_ file: UnsafeRawBufferPointer) throws -> (schema: ShardSchema, blocksStart: Int) {
        guard file.count >= magic.count, file.prefix(magic.count).elementsEqual(magic) else {
            if file.count < magic.count && file.elementsEqual(magic.prefix(file.count)) {
                throw ShardError(.incomplete, "file has only \(file.count) bytes, the start of a shard; the writer did not finish")
            }
            throw ShardError(.badMagic, "not a TinyShard file (magic bytes differ)")
        }
        // A file shorter than the preamble is unfinished, whatever its version bytes say (Spec §1.4).
        guard file.count >= preambleSize else {
            throw ShardError(.incomplete, "file has only \(file.count) bytes, less than the 16-byte preamble; the writer did not finish")
        }
        var reader = ByteReader(file, offset: magic.count, failure: .incomplete)
        let major = try reader.u16("version")
        let minor = try reader.u16("version")
        guard major == majorVersion else {
            throw ShardError(.unsupportedVersion, "format version \(major).\(minor); this reader reads version \(majorVersion).x")
        }
        let length = Int(try reader.u32("header length"))
        guard length >= 2, length <= maxHeaderLength else {
            throw ShardError(.badHeader, "header length \(length) is outside 2...\(maxHeaderLength)")
        }
        let json = try reader.bytes(length, "header")
        let storedCRC = try reader.u32("header checksum")
        guard CRC32.checksum(UnsafeRawBufferPointer(rebasing: file[0..<(preambleSize + length)])) == storedCRC else {
            throw ShardError(.headerCRC, "header checksum mismatch")
        }
        let schema = try ShardSchema(json: Data(json))
        return (schema, reader.offset)
    }

    /// Parses and checks the footer and index of a complete file.
    static func readIndex(_ file: UnsafeRawBufferPointer, schema: ShardSchema, blocksStart: Int) throws
        -> (blocks: [BlockExtent], recordCount: Int)
    {
        guard file.count >= blocksStart + footerSize + 12 else {
            throw ShardError(.incomplete, "file ends before a footer (\(file.count) bytes); the writer did not finish")
        }
        let footer = UnsafeRawBufferPointer(rebasing: file[(file.count - footerSize)...])
        guard footer.prefix(4).elementsEqual(footerMagic) else {
            throw ShardError(.incomplete, "no footer at the end of the file; the writer did not finish or the file was cut")
        }
        guard CRC32.checksum(UnsafeRawBufferPointer(rebasing: footer[0..<28])) == footer.u32(at: 28) else {
            throw ShardError(.footerCRC, "footer checksum mismatch")
        }
        let blockCount = Int(footer.u32(at: 4))
        let indexOffset = footer.u64(at: 8)
        let recordCount = footer.u64(at: 16)
        let indexLength = Int(footer.u32(at: 24))
        let footerStart = file.count - footerSize
        guard indexLength == 12 + indexEntrySize * blockCount,
              indexOffset <= UInt64(footerStart), Int(indexOffset) + indexLength == footerStart,
              Int(indexOffset) >= blocksStart
        else { throw ShardError(.badIndex, "footer's index offset/length do not sit right before the footer") }
        let index = UnsafeRawBufferPointer(rebasing: file[Int(indexOffset)..<footerStart])
        guard index.prefix(4).elementsEqual(indexMagic), Int(index.u32(at: 4)) == blockCount else {
            throw ShardError(.badIndex, "index magic or block count is wrong")
        }
        guard CRC32.checksum(UnsafeRawBufferPointer(rebasing: index[0..<(indexLength - 4)])) == index.u32(at: indexLength - 4) else {
            throw ShardError(.badIndex, "index checksum mismatch")
        }
        let r = schema.recordsPerBlock
        guard recordCount <= UInt64(Int32.max) * UInt64(r),
              blockCount == (Int(recordCount) + r - 1) / r
        else { throw ShardError(.badIndex, "\(recordCount) records cannot fill \(blockCount) blocks of \(r)") }
        var blocks: [BlockExtent] = []
        blocks.reserveCapacity(blockCount)
        var expectedOffset = blocksStart
        for b in 0..<blockCount {
            let offset = index.u64(at: 8 + b * indexEntrySize)
            let length = Int(index.u32(at: 16 + b * indexEntrySize))
            guard offset == UInt64(expectedOffset), length >= BlockLayout.headerSize, expectedOffset + length <= Int(indexOffset) else {
                throw ShardError(.badIndex, "index entry \(b) (offset \(offset), length \(length)) does not follow the previous block")
            }
            blocks.append(BlockExtent(offset: expectedOffset, length: length))
            expectedOffset += length
        }
        guard expectedOffset == Int(indexOffset) else {
            throw ShardError(.badIndex, "blocks end at \(expectedOffset) but the index starts at \(indexOffset)")
        }
        return (blocks, Int(recordCount))
    }
}

import Foundation

/// Where one block sits in the file.
struct BlockExtent: Equatable {
    var offset: Int
    var length: Int
}
