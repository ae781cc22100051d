import Foundation

/// Where the bytes of a shard go: the five block sections (stored and decoded sizes, summed over every
/// block) and the fixed parts around them (preamble and header, block and section headers, index,
/// footer). What `tinyshard inspect` prints as bytes per record.
///
/// Computed from the block and section headers only (nothing is inflated), so it is cheap: O(blocks).
/// Every block header's own checksum is checked and every length is bounds-checked, but payload
/// checksums are not (that is ``ShardVerifier``'s job).
public struct ShardStatistics: Sendable, Equatable {
    /// The five sections of a block payload, in file order (Spec/FORMAT.md 1.2).
    public enum Section: Int, Sendable, CaseIterable, CustomStringConvertible {
        /// The five sections, in payload order.
        case sampleIDs = 0, augmentation, values, indices, order

        /// The section's name for tables: `sample ids`, `augmentation`, ...
        public var description: String {
            switch self {
            case .sampleIDs: return "sample ids"
            case .augmentation: return "augmentation"
            case .values: return "values"
            case .indices: return "indices"
            case .order: return "order"
            }
        }
    }

    /// One section summed over blocks.
    public struct SectionSize: Sendable, Equatable {
        /// Bytes in the file (after zlib where it was used), without the 12-byte section headers.
        public var stored = 0
        /// Bytes after inflating.
        public var decoded = 0
        /// Blocks that store this section with zlib.
        public var zlibBlocks = 0

        /// Zero bytes, zero blocks.
        public init() {}

        /// decoded / stored; 1 when the section is empty.
        public var compressionRatio: Double { stored == 0 ? 1 : Double(decoded) / Double(stored) }

        static func + (a: SectionSize, b: SectionSize) -> SectionSize {
            var sum = SectionSize()
            sum.stored = a.stored + b.stored
            sum.decoded = a.decoded + b.decoded
            sum.zlibBlocks = a.zlibBlocks + b.zlibBlocks
            return sum
        }
    }

    /// Shard files summed.
    public var files = 0
    /// Records summed.
    public var records = 0
    /// Blocks summed.
    public var blocks = 0
    /// Bytes of the files summed (headers, index and footers included).
    public var fileBytes = 0
    /// Indexed by `Section.rawValue`; use the subscript.
    public private(set) var sections = [SectionSize](repeating: SectionSize(), count: Section.allCases.count)
    /// Preamble, header JSON and header CRC.
    public var headerBytes = 0
    /// 32 bytes per block.
    public var blockHeaderBytes = 0
    /// 12 bytes per section per block.
    public var sectionHeaderBytes = 0
    /// The index (12 + 12 per block).
    public var indexBytes = 0
    /// 32 bytes per file.
    public var footerBytes = 0

    /// All zero: the start of a sum over several shards.
    public init() {}

    /// The sizes of one section, summed over the blocks.
    public subscript(section: Section) -> SectionSize {
        get { sections[section.rawValue] }
        set { sections[section.rawValue] = newValue }
    }

    /// Everything that is not a section's bytes: headers, block and section headers, index, footer.
    public var overheadBytes: Int { headerBytes + blockHeaderBytes + sectionHeaderBytes + indexBytes + footerBytes }

    /// Sums over several shards (a dataset).
    public static func + (a: ShardStatistics, b: ShardStatistics) -> ShardStatistics {
        var sum = a
        sum += b
        return sum
    }

    /// Adds every count of `b` to `a` (to sum statistics over shards).
    public static func += (a: inout ShardStatistics, b: ShardStatistics) {
        a.files += b.files
        a.records += b.records
        a.blocks += b.blocks
        a.fileBytes += b.fileBytes
        for i in a.sections.indices { a.sections[i] = a.sections[i] + b.sections[i] }
        a.headerBytes += b.headerBytes
        a.blockHeaderBytes += b.blockHeaderBytes
        a.sectionHeaderBytes += b.sectionHeaderBytes
        a.indexBytes += b.indexBytes
        a.footerBytes += b.footerBytes
    }

    /// Walks the block and section headers of a complete shard.
    public init(reader: ShardReader) throws {
        files = 1
        records = reader.recordCount
        blocks = reader.blockCount
        fileBytes = reader.fileSize
        headerBytes = reader.blocksStart
        footerBytes = ShardFileLayout.footerSize
        indexBytes = 12 + ShardFileLayout.indexEntrySize * reader.blockCount
        blockHeaderBytes = BlockLayout.headerSize * reader.blockCount
        sectionHeaderBytes = BlockLayout.sectionHeaderSize * BlockLayout.sectionCount * reader.blockCount
        var released = reader.blocksStart
        for b in 0..<reader.blockCount {
            // Headers are spread over every page of a file: let go of the pages walked, so that inspecting an
            // ImageNet-21k epoch stays within a few megabytes of memory.
            if b % 256 == 0, b > 0 {
                reader.file.releasePages(released..<reader.blocks[b].offset)
                released = reader.blocks[b].offset
            }
            do {
                let bytes = reader.blockBytes(b)
                let header = try BlockHeader(bytes)
                guard BlockLayout.headerSize + header.payloadLength == bytes.count else {
                    throw ShardError(.blockStructure, "payload length \(header.payloadLength) does not match the index's block length \(bytes.count)")
                }
                var payload = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[BlockLayout.headerSize...]), failure: .badSection)
                for section in Section.allCases {
                    let codec = try payload.u8("\(section) section codec")
                    _ = try payload.bytes(3, "\(section) section header")
                    let stored = Int(try payload.u32("\(section) section length"))
                    let decoded = Int(try payload.u32("\(section) section length"))
                    _ = try payload.bytes(stored, "\(section) section")
                    self[section].stored += stored
                    self[section].decoded += decoded
                    if codec == 1 { self[section].zlibBlocks += 1 }
                }
                guard payload.remaining == 0 else {
                    throw ShardError(.badSection, "\(payload.remaining) bytes follow the last section inside the payload")
                }
            } catch let error as ShardError {
                throw error.located(ShardLocation(file: reader.path, block: b))
            }
        }
        reader.file.releasePages(released..<reader.fileSize)
    }
}

extension ShardReader {
    /// Per-section sizes of this shard (see ``ShardStatistics``).
    public func statistics() throws -> ShardStatistics { try ShardStatistics(reader: self) }
}

extension ShardDataset {
    /// Per-section sizes summed over every shard (see ``ShardStatistics``), the shards walked on up to
    /// `threads` threads (an ImageNet-21k epoch has ~900 k block headers, one page fault each). A damaged
    /// shard is reported as a walk in manifest order would report it: the error of the first damaged shard.
    public func statistics(threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws -> ShardStatistics {
        let results = WorkerSlots<Result<ShardStatistics, Error>?>(count: shards.count, repeating: nil)
        let workers = max(1, min(threads, shards.count))
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            for s in stride(from: worker, to: shards.count, by: workers) {
                results[s] = Result { try shards[s].statistics() }
            }
        }
        var sum = ShardStatistics()
        for s in shards.indices { sum += try results[s]!.get() }
        return sum
    }
}
