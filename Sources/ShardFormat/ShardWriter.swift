import Foundation

/// What a finished shard is, as the dataset manifest records it.
public struct ShardFileInfo: Sendable, Equatable {
    /// Where the shard was written (its final name).
    public var path: String
    /// N, the records written.
    public var records: Int
    /// The file's size in bytes.
    public var bytes: Int
    /// The file's CRC-32.
    public var crc32: UInt32
}

/// Streams records into a new shard.
///
/// Records are checked against the schema as they arrive (so an error names the record) and collected
/// one block at a time; full blocks are encoded on up to ``threads`` threads and written in order as
/// soon as each and every earlier block is encoded. The bytes do not depend on the thread count. Memory
/// stays bounded: at most 2 × threads + 1 blocks, plus 12 bytes per block and about one bit per sample
/// id for the duplicate check. The file is written as `PATH.partial` and renamed to `PATH` by
/// ``finish()``: a crash leaves no file under the final name, and `tinyshard recover` can salvage the
/// complete blocks of the partial one.
public final class ShardWriter {
    /// The header written at the start of the shard.
    public let schema: ShardSchema
    /// The final path; until the writer finishes, the bytes are at `path + ".partial"`.
    public var path: String { output.finalPath }
    /// Records appended so far.
    public private(set) var recordCount = 0

    private let output: AtomicFileOutput
    private let pipeline: BlockPipeline
    private var builder: BlockRecords
    private var seenSamples = SampleIDSet()
    private var indexCheck: ClassIndexCheck
    private var finished = false
    private var valueScratch: [UInt16]

    /// The zlib level callers pass. The section codecs (zlib's RLE and Huffman-only strategies, see
    /// `SectionCodecs`) write the same bytes at every level, so it no longer changes the output; it is
    /// still checked, for the callers that pass one (``DatasetWriter``).
    public static let defaultCompressionLevel = 6

    /// The machine's active processor count: what ``threads`` starts at.
    public static var defaultThreads: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// Threads that encode blocks (at least 1; 1 encodes on the appending thread). Takes effect from the
    /// next full block; the file's bytes are the same for every value.
    public var threads: Int {
        get { pipeline.threads }
        set { pipeline.threads = newValue }
    }

    /// - Parameters:
    ///   - path: the final path; the bytes go to `path + ".partial"` until the writer finishes.
    ///   - schema: the shard's header; checked against the format's limits.
    ///   - compressionLevel: zlib level 1...9 (checked; the bytes do not depend on it).
    ///   - threads: block-encoding threads, at least 1.
    public convenience init(path: String, schema: ShardSchema, compressionLevel: Int = ShardWriter.defaultCompressionLevel,
                            threads: Int = ShardWriter.defaultThreads) throws {
        try Self.checkArguments(schema: schema, compressionLevel: compressionLevel, threads: threads)
        let output = try formatIO { try AtomicFileOutput(path: path) }
        do {
            let header = try ShardFileLayout.headerBytes(schema)
            try formatIO { try output.write(header) }
        } catch {
            output.discard()
            throw error
        }
        self.init(schema: schema, output: output, threads: threads, prefix: .empty)
    }

    /// Continues the unfinished shard at `path` (its `PATH.partial`): keeps `prefix` (found by
    /// ``PartialShardPrefix/scan(path:schema:expectedSampleID:)``), cuts the file after it, and appends the
    /// next record at ordinal `prefix.records`. The finished file is byte for byte the one an uninterrupted
    /// writer fed the same records makes. An empty prefix starts the shard anew.
    public convenience init(continuing prefix: PartialShardPrefix, path: String, schema: ShardSchema,
                            compressionLevel: Int = ShardWriter.defaultCompressionLevel,
                            threads: Int = ShardWriter.defaultThreads) throws {
        guard prefix.keptBytes > 0 else {
            try self.init(path: path, schema: schema, compressionLevel: compressionLevel, threads: threads)
            return
        }
        try Self.checkArguments(schema: schema, compressionLevel: compressionLevel, threads: threads)
        self.init(schema: schema, output: try formatIO { try AtomicFileOutput(resuming: path, keeping: prefix.keptBytes) },
                  threads: threads, prefix: prefix)
    }

    private static func checkArguments(schema: ShardSchema, compressionLevel: Int, threads: Int) throws {
        try schema.validate()
        guard (1...9).contains(compressionLevel) else {
            throw ShardError(.invalidArgument, "zlib compression level must be 1...9, got \(compressionLevel)")
        }
        guard threads >= 1 else { throw ShardError(.invalidArgument, "threads must be at least 1, got \(threads)") }
    }

    /// A writer over an output that already holds this schema's header and `prefix`'s blocks.
    private init(schema: ShardSchema, output: AtomicFileOutput, threads: Int, prefix: PartialShardPrefix) {
        self.schema = schema
        valueScratch = [UInt16](repeating: 0, count: schema.k)
        indexCheck = ClassIndexCheck(classes: schema.classes)
        self.output = output
        pipeline = BlockPipeline(schema: schema, output: output, threads: threads, existingBlocks: prefix.blocks)
        builder = pipeline.freshRecords()
        recordCount = prefix.records
        for id in prefix.sampleIDs { seenSamples.insert(id) }
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
        try indices.withUnsafeBufferPointer { i in
            try valueBits.withUnsafeBufferPointer { v in
                try augmentation.withUnsafeBytes { try append(sampleID: sampleID, indices: i, valueBits: v, augmentation: $0) }
            }
        }
    }

    /// Appends a record from buffers: the same checks as the array forms, without an array per record
    /// (for converters of millions of records).
    public func append(sampleID: UInt32, indices: UnsafeBufferPointer<Int32>, valueBits: UnsafeBufferPointer<UInt16>,
                       augmentation: UnsafeRawBufferPointer) throws {
        do {
            guard !finished else { throw ShardError(.invalidArgument, "the shard is already finished") }
            try check(sampleID: sampleID, indices: indices, valueBits: valueBits, augmentation: augmentation)
        } catch let error as ShardError {
            throw error.located(ShardLocation(file: path, record: recordCount, sampleID: sampleID))
        }
        builder.append(sampleID: sampleID, augmentationCode: augmentation, indices: indices, valueBits: valueBits)
        seenSamples.insert(sampleID)
        recordCount += 1
        if builder.count == schema.recordsPerBlock { try flushBlock() }
    }

    private func wrongK(_ what: String, _ count: Int) -> ShardError {
        ShardError(.invalidArgument, "a record needs k = \(schema.k) \(what), got \(count)",
                   at: ShardLocation(file: path, record: recordCount))
    }

    private func check(sampleID: UInt32, indices: UnsafeBufferPointer<Int32>, valueBits: UnsafeBufferPointer<UInt16>,
                       augmentation: UnsafeRawBufferPointer) throws {
        guard indices.count == schema.k else { throw wrongK("indices", indices.count) }
        guard valueBits.count == schema.k else { throw wrongK("values", valueBits.count) }
        guard augmentation.count == schema.augmentation.codeSize else {
            throw ShardError(.badAugmentation, "augmentation code has \(augmentation.count) bytes; kind \(schema.augmentation.name) needs \(schema.augmentation.codeSize)")
        }
        if case let .params(h, w) = schema.augmentation {
            _ = try AugmentationParameters(code: augmentation, outputHeight: h, outputWidth: w)
        }
        guard !seenSamples.contains(sampleID) else {
            throw ShardError(.duplicateSample, "sample \(sampleID) is already in this shard")
        }
        if let problem = indexCheck.problem(indices) { throw problem }
        if let problem = RecordRules.checkValues(valueBits, schema: schema) { throw problem }
    }

    private func flushBlock() throws {
        guard builder.count > 0 else { return }
        let full = builder
        builder = pipeline.freshRecords()
        try pipeline.submit(full)
    }

    /// Writes the last block, the index and the footer, then moves the file to its final name.
    @discardableResult
    public func finish() throws -> ShardFileInfo {
        guard !finished else { throw ShardError(.invalidArgument, "the shard is already finished", at: ShardLocation(file: path)) }
        try flushBlock()
        let blocks = try pipeline.drain()
        let index = ShardFileLayout.indexBytes(blocks)
        let indexOffset = output.size
        let footer = ShardFileLayout.footerBytes(blockCount: blocks.count, indexOffset: indexOffset,
                                                 recordCount: recordCount, indexLength: index.count)
        try formatIO {
            try output.write(index)
            try output.write(footer)
            try output.commit()
        }
        finished = true
        return ShardFileInfo(path: path, records: recordCount, bytes: output.size, crc32: output.crc)
    }

    /// Makes every complete block appended so far durable in `PATH.partial` (records of the unfinished block
    /// stay in memory): what a writer that stops to be resumed later calls. Waits for blocks still encoding.
    public func sync() throws {
        _ = try pipeline.drain()
        try formatIO { try output.sync() }
    }

    /// Gives up: stops the encoding threads and deletes the partial file.
    public func discard() {
        guard !finished else { return }
        finished = true
        pipeline.stop()
        output.discard()
    }
}

/// Spec §2's rules on one record's class indices — each in 0..<C, no two equal — in O(K) with a bitmap
/// of C bits (clear between records) instead of a sort per record. It reports what a scan of the sorted
/// indices finds first: a negative index, else the smallest repeated one, else the smallest ≥ C.
struct ClassIndexCheck {
    private let classes: Int
    private var seen: [UInt64]

    init(classes: Int) {
        self.classes = classes
        seen = [UInt64](repeating: 0, count: (classes + 63) / 64)
    }

    mutating func problem(_ indices: UnsafeBufferPointer<Int32>) -> ShardError? {
        var smallest = Int32.max
        var smallestTooLarge: Int32?
        for index in indices {
            smallest = min(smallest, index)
            if Int(index) >= classes { smallestTooLarge = min(smallestTooLarge ?? index, index) }
        }
        if smallest < 0 { return outOfRange(smallest) }
        var repeated = Int32.max
        seen.withUnsafeMutableBufferPointer { seen in
            for index in indices where Int(index) < classes {
                let word = Int(index >> 6)
                let bit = UInt64(1) << UInt64(index & 63)
                if seen[word] & bit != 0 { repeated = min(repeated, index) }
                seen[word] |= bit
            }
            for index in indices where Int(index) < classes { seen[Int(index >> 6)] = 0 }
        }
        if repeated != Int32.max { return ShardError(.duplicateIndex, "class index \(repeated) appears twice") }
        if let smallestTooLarge { return outOfRange(smallestTooLarge) }
        return nil
    }

    private func outOfRange(_ index: Int32) -> ShardError {
        ShardError(.indexOutOfRange, "class index \(index) is not in 0..<\(classes)")
    }
}
