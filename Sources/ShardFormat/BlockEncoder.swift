import CZlib

/// Turns one block's records into the block's bytes (Spec/FORMAT.md 1.2 and 3): the five sections —
/// sample-id planes, augmentation codes, value deltas in planes, sorted-index gaps in planes, order
/// numbers — each zlib-compressed when that makes it smaller, behind the block header.
///
/// Blocks are independent, so several encoders can work on different blocks of one shard at once and
/// give exactly the bytes one encoder would. An encoder keeps its scratch space and zlib streams from
/// block to block; it is not thread-safe (one per thread).
final class BlockEncoder {
    private let k: Int
    private let indexWidth: Int
    private let orderLength: Int
    /// Decoded lengths of the five sections for a full block; their bytes sit back to back in `decoded`.
    private let fullLengths: [Int]
    private let decoded: UnsafeMutableRawBufferPointer
    /// The block being assembled: header, then each section at most its stored size.
    private let block: UnsafeMutableRawBufferPointer
    /// A second zlib candidate's output, kept only when it is smaller than the first.
    private let candidate: UnsafeMutableRawBufferPointer
    /// One record's entries as class index << 8 | entry number, sorted by class index.
    private let entries: UnsafeMutableBufferPointer<UInt32>
    /// One record's ranks: entry j's position among its sorted class indices.
    private let ranks: UnsafeMutableBufferPointer<UInt8>
    private let sorter: EntrySorter
    private let codecs: SectionCodecs

    init(schema: ShardSchema) {
        k = schema.k
        indexWidth = schema.indexWidth
        orderLength = schema.orderLength
        fullLengths = BlockLayout.decodedLengths(records: schema.recordsPerBlock, schema: schema)
        let total = fullLengths.reduce(0, +)
        decoded = .allocate(byteCount: max(total, 1), alignment: 8)
        block = .allocate(byteCount: BlockLayout.headerSize + BlockLayout.sectionCount * BlockLayout.sectionHeaderSize + total,
                          alignment: 8)
        candidate = .allocate(byteCount: max(fullLengths.max() ?? 1, 1), alignment: 8)
        entries = .allocate(capacity: schema.k)
        ranks = .allocate(capacity: schema.k)
        sorter = EntrySorter(k: schema.k, indexWidth: schema.indexWidth)
        codecs = SectionCodecs()
    }

    deinit {
        decoded.deallocate()
        block.deallocate()
        candidate.deallocate()
        entries.deallocate()
        ranks.deallocate()
        sorter.deallocate()
    }

    /// The whole block, header and payload, for `records` starting at ordinal `firstOrdinal`.
    func encode(_ records: BlockRecords, firstOrdinal: Int) -> [UInt8] {
        let n = records.count
        precondition(n >= 1, "a block holds at least one record")
        let lengths = [4 * n, records.codeSize * n, 2 * n * k, indexWidth * n * k, orderLength * n]
        // Each section's bytes at the same place as in a full block.
        var starts: [Int] = []
        var start = 0
        for full in fullLengths {
            starts.append(start)
            start += full
        }
        func region(_ section: Int) -> UnsafeMutableRawBufferPointer {
            UnsafeMutableRawBufferPointer(rebasing: decoded[starts[section]..<(starts[section] + lengths[section])])
        }
        fillSampleIDs(records, into: region(0))
        if lengths[1] > 0 {
            records.augmentation.withUnsafeBytes { region(1).copyMemory(from: $0) }
        }
        fillValues(records, into: region(2))
        fillIndicesAndOrder(records, indices: region(3), order: region(4))

        let laterValues = n * (k - 1)
        let planeEnds: [[Int]] = [
            (1...4).map { $0 * n },
            [lengths[1]],
            [n, 2 * n, 2 * n + laterValues, 2 * n + 2 * laterValues],
            (1...indexWidth).map { $0 * n * k },
            [lengths[4]],
        ]
        var offset = BlockLayout.headerSize
        for section in 0..<BlockLayout.sectionCount {
            offset = emitSection(UnsafeRawBufferPointer(region(section)), planeEnds: planeEnds[section],
                                 codecs: codecs.candidates[section], at: offset)
        }
        let payload = UnsafeRawBufferPointer(rebasing: block[BlockLayout.headerSize..<offset])
        BlockLayout.magic.withUnsafeBytes { block.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: 4) }
        block.storeBytes(of: UInt32(n).littleEndian, toByteOffset: 4, as: UInt32.self)
        block.storeBytes(of: UInt64(firstOrdinal).littleEndian, toByteOffset: 8, as: UInt64.self)
        block.storeBytes(of: UInt32(payload.count).littleEndian, toByteOffset: 16, as: UInt32.self)
        block.storeBytes(of: CRC32.checksum(payload).littleEndian, toByteOffset: 20, as: UInt32.self)
        block.storeBytes(of: UInt32(0), toByteOffset: 24, as: UInt32.self)
        let headerCRC = CRC32.checksum(UnsafeRawBufferPointer(rebasing: block[0..<28]))
        block.storeBytes(of: headerCRC.littleEndian, toByteOffset: 28, as: UInt32.self)
        return Array(UnsafeRawBufferPointer(rebasing: block[0..<offset]))
    }

    /// Spec 3.1: byte 0 of every id, then byte 1, byte 2, byte 3.
    private func fillSampleIDs(_ records: BlockRecords, into planes: UnsafeMutableRawBufferPointer) {
        let n = records.count
        records.sampleIDs.withUnsafeBufferPointer { ids in
            for record in 0..<n {
                let id = ids[record]
                for plane in 0..<4 { planes[plane * n + record] = UInt8(truncatingIfNeeded: id >> UInt32(8 * plane)) }
            }
        }
    }

    /// Spec 3.3: every record's first value, then the later differences t_j = b_{j-1} − b_j, each group as
    /// a low-byte plane and a high-byte plane.
    private func fillValues(_ records: BlockRecords, into planes: UnsafeMutableRawBufferPointer) {
        let n = records.count
        let k = self.k
        let later = n * (k - 1)
        records.valueBits.withUnsafeBufferPointer { bits in
            for record in 0..<n {
                var previous = bits[record * k]
                planes[record] = UInt8(truncatingIfNeeded: previous)
                planes[n + record] = UInt8(truncatingIfNeeded: previous >> 8)
                for j in 1..<k {
                    let current = bits[record * k + j]
                    let delta = previous &- current
                    let m = record * (k - 1) + j - 1
                    planes[2 * n + m] = UInt8(truncatingIfNeeded: delta)
                    planes[2 * n + later + m] = UInt8(truncatingIfNeeded: delta >> 8)
                    previous = current
                }
            }
        }
    }

    /// Spec 3.4 and 3.5 from one sort per record: the gaps of the sorted class indices as `indexWidth`
    /// planes, and the order number that ties the stored order to them.
    private func fillIndicesAndOrder(_ records: BlockRecords, indices planes: UnsafeMutableRawBufferPointer,
                                     order: UnsafeMutableRawBufferPointer) {
        let n = records.count
        let k = self.k
        let total = n * k
        let width = indexWidth
        let length = orderLength
        let entries = self.entries
        let ranks = self.ranks
        records.indices.withUnsafeBufferPointer { indices in
            for record in 0..<n {
                for j in 0..<k {
                    entries[j] = UInt32(bitPattern: indices[record * k + j]) << 8 | UInt32(j)
                }
                sorter.sort(entries)
                var next: UInt32 = 0  // the smallest class index the next entry can have
                for position in 0..<k {
                    let entry = entries[position]
                    let index = entry >> 8
                    let gap = index - next
                    next = index + 1
                    let at = record * k + position
                    for plane in 0..<width { planes[plane * total + at] = UInt8(truncatingIfNeeded: gap >> UInt32(8 * plane)) }
                    ranks[Int(entry & 0xFF)] = UInt8(truncatingIfNeeded: position)
                }
                OrderNumber.encode(ranks: UnsafeBufferPointer(ranks),
                                   into: UnsafeMutableRawBufferPointer(rebasing: order[(record * length)..<((record + 1) * length)]))
            }
        }
    }

    /// Writes one section (12-byte header, then its bytes) at `offset` of the block and returns where it
    /// ends. zlib only when a candidate makes it smaller than stored (Spec 1.2). Candidates are tried in
    /// the section's order, each only when its lower bound (``SectionDeflater/lowerBound(_:planeEnds:)``)
    /// is below the best length so far, and the first of the smallest results is kept: the choice
    /// depends on the bytes alone.
    private func emitSection(_ source: UnsafeRawBufferPointer, planeEnds: [Int], codecs: [SectionDeflater], at offset: Int) -> Int {
        let length = source.count
        let data = offset + BlockLayout.sectionHeaderSize
        var best: Int?
        if length > 1 {
            for (number, codec) in codecs.enumerated() {
                let room = (best ?? length) - 1
                // An RLE bound costs a parse of the section; a first RLE candidate runs without one.
                if number > 0 || codec.hasCheapBound, codec.lowerBound(source, planeEnds: planeEnds) > room { continue }
                let target = best == nil ? UnsafeMutableRawBufferPointer(rebasing: block[data..<(data + room)])
                                         : UnsafeMutableRawBufferPointer(rebasing: candidate[0..<room])
                guard let size = codec.compress(source, planeEnds: planeEnds, into: target) else { continue }
                if best != nil {
                    UnsafeMutableRawBufferPointer(rebasing: block[data..<(data + size)])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: candidate[0..<size]))
                }
                best = size
            }
        }
        if best == nil && length > 0 {
            UnsafeMutableRawBufferPointer(rebasing: block[data..<(data + length)]).copyMemory(from: source)
        }
        block.storeBytes(of: UInt32(best == nil ? 0 : 1).littleEndian, toByteOffset: offset, as: UInt32.self)  // codec, 3 reserved 0s
        block.storeBytes(of: UInt32(best ?? length).littleEndian, toByteOffset: offset + 4, as: UInt32.self)
        block.storeBytes(of: UInt32(length).littleEndian, toByteOffset: offset + 8, as: UInt32.self)
        return data + (best ?? length)
    }
}

/// Sorts one record's entries (class index << 8 | entry number) by class index, with scratch kept from
/// record to record: the standard sort for small K, an LSD radix sort on the index bytes from K = 32 on
/// (measured per record: 1 µs against 4.5 µs at K = 100, the largest single cost of encoding there).
struct EntrySorter {
    private let indexWidth: Int
    private let temporary: UnsafeMutableBufferPointer<UInt32>
    private let counts: UnsafeMutableBufferPointer<Int>

    init(k: Int, indexWidth: Int) {
        self.indexWidth = indexWidth
        temporary = .allocate(capacity: k)
        counts = .allocate(capacity: 256)
    }

    func deallocate() {
        temporary.deallocate()
        counts.deallocate()
    }

    func sort(_ entries: UnsafeMutableBufferPointer<UInt32>) {
        guard entries.count >= 32 else {
            var entries = entries  // a view: sorting it sorts the memory in place
            entries.sort()
            return
        }
        var source = entries
        var target = temporary
        for pass in 0..<indexWidth {
            let shift = UInt32(8 + 8 * pass)
            counts.update(repeating: 0)
            for entry in source { counts[Int((entry >> shift) & 0xFF)] += 1 }
            var total = 0
            for digit in 0..<256 {
                let count = counts[digit]
                counts[digit] = total
                total += count
            }
            for entry in source {
                let digit = Int((entry >> shift) & 0xFF)
                target[counts[digit]] = entry
                counts[digit] += 1
            }
            swap(&source, &target)
        }
        if indexWidth % 2 == 1 { _ = entries.update(fromContentsOf: source) }
    }
}

/// The zlib strategies a block encoder tries on each section (Spec 1.2 leaves the choice to writers):
/// Z_RLE and Z_HUFFMAN_ONLY, the smaller kept, a candidate skipped when its lower bound (``DeflateBound``)
/// shows it cannot win.
///
/// Measured on official-layout teacher data (Tools/scale/make_official.py, 10^5–10^6 records) against
/// level 6 with Z_FILTERED, the writer's earlier choice: Z_RLE (runs of one byte, no string search) is
/// ~1% smaller on every section at ~3.5x the speed, and the params codes of the demo compress better
/// with it too. Z_HUFFMAN_ONLY is smaller still on the class-index planes at K = 100 (117.7 vs 120.2
/// bytes/record) and on the value planes at K = 10 (13.7 vs 14.0), and larger elsewhere. The order puts
/// first what usually wins, so that the second is usually skipped by its bound: at K = 100 each section
/// runs zlib once, and uniform bytes (seeds, order numbers) not at all.
struct SectionCodecs {
    /// Per section, in section order: sample ids, augmentation, values, indices, order.
    let candidates: [[SectionDeflater]]

    init() {
        let rle = SectionDeflater(strategy: Z_RLE)
        let huffman = SectionDeflater(strategy: Z_HUFFMAN_ONLY)
        candidates = [[rle, huffman], [huffman, rle], [rle, huffman], [huffman, rle], [huffman, rle]]
    }
}
