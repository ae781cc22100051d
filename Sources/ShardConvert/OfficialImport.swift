import ShardFormat

/// Options of ``OfficialImporter``.
public struct OfficialImportOptions: Sendable {
    /// C: the official files do not record it.
    public var classes: Int
    /// Written as provenance `teacher` ("unknown" when nil).
    public var teacher: String?
    public var recordsPerBlock: Int
    public var compressionLevel: Int

    public init(classes: Int, teacher: String? = nil, recordsPerBlock: Int = 1024, compressionLevel: Int = ShardWriter.defaultCompressionLevel) {
        self.classes = classes
        self.teacher = teacher
        self.recordsPerBlock = recordsPerBlock
        self.compressionLevel = compressionLevel
    }
}

/// Converts teacher logits in the official TinyViT layout (``OfficialLayout``) into a TinyShard dataset.
///
/// The key table is the union of every rank's keys. Each (epoch, rank) becomes one shard holding that
/// rank's records in their original order, augmentation kind `seed` (the official int32), values as
/// probabilities, sorted. A key found in several ranks of one epoch (the distributed sampler's padding)
/// keeps the lowest rank's record, the one the official reader uses; later copies (and a repeat within
/// one rank) are dropped and counted. Memory holds the keys and one block, never a whole values file.
public enum OfficialImporter {
    public static func importDataset(from source: String, to output: String, options: OfficialImportOptions,
                                     progress: ProgressHandler? = nil) throws -> ConversionSummary {
        let layout = try OfficialSource.discover(source)
        let k = layout.k
        guard (1...ShardSchema.maxClasses).contains(options.classes) else {
            throw ConversionError.argument("classes must be in 1...\(ShardSchema.maxClasses), got \(options.classes)")
        }
        guard k <= min(options.classes, ShardSchema.maxK) else {
            throw ConversionError.layout("K = \(k) must be at most min(classes = \(options.classes), \(ShardSchema.maxK))",
                                         file: layout.epochs[0].path)
        }

        // Pass 1: check every rank's files agree, and collect the keys.
        var allKeys = Set<String>()
        var totalRecords = 0
        var sourceBytes = 0
        for epoch in layout.epochs {
            for rank in epoch.ranks {
                let keys = try KeyLines.read(path: rank.keysPath)
                let records = try recordCount(rank, k: k, keys: keys.count)
                totalRecords += records
                sourceBytes += records * OfficialLayout.recordSize(k: k) + (InputFile.size(of: rank.keysPath) ?? 0)
                allKeys.formUnion(keys)
            }
        }
        guard allKeys.count <= Int(UInt32.max) else { throw ConversionError.argument("more than 2^32 keys") }
        let keyTable: KeyTable
        do {
            keyTable = try KeyTable(sorting: allKeys)
        } catch let error as ShardError {
            throw ConversionError("bad-keys", error.message, file: source)
        }
        allKeys = []

        // Pass 2: one shard per (epoch, rank), records streamed from the values file.
        let folder = try OutputFolder.forDataset(output)
        let provenance = ["source": "official-tinyvit", "writer": TinyShardVersion.writer,
                          "teacher": options.teacher ?? "unknown", "teacher_checksum": "",
                          "augmentation_code_version": "tinyvit-official-seed"]
        let schema = ShardSchema(classes: options.classes, k: k, valueKind: .probability, temperature: 1, sorted: true,
                                 augmentation: .seed, recordsPerBlock: options.recordsPerBlock, provenance: provenance)
        var written: [String] = [DatasetManifest.keysFileName]
        var current: ShardWriter?
        do {
            try schema.validate()
            let dataset = try DatasetWriter(directory: output, keys: keyTable, schema: schema,
                                            compressionLevel: options.compressionLevel)
            var throttle = ProgressThrottle(progress, total: totalRecords)
            var done = 0
            var dropped = 0
            var shardBytes = 0
            for epoch in layout.epochs {
                var seen = SampleSet(capacity: keyTable.count)
                for rank in epoch.ranks {
                    let writer = try dataset.shardWriter(epoch: epoch.epoch, rank: rank.rank)
                    current = writer
                    written.append(DatasetWriter.shardFileName(epoch: epoch.epoch, rank: rank.rank))
                    let stage = "epoch \(epoch.epoch) rank \(rank.rank)"
                    dropped += try copyRecords(rank, k: k, classes: options.classes, keys: keyTable, seen: &seen,
                                               into: writer) { count in
                        throttle.report(stage: stage, done: done + count)
                    }
                    done += (InputFile.size(of: rank.valuesPath) ?? 0) / OfficialLayout.recordSize(k: k)
                    shardBytes += try dataset.finish(writer).bytes
                    current = nil
                    throttle.report(stage: stage, done: done, force: true)
                }
            }
            written.append(DatasetManifest.fileName)
            let manifest = try dataset.finish()
            return ConversionSummary(directory: output, classes: options.classes, k: k, epochs: layout.epochs.map(\.epoch),
                                     shards: manifest.shards.count, keys: keyTable.count, recordsRead: totalRecords,
                                     recordsWritten: totalRecords - dropped, duplicatesDropped: dropped,
                                     sourceBytes: sourceBytes, shardBytes: shardBytes, keyTableBytes: manifest.keys.bytes)
        } catch {
            current?.discard()
            folder.clean(removing: written)
            throw error
        }
    }

    /// Records in a values file, checked against the size and the keys file's line count.
    static func recordCount(_ rank: OfficialRankFiles, k: Int, keys: Int) throws -> Int {
        let size = try InputFile(path: rank.valuesPath).size
        let recordSize = OfficialLayout.recordSize(k: k)
        guard size % recordSize == 0 else {
            throw ConversionError.layout("\(size) bytes is not a whole number of \(recordSize)-byte records (K = \(k)): record \(size / recordSize) is cut off after \(size % recordSize) bytes",
                                         file: rank.valuesPath, record: size / recordSize)
        }
        guard size / recordSize == keys else {
            throw ConversionError.layout("\(size / recordSize) records, but \(rank.keysPath) has \(keys) keys",
                                         file: rank.valuesPath, record: min(keys, size / recordSize))
        }
        return keys
    }

    /// Appends one rank's records, skipping keys `seen` already holds; returns how many were skipped.
    private static func copyRecords(_ rank: OfficialRankFiles, k: Int, classes: Int, keys: KeyTable, seen: inout SampleSet,
                                    into writer: ShardWriter, progress: (Int) -> Void) throws -> Int {
        let lines = try KeyLines.read(path: rank.keysPath)
        let count = try recordCount(rank, k: k, keys: lines.count)
        let file = try InputFile(path: rank.valuesPath)
        let recordSize = OfficialLayout.recordSize(k: k)
        let chunkRecords = max(1, (1 << 20) / recordSize)
        var chunk = [UInt8](repeating: 0, count: chunkRecords * recordSize)
        var indices = [Int32](repeating: 0, count: k)
        var bits = [UInt16](repeating: 0, count: k)
        var seed = [UInt8](repeating: 0, count: 4)
        var dropped = 0
        var record = 0
        while record < count {
            let n = min(chunkRecords, count - record)
            try chunk.withUnsafeMutableBytes { try file.readExactly(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<(n * recordSize)])) }
            for i in 0..<n {
                let ordinal = record + i
                let key = lines[ordinal]
                guard let id = keys.id(of: key) else {
                    throw ConversionError.layout("key changed while converting", file: rank.keysPath, line: ordinal + 1)
                }
                guard seen.insert(id) else { dropped += 1; continue }
                chunk.withUnsafeBytes { bytes in
                    let base = i * recordSize
                    for b in 0..<4 { seed[b] = bytes[base + b] }
                    for j in 0..<k {
                        indices[j] = Int32(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: base + 4 + 2 * j, as: UInt16.self)))
                        bits[j] = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: base + 4 + 2 * k + 2 * j, as: UInt16.self))
                    }
                }
                for j in 0..<k where Int(indices[j]) >= classes {
                    throw ConversionError(ShardErrorCode.indexOutOfRange.rawValue,
                                          "class index \(indices[j]) (entry \(j)) is not below classes = \(classes)",
                                          file: rank.valuesPath, record: ordinal, key: key)
                }
                do {
                    try writer.append(sampleID: id, indices: indices, valueBits: bits, augmentation: seed)
                } catch let error as ShardError where error.code != .io {
                    throw ConversionError(error, file: rank.valuesPath, record: ordinal, key: key)
                }
            }
            record += n
            progress(record)
        }
        return dropped
    }
}
