import Foundation

/// One record as stored: the teacher's entries in their original order.
public struct ShardRecord: Sendable, Equatable {
    /// The sample id: an index into the dataset's key table.
    public var sampleID: UInt32
    /// The augmentation code (A bytes; see ``AugmentationKind``).
    public var augmentation: [UInt8]
    /// The K class indices, each in 0..<C, in the teacher's order.
    public var indices: [Int32]
    /// The K values (probabilities or logits, see ``ShardSchema/valueKind``), in the same order as ``indices``.
    public var values: [Float16]

    /// A record; `indices` and `values` must both hold K entries when it is written.
    public init(sampleID: UInt32, augmentation: [UInt8] = [], indices: [Int32], values: [Float16]) {
        self.sampleID = sampleID
        self.augmentation = augmentation
        self.indices = indices
        self.values = values
    }

    /// The `seed` kind's int32, when the code is four bytes.
    public var seed: Int32? {
        guard augmentation.count == 4 else { return nil }
        return Int32(bitPattern: UInt32(augmentation[0]) | UInt32(augmentation[1]) << 8
            | UInt32(augmentation[2]) << 16 | UInt32(augmentation[3]) << 24)
    }
}

/// A memory-mapped, read-only shard.
///
/// Opening checks the header, footer and index (O(number of blocks)); blocks are checked when decoded.
/// The reader is immutable and safe to share between threads; decoding goes through a ``ShardCursor``,
/// one per thread, which keeps the last decoded block.
public final class ShardReader: @unchecked Sendable {
    /// The shard's path, as opened.
    public let path: String
    /// The shard's header.
    public let schema: ShardSchema
    /// N, the records in the shard (from its footer).
    public let recordCount: Int
    /// The file's size in bytes.
    public var fileSize: Int { file.bytes.count }
    /// The number of blocks (each of R records but the last).
    public var blockCount: Int { blocks.count }

    let file: MappedFile
    let blocks: [BlockExtent]
    let blocksStart: Int
    private let sampleTableLock = NSLock()
    private var sampleTable: SampleTable?

    /// Opens the shard at `url.path`; see ``init(path:)``.
    public convenience init(url: URL) throws { try self.init(path: url.path) }

    /// Maps the shard and checks its header, footer and index (not the blocks, which are checked when first decoded).
    /// Throws ``ShardError`` located at `path` (`io`, `bad-magic`, `incomplete`, `bad-index`, ...).
    public init(path: String) throws {
        do {
            file = try MappedFile.format(path: path)
            (schema, blocksStart) = try ShardFileLayout.readHeader(file.bytes)
            (blocks, recordCount) = try ShardFileLayout.readIndex(file.bytes, schema: schema, blocksStart: blocksStart)
        } catch let error as ShardError {
            throw error.located(ShardLocation(file: path))
        }
        self.path = path
    }

    /// A decoder for one thread; see ``ShardCursor`` for `cachedBlocks`.
    public func makeCursor(cachedBlocks: Int = 1) -> ShardCursor { ShardCursor(self, cachedBlocks: cachedBlocks) }

    /// Records of block `b`: the ordinal range it covers.
    public func ordinals(ofBlock b: Int) -> Range<Int> {
        let start = b * schema.recordsPerBlock
        return start..<min(start + schema.recordsPerBlock, recordCount)
    }

    /// Where block `b` sits in the file.
    public func blockRange(_ b: Int) -> Range<Int> { blocks[b].offset..<(blocks[b].offset + blocks[b].length) }

    /// Lets go of the mapped pages inside `range` (`MappedFile.releasePages(_:)`): a pass over a file of
    /// gigabytes keeps little resident.
    public func releaseMappedPages(_ range: Range<Int>) { file.releasePages(range) }

    func blockBytes(_ b: Int) -> UnsafeRawBufferPointer {
        let extent = blocks[b]
        return UnsafeRawBufferPointer(rebasing: file.bytes[extent.offset..<(extent.offset + extent.length)])
    }

    /// The ordinal of the record for `sampleID`, or nil when this shard does not hold it.
    ///
    /// The first call builds a sample-id table from every block's sample-id section (Spec 1.3); later
    /// calls are O(1). Throws if a block is damaged or a sample id appears twice.
    public func ordinal(ofSample sampleID: UInt32) throws -> Int? {
        try sampleTableBuilt().ordinal(of: sampleID)
    }

    private func sampleTableBuilt() throws -> SampleTable {
        sampleTableLock.lock()
        defer { sampleTableLock.unlock() }
        if let sampleTable { return sampleTable }
        // Grown block by block: memory follows the records decoded, not the count the footer claims. Only the
        // sample-id sections are read (Spec 1.3); a record is checked when it is read.
        var ids: [UInt32] = []
        var blockIDs: [UInt32] = []
        var reader = BlockSampleIDs()
        for b in 0..<blocks.count {
            try reader.read(self, block: b, into: &blockIDs)
            ids.append(contentsOf: blockIDs)
        }
        let table = try SampleTable(ids: ids, path: path, recordsPerBlock: schema.recordsPerBlock)
        sampleTable = table
        return table
    }

    /// Every record's sample id in ordinal order, from the sample-id sections alone (a block's header, payload
    /// checksum and that section are checked; its records when they are read): what planning an epoch needs,
    /// at ~4 decoded bytes per record instead of a whole record's.
    public func sampleIDs() throws -> [UInt32] {
        var ids: [UInt32] = []
        ids.reserveCapacity(min(recordCount, 1 << 24))
        var block: [UInt32] = []
        var reader = BlockSampleIDs()
        for b in 0..<blocks.count {
            try reader.read(self, block: b, into: &block)
            ids.append(contentsOf: block)
        }
        return ids
    }

    /// Calls `body` with every record in order.
    public func forEachRecord(_ body: (Int, ShardRecord) throws -> Void) throws {
        file.adviseSequential()
        let cursor = makeCursor()
        for ordinal in 0..<recordCount { try body(ordinal, try cursor.record(at: ordinal)) }
    }

    /// One record by ordinal (decodes its block; use a cursor for many).
    public func record(at ordinal: Int) throws -> ShardRecord { try makeCursor().record(at: ordinal) }
}

/// Decodes records of one shard. Not thread-safe: use one per thread (cursors are cheap; many may read
/// one ``ShardReader`` at once).
///
/// A record lives inside a zlib-compressed block, so reading one decodes its whole block. The cursor
/// keeps the last `cachedBlocks` decoded blocks (least recently used goes first): 1 suits reading in
/// stored order (the teacher pass's sampler order, which training replays); random access over a whole
/// shard wants `cachedBlocks >= reader.blockCount`, at ~(12 + 11K) bytes per record of memory.
public final class ShardCursor {
    /// The shard this cursor decodes.
    public let reader: ShardReader
    /// Decoded blocks kept (least recently used dropped first), at least 1.
    public let cachedBlocks: Int
    private var cache: [Int: DecodedBlock] = [:]
    private var lastUse: [Int: Int] = [:]
    private var clock = 0
    private var current: DecodedBlock?

    init(_ reader: ShardReader, cachedBlocks: Int = 1) {
        self.reader = reader
        self.cachedBlocks = max(1, cachedBlocks)
    }

    var schema: ShardSchema { reader.schema }

    /// Decodes block `b` (or returns it from the cache) and checks every record in it.
    func block(_ b: Int) throws -> DecodedBlock {
        if let current, current.index == b { return current }
        clock += 1
        if let cached = cache[b] {
            lastUse[b] = clock
            current = cached
            return cached
        }
        let block: DecodedBlock
        if cache.count >= cachedBlocks, let oldest = lastUse.min(by: { $0.value < $1.value })?.key {
            block = cache.removeValue(forKey: oldest)!  // reuse its buffers
            lastUse[oldest] = nil
        } else {
            block = DecodedBlock(schema: schema)
        }
        let range = reader.ordinals(ofBlock: b)
        do {
            try block.decode(reader.blockBytes(b), index: b, expectedCount: range.count, expectedFirst: range.lowerBound)
            if let (i, problem) = block.firstRecordProblem() { throw problem.located(block.location(ofRecord: i)) }
        } catch let error as ShardError {
            block.invalidate()
            current = nil
            throw error.located(ShardLocation(file: reader.path, block: b))
        }
        block.computeResiduals()
        cache[b] = block
        lastUse[b] = clock
        current = block
        return block
    }

    private func locate(_ ordinal: Int) throws -> (DecodedBlock, Int) {
        guard ordinal >= 0, ordinal < reader.recordCount else {
            throw ShardError(.invalidArgument, "record \(ordinal) is outside 0..<\(reader.recordCount)", at: ShardLocation(file: reader.path))
        }
        let b = ordinal / schema.recordsPerBlock
        return (try block(b), ordinal - b * schema.recordsPerBlock)
    }

    /// One record, entries in stored order (the teacher's, largest first in a sorted shard).
    /// - Throws: ``ShardError``: `.invalidArgument` for an ordinal outside `0..<recordCount`, or the code of
    ///   a damaged block.
    public func record(at ordinal: Int) throws -> ShardRecord {
        let (block, i) = try locate(ordinal)
        block.decodeRanks(ofRecord: i)
        let k = schema.k
        let a = schema.augmentation.codeSize
        var indices = [Int32](repeating: 0, count: k)
        var values = [Float16](repeating: 0, count: k)
        for j in 0..<k {
            indices[j] = block.sortedIndices[i * k + Int(block.ranks[i * k + j])]
            values[j] = Float16(bitPattern: block.valueBits[i * k + j])
        }
        return ShardRecord(sampleID: block.sampleIDs[i], augmentation: Array(block.augmentation[(i * a)..<((i + 1) * a)]),
                           indices: indices, values: values)
    }

    /// The sample id of a record.
    public func sampleID(at ordinal: Int) throws -> UInt32 {
        let (block, i) = try locate(ordinal)
        return block.sampleIDs[i]
    }

    /// Sparse batch decode: for each ordinal, K class indices and K values (float32) in stored order,
    /// written row after row into the caller's buffers (each `ordinals.count * K` long).
    ///
    /// The caller owns the buffers; nothing is kept after the call.
    /// - Throws: ``ShardError``: `.invalidArgument` when a buffer has another size (before anything is
    ///   written) or an ordinal is outside `0..<recordCount`; a damaged block's own code, located by file,
    ///   block and record. Rows before the failing one have been written.
    public func sparse(_ ordinals: [Int], indices: UnsafeMutableBufferPointer<Int32>,
                       values: UnsafeMutableBufferPointer<Float>) throws {
        try ordinals.withUnsafeBufferPointer { try sparse(ordinals: $0, indices: indices, values: values) }
    }

    /// Sparse batch decode of a contiguous run of records (the sequential-reading case).
    public func sparse(_ ordinals: Range<Int>, indices: UnsafeMutableBufferPointer<Int32>,
                       values: UnsafeMutableBufferPointer<Float>) throws {
        try sparse(Array(ordinals), indices: indices, values: values)
    }

    private func sparse(ordinals: UnsafeBufferPointer<Int>, indices: UnsafeMutableBufferPointer<Int32>,
                        values: UnsafeMutableBufferPointer<Float>) throws {
        let k = schema.k
        guard indices.count == ordinals.count * k, values.count == ordinals.count * k else {
            throw ShardError(.invalidArgument, "sparse buffers must hold \(ordinals.count) × \(k) entries")
        }
        for row in 0..<ordinals.count {
            let (block, i) = try locate(ordinals[row])
            block.decodeRanks(ofRecord: i)
            block.sortedIndices.withUnsafeBufferPointer { sorted in
                block.ranks.withUnsafeBufferPointer { ranks in
                    block.values.withUnsafeBufferPointer { stored in
                        for j in 0..<k {
                            indices[row * k + j] = sorted[i * k + Int(ranks[i * k + j])]
                            values[row * k + j] = stored[i * k + j]
                        }
                    }
                }
            }
        }
    }

    /// Dense batch decode: one row of C float32 soft labels per ordinal (Spec section 7), written row
    /// after row into `rows` (`ordinals.count * C` long): the stored top-K probabilities at their classes,
    /// `(1 − Σ top-K) / (C − K)` at every other class.
    ///
    /// The caller owns `rows`; on success every element has been written, and nothing is kept after the
    /// call.
    /// - Throws: ``ShardError``: `.notProbability` for a shard of logits; `.invalidArgument` when `rows`
    ///   has another size (before anything is written) or an ordinal is outside `0..<recordCount`; a
    ///   damaged block's own code, located by file, block and record. Rows before the failing one have
    ///   been written.
    ///
    /// With `top` (1...K) only the first `top` stored entries of each record are used (Spec/FORMAT.md 7, "the top
    /// k of a record"): those values in place, every other class the residual they leave. Of a sorted shard,
    /// that is the row a shard stored with K = `top` gives.
    public func dense(_ ordinals: [Int], into rows: UnsafeMutableBufferPointer<Float>, top: Int? = nil) throws {
        try ordinals.withUnsafeBufferPointer { try dense(ordinals: $0, into: rows, top: top) }
    }

    /// Dense batch decode of a contiguous run of records (the sequential-reading case).
    public func dense(_ ordinals: Range<Int>, into rows: UnsafeMutableBufferPointer<Float>, top: Int? = nil) throws {
        try dense(Array(ordinals), into: rows, top: top)
    }

    private func dense(ordinals: UnsafeBufferPointer<Int>, into rows: UnsafeMutableBufferPointer<Float>, top: Int?) throws {
        guard schema.valueKind == .probability else {
            throw ShardError(.notProbability, "dense soft labels need probabilities; this shard stores logits",
                             at: ShardLocation(file: reader.path))
        }
        if let top {
            guard (1...schema.k).contains(top) else {
                throw ShardError(.invalidArgument, "the top \(top) of records that store K = \(schema.k) entries: k must be in 1...\(schema.k)",
                                 at: ShardLocation(file: reader.path))
            }
            guard schema.sorted || top == schema.k else {
                throw ShardError(.invalidArgument, "the top \(top) of a shard whose values are not sorted is not its teacher's top \(top)",
                                 at: ShardLocation(file: reader.path))
            }
        }
        let stored = schema.k
        let k = top ?? stored
        let classes = schema.classes
        guard rows.count == ordinals.count * classes else {
            throw ShardError(.invalidArgument, "dense buffer must hold \(ordinals.count) × \(classes) floats")
        }
        for row in 0..<ordinals.count {
            let (block, i) = try locate(ordinals[row])
            block.decodeRanks(ofRecord: i)
            let out = UnsafeMutableBufferPointer(rebasing: rows[(row * classes)..<((row + 1) * classes)])
            let residual = k == stored ? block.residuals[i] : block.values.withUnsafeBufferPointer {
                softLabelResidual(UnsafeBufferPointer(rebasing: $0[(i * stored)..<(i * stored + k)]), classes: classes)
            }
            FormatKernels.fill(out, with: residual)
            block.sortedIndices.withUnsafeBufferPointer { sorted in
                block.ranks.withUnsafeBufferPointer { ranks in
                    block.values.withUnsafeBufferPointer { values in
                        for j in 0..<k {
                            out[Int(sorted[i * stored + Int(ranks[i * stored + j])])] = values[i * stored + j]
                        }
                    }
                }
            }
        }
    }
}

/// Sample id → ordinal for one shard. Dense (O(1), 4 bytes per id up to the largest) when the ids are
/// compact, as every real dataset's are; otherwise sorted pairs and binary search, so that a damaged or
/// hostile id (say 4,000,000,000 in a ten-record shard) cannot ask for gigabytes.
struct SampleTable {
    private var dense: [Int32] = []
    private var sorted: [(id: UInt32, ordinal: Int)] = []

    init(ids: [UInt32], path: String, recordsPerBlock: Int) throws {
        let largest = Int(ids.max() ?? 0)
        func duplicate(_ id: UInt32, _ first: Int, _ second: Int) -> ShardError {
            ShardError(.duplicateSample, "sample \(id) is stored at ordinals \(first) and \(second)",
                       at: ShardLocation(file: path, block: second / recordsPerBlock, record: second, sampleID: id))
        }
        if largest < 4 * ids.count + 1024 {
            dense = [Int32](repeating: -1, count: largest + 1)
            for (ordinal, id) in ids.enumerated() {
                guard dense[Int(id)] < 0 else { throw duplicate(id, Int(dense[Int(id)]), ordinal) }
                dense[Int(id)] = Int32(ordinal)
            }
        } else {
            sorted = ids.enumerated().map { ($0.element, $0.offset) }.sorted { ($0.id, $0.ordinal) < ($1.id, $1.ordinal) }
            for i in sorted.indices.dropFirst() where sorted[i].id == sorted[i - 1].id {
                throw duplicate(sorted[i].id, sorted[i - 1].ordinal, sorted[i].ordinal)
            }
        }
    }

    func ordinal(of id: UInt32) -> Int? {
        if !dense.isEmpty || sorted.isEmpty {
            guard Int(id) < dense.count, dense[Int(id)] >= 0 else { return nil }
            return Int(dense[Int(id)])
        }
        var low = 0
        var high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle].id < id { low = middle + 1 } else { high = middle }
        }
        return low < sorted.count && sorted[low].id == id ? sorted[low].ordinal : nil
    }
}
