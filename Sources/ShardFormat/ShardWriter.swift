/// What a finished shard is, as the dataset manifest records it.
public struct ShardFileInfo: Sendable, Equatable {
    public var path: String
    public var records: Int
    public var bytes: Int
    public var crc32: UInt32
}

/// Streams records into a new shard.
///
/// Records are checked against the schema as they arrive and buffered one block at a time, so memory
/// stays bounded (one block, plus 12 bytes per block and one bit per sample id for the duplicate check).
/// The file is written as `PATH.partial` and renamed to `PATH` by ``finish()``: a crash leaves no file
/// under the final name, and `tinyshard recover` can salvage the complete blocks of the partial one.
public final class ShardWriter {
    public let schema: ShardSchema
    public var path: String { output.finalPath }
    public private(set) var recordCount = 0

    private let output: AtomicFileOutput
    private let compressionLevel: Int32
    private var builder: BlockBuilder
    private var blocks: [BlockExtent] = []
    private var seenSamples = SampleIDSet()
    private var finished = false
    private var valueScratch: [UInt16]
    private var sortScratch: [Int32]

    /// zlib level 6 with the Z_FILTERED strategy: on teacher labels (mostly entropy, few repeats) it
    /// writes files as small as level 9 (±0.3%, measured on the K=10 and K=100 benchmark sets) 3-8x
    /// faster.
    public static let defaultCompressionLevel = 6

    /// - Parameter compressionLevel: zlib level 1...9 for the sections.
    public init(path: String, schema: ShardSchema, compressionLevel: Int = ShardWriter.defaultCompressionLevel) throws {
        try schema.validate()
        guard (1...9).contains(compressionLevel) else {
            throw ShardError(.invalidArgument, "zlib compression level must be 1...9, got \(compressionLevel)")
        }
        self.schema = schema
        self.compressionLevel = Int32(compressionLevel)
        builder = BlockBuilder(schema: schema)
        valueScratch = [UInt16](repeating: 0, count: schema.k)
        sortScratch = [Int32](repeating: 0, count: schema.k)
        output = try AtomicFileOutput(path: path)
        do {
            try output.write(try ShardFileLayout.headerBytes(schema))
        } catch {
            output.discard()
            throw error
        }
    }

    /// Continues the unfinished shard at `path` (its `PATH.partial`): keeps `prefix` (found by
    /// ``PartialShardPrefix/scan(path:schema:expectedSampleID:)``), cuts the file after it, and appends the
    /// next record at ordinal `prefix.records`. The finished file is byte for byte the one an uninterrupted
    /// writer fed the same records makes. An empty prefix starts the shard anew.
    public convenience init(continuing prefix: PartialShardPrefix, path: String, schema: ShardSchema,
                            compressionLevel: Int = ShardWriter.defaultCompressionLevel) throws {
        guard prefix.keptBytes > 0 else {
            try self.init(path: path, schema: schema, compressionLevel: compressionLevel)
            return
        }
        try self.init(path: path, schema: schema, compressionLevel: compressionLevel,
                      output: try AtomicFileOutput(resuming: path, keeping: prefix.keptBytes))
        blocks = prefix.blocks
        recordCount = prefix.records
        for id in prefix.sampleIDs { seenSamples.insert(id) }
    }

    /// A writer over an output that already holds this schema's header (and possibly blocks).
    private init(path: String, schema: ShardSchema, compressionLevel: Int, output: AtomicFileOutput) throws {
        try schema.validate()
        self.schema = schema
        self.compressionLevel = Int32(compressionLevel)
        builder = BlockBuilder(schema: schema)
        valueScratch = [UInt16](repeating: 0, count: schema.k)
        sortScratch = [Int32](repeating: 0, count: schema.k)
        self.output = output
    }

    /// Appends a record with float32 values, rounded to float16 (round-to-nearest-even).
    public func append(sampleID: UInt32, indices: [Int32], values: [Float], augmentation: [UInt8] = []) throws {
        guard values.count == schema.k else { throw wrongK("values", values.count) }
        values.withUnsafeBufferPointer { v in valueScratch.withUnsafeMutableBufferPointer { FormatKernels.narrow(v, into: $0) } }
        try append(sampleID: sampleID, indices: indices, valueBits: valueScratch, augmentation: augmentation)
    }

    /// Appends a record with float16 values.
    public func append(sampleID: UInt32, indices: [Int32], values: [Float16], augmentation: [UInt8] = []) throws {
        guard values.count == schema.k else { throw wrongK("values", values.count) }
        for j in 0..<values.count { valueScratch[j] = values[j].bitPattern }
        try append(sampleID: sampleID, indices: indices, valueBits: valueScratch, augmentation: augmentation)
    }

    /// Appends a record given float16 bit patterns (the form official files and other writers hold).
    public func append(sampleID: UInt32, indices: [Int32], valueBits: [UInt16], augmentation: [UInt8] = []) throws {
        let location = ShardLocation(file: path, record: recordCount, sampleID: sampleID)
        do {
            guard !finished else { throw ShardError(.invalidArgument, "the shard is already finished") }
            try check(sampleID: sampleID, indices: indices, valueBits: valueBits, augmentation: augmentation)
        } catch let error as ShardError {
            throw error.located(location)
        }
        indices.withUnsafeBufferPointer { i in
            valueBits.withUnsafeBufferPointer { v in
                augmentation.withUnsafeBytes { a in builder.append(sampleID: sampleID, augmentationCode: a, indices: i, valueBits: v) }
            }
        }
        seenSamples.insert(sampleID)
        recordCount += 1
        if builder.count == schema.recordsPerBlock { try flushBlock() }
    }

    private func wrongK(_ what: String, _ count: Int) -> ShardError {
        ShardError(.invalidArgument, "a record needs k = \(schema.k) \(what), got \(count)",
                   at: ShardLocation(file: path, record: recordCount))
    }

    private func check(sampleID: UInt32, indices: [Int32], valueBits: [UInt16], augmentation: [UInt8]) throws {
        guard indices.count == schema.k else { throw wrongK("indices", indices.count) }
        guard valueBits.count == schema.k else { throw wrongK("values", valueBits.count) }
        guard augmentation.count == schema.augmentation.codeSize else {
            throw ShardError(.badAugmentation, "augmentation code has \(augmentation.count) bytes; kind \(schema.augmentation.name) needs \(schema.augmentation.codeSize)")
        }
        if case let .params(h, w) = schema.augmentation {
            _ = try augmentation.withUnsafeBytes { try AugmentationParameters(code: $0, outputHeight: h, outputWidth: w) }
        }
        guard !seenSamples.contains(sampleID) else {
            throw ShardError(.duplicateSample, "sample \(sampleID) is already in this shard")
        }
        for j in 0..<indices.count { sortScratch[j] = indices[j] }
        sortScratch.sort()
        for j in 0..<sortScratch.count {
            guard sortScratch[j] >= 0, Int(sortScratch[j]) < schema.classes else {
                throw ShardError(.indexOutOfRange, "class index \(sortScratch[j]) is not in 0..<\(schema.classes)")
            }
            guard j == 0 || sortScratch[j] != sortScratch[j - 1] else {
                throw ShardError(.duplicateIndex, "class index \(sortScratch[j]) appears twice")
            }
        }
        if let problem = valueBits.withUnsafeBufferPointer({ RecordRules.checkValues($0, schema: schema) }) {
            throw problem
        }
    }

    private func flushBlock() throws {
        guard builder.count > 0 else { return }
        let bytes = builder.serialized(firstOrdinal: blocks.count * schema.recordsPerBlock, compressionLevel: compressionLevel)
        blocks.append(BlockExtent(offset: output.size, length: bytes.count))
        try output.write(bytes)
        builder.removeAll()
    }

    /// Writes the last block, the index and the footer, then moves the file to its final name.
    @discardableResult
    public func finish() throws -> ShardFileInfo {
        guard !finished else { throw ShardError(.invalidArgument, "the shard is already finished", at: ShardLocation(file: path)) }
        try flushBlock()
        let index = ShardFileLayout.indexBytes(blocks)
        let indexOffset = output.size
        try output.write(index)
        try output.write(ShardFileLayout.footerBytes(blockCount: blocks.count, indexOffset: indexOffset,
                                                     recordCount: recordCount, indexLength: index.count))
        try output.commit()
        finished = true
        return ShardFileInfo(path: path, records: recordCount, bytes: output.size, crc32: output.crc)
    }

    /// Makes the complete blocks written so far durable in `PATH.partial` (records of the unfinished block stay
    /// in memory): what a writer that stops to be resumed later calls.
    public func sync() throws { try output.sync() }

    /// Gives up: deletes the partial file.
    public func discard() {
        guard !finished else { return }
        finished = true
        output.discard()
    }
}
