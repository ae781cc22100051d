import Foundation

/// One record as stored: the teacher's entries in their original order.
public struct ShardRecord: Sendable, Equatable {
    public var sampleID: UInt32
    /// The augmentation code (A bytes; see ``AugmentationKind``).
    public var augmentation: [UInt8]
    public var indices: [Int32]
    public var values: [Float16]

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
    public let path: String
    public let schema: ShardSchema
    public let recordCount: Int
    public var fileSize: Int { file.bytes.count }
    public var blockCount: Int { blocks.count }

    let file: MappedFile
    let blocks: [BlockExtent]
    let blocksStart: Int
    private let sampleTableLock = NSLock()
    private var sampleTable: [Int32]?  // sample id -> ordinal, -1 when absent

    public convenience init(url: URL) throws { try self.init(path: url.path) }

    public init(path: String) throws {
        do {
            file = try MappedFile(path: path)
            (schema, blocksStart) = try ShardFileLayout.readHeader(file.bytes)
            (blocks, recordCount) = try ShardFileLayout.readIndex(file.bytes, schema: schema, blocksStart: blocksStart)
        } catch let error as ShardError {
            throw error.located(ShardLocation(file: path))
        }
        self.path = path
    }

    public func makeCursor() -> ShardCursor { ShardCursor(self) }

    /// Records of block `b`: the ordinal range it covers.
    public func ordinals(ofBlock b: Int) -> Range<Int> {
        let start = b * schema.recordsPerBlock
        return start..<min(start + schema.recordsPerBlock, recordCount)
    }

    func blockBytes(_ b: Int) -> UnsafeRawBufferPointer {
        let extent = blocks[b]
        return UnsafeRawBufferPointer(rebasing: file.bytes[extent.offset..<(extent.offset + extent.length)])
    }

    /// The ordinal of the record for `sampleID`, or nil when this shard does not hold it.
    ///
    /// The first call builds a sample-id table from every block's sample-id section (Spec 1.3); later
    /// calls are O(1). Throws if a block is damaged or a sample id appears twice.
    public func ordinal(ofSample sampleID: UInt32) throws -> Int? {
        let table = try sampleTableBuilt()
        guard Int(sampleID) < table.count else { return nil }
        let ordinal = table[Int(sampleID)]
        return ordinal < 0 ? nil : Int(ordinal)
    }

    private func sampleTableBuilt() throws -> [Int32] {
        sampleTableLock.lock()
        defer { sampleTableLock.unlock() }
        if let sampleTable { return sampleTable }
        var table: [Int32] = []
        let cursor = makeCursor()
        for b in 0..<blocks.count {
            let block = try cursor.block(b)
            for i in 0..<block.count {
                let id = Int(block.sampleIDs[i])
                if id >= table.count { table.append(contentsOf: repeatElement(-1, count: max(id + 1, table.count * 2) - table.count)) }
                guard table[id] < 0 else {
                    throw ShardError(.duplicateSample, "sample \(id) is stored at ordinals \(table[id]) and \(block.firstOrdinal + i)",
                                     at: ShardLocation(file: path, block: b, record: block.firstOrdinal + i, sampleID: UInt32(id)))
                }
                table[id] = Int32(block.firstOrdinal + i)
            }
        }
        sampleTable = table
        return table
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

/// Decodes records of one shard, keeping the last decoded block. Not thread-safe: use one per thread.
public final class ShardCursor {
    public let reader: ShardReader
    let block: DecodedBlock
    private var residuals: [Float] = []

    init(_ reader: ShardReader) {
        self.reader = reader
        block = DecodedBlock(schema: reader.schema)
    }

    var schema: ShardSchema { reader.schema }

    /// Decodes block `b` (or returns it if it is the current one) and checks every record in it.
    func block(_ b: Int) throws -> DecodedBlock {
        if block.index == b { return block }
        let range = reader.ordinals(ofBlock: b)
        do {
            try block.decode(reader.blockBytes(b), index: b, expectedCount: range.count, expectedFirst: range.lowerBound)
        } catch let error as ShardError {
            throw error.located(ShardLocation(file: reader.path, block: b))
        }
        for i in 0..<block.count {
            if let problem = block.recordProblem(i) {
                block.invalidate()
                throw problem.located(block.location(ofRecord: i)).located(ShardLocation(file: reader.path))
            }
        }
        if schema.valueKind == .probability {
            residuals = [Float](repeating: 0, count: block.count)
            block.valueBits.withUnsafeBufferPointer { bits in
                for i in 0..<block.count {
                    residuals[i] = softLabelResidual(UnsafeBufferPointer(rebasing: bits[(i * schema.k)..<((i + 1) * schema.k)]),
                                                     classes: schema.classes)
                }
            }
        }
        return block
    }

    private func locate(_ ordinal: Int) throws -> (DecodedBlock, Int) {
        guard ordinal >= 0, ordinal < reader.recordCount else {
            throw ShardError(.invalidArgument, "record \(ordinal) is outside 0..<\(reader.recordCount)", at: ShardLocation(file: reader.path))
        }
        let b = ordinal / schema.recordsPerBlock
        return (try block(b), ordinal - b * schema.recordsPerBlock)
    }

    /// One record, entries in stored order.
    public func record(at ordinal: Int) throws -> ShardRecord {
        let (block, i) = try locate(ordinal)
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
    public func sparse<Ordinals: Collection<Int>>(
        _ ordinals: Ordinals, indices: UnsafeMutableBufferPointer<Int32>, values: UnsafeMutableBufferPointer<Float>
    ) throws {
        let k = schema.k
        guard indices.count == ordinals.count * k, values.count == ordinals.count * k else {
            throw ShardError(.invalidArgument, "sparse buffers must hold \(ordinals.count) × \(k) entries")
        }
        var row = 0
        for ordinal in ordinals {
            let (block, i) = try locate(ordinal)
            block.sortedIndices.withUnsafeBufferPointer { sorted in
                block.ranks.withUnsafeBufferPointer { ranks in
                    block.valueBits.withUnsafeBufferPointer { bits in
                        for j in 0..<k {
                            indices[row * k + j] = sorted[i * k + Int(ranks[i * k + j])]
                            values[row * k + j] = Float(Float16(bitPattern: bits[i * k + j]))
                        }
                    }
                }
            }
            row += 1
        }
    }

    /// Dense batch decode: one row of C float32 soft labels per ordinal (Spec section 7), written row
    /// after row into `rows` (`ordinals.count * C` long).
    public func dense<Ordinals: Collection<Int>>(_ ordinals: Ordinals, into rows: UnsafeMutableBufferPointer<Float>) throws {
        guard schema.valueKind == .probability else {
            throw ShardError(.notProbability, "dense soft labels need probabilities; this shard stores logits",
                             at: ShardLocation(file: reader.path))
        }
        let k = schema.k
        let classes = schema.classes
        guard rows.count == ordinals.count * classes else {
            throw ShardError(.invalidArgument, "dense buffer must hold \(ordinals.count) × \(classes) floats")
        }
        var row = 0
        for ordinal in ordinals {
            let (block, i) = try locate(ordinal)
            let out = UnsafeMutableBufferPointer(rebasing: rows[(row * classes)..<((row + 1) * classes)])
            out.update(repeating: residuals[i])
            block.sortedIndices.withUnsafeBufferPointer { sorted in
                block.ranks.withUnsafeBufferPointer { ranks in
                    block.valueBits.withUnsafeBufferPointer { bits in
                        for j in 0..<k {
                            out[Int(sorted[i * k + Int(ranks[i * k + j])])] = Float(Float16(bitPattern: bits[i * k + j]))
                        }
                    }
                }
            }
            row += 1
        }
    }
}
