import ShardFormat

/// Options of ``OfficialImporter``.
public struct OfficialImportOptions: Sendable {
    /// C: the official files do not record it.
    public var classes: Int
    /// Written as provenance `teacher` ("unknown" when nil).
    public var teacher: String?
    /// Records per block; nil: `ShardSchema/defaultRecordsPerBlock(k:)` for the files' K.
    public var recordsPerBlock: Int?
    /// Threads that sort keys and encode blocks (at least 1). The output does not depend on it.
    public var threads: Int

    /// Options for a teacher of `classes` classes.
    public init(classes: Int, teacher: String? = nil, recordsPerBlock: Int? = nil, threads: Int = ShardWriter.defaultThreads) {
        self.classes = classes
        self.teacher = teacher
        self.recordsPerBlock = recordsPerBlock
        self.threads = threads
    }
}

/// Converts teacher logits in the official TinyViT layout (``OfficialLayout``) into a TinyShard dataset.
///
/// The key table is the union of every rank's keys. Each (epoch, rank) becomes one shard holding all of
/// that rank's records in their original order, augmentation kind `seed` (the official int32), values as
/// probabilities, sorted. A key that the distributed sampler padded into a second rank of an epoch is in
/// both ranks' shards, each with its own seed and values, so that ``OfficialExporter`` gives back the
/// official files byte for byte. Within one rank the official writer (`_Writer` in TinyViT's
/// `data/augmentation/manager.py`) writes a key once and skips it afterwards; a keys file that repeats a
/// key anyway was not made by it, and since a shard holds a sample once, such a repeat is dropped and
/// counted (``ConversionSummary/duplicatesDropped``).
///
/// Memory holds the key table (the keys' bytes and 4 bytes per key), one keys file or two at a time with
/// ~40 bytes per line while sorting, and a few blocks; never a `String` per key or a whole values file.
public enum OfficialImporter {
    /// Converts the official-layout folder `source` into a dataset in `output`; throws ``ConversionError`` for a folder
    /// that is not of the layout, a values file of the wrong size, or a record a shard cannot hold.
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
        guard options.threads >= 1 else { throw ConversionError.argument("threads must be at least 1, got \(options.threads)") }

        // Pass 1: check every rank's files agree, and collect the keys.
        let census = try OfficialKeyCensus(layout, threads: options.threads)
        let keys = census.keys
        let keyTable: KeyTable
        do {
            keyTable = try keys.table()
        } catch let error as ShardError {
            throw ConversionError("bad-keys", error.message, file: source)
        }

        // Pass 2: one shard per (epoch, rank), records streamed from the values file.
        let folder = try OutputFolder.forDataset(output)
        let provenance = ["source": "official-tinyvit", "writer": TinyShardVersion.writer,
                          "teacher": options.teacher ?? "unknown", "teacher_checksum": "",
                          "augmentation_code_version": "tinyvit-official-seed"]
        let schema = ShardSchema(classes: options.classes, k: k, valueKind: .probability, temperature: 1, sorted: true,
                                 augmentation: .seed, recordsPerBlock: options.recordsPerBlock ?? ShardSchema.defaultRecordsPerBlock(k: k),
                                 provenance: provenance)
        var written: [String] = [DatasetManifest.keysFileName]
        var current: ShardWriter?
        do {
            try schema.validate()
            let dataset = try DatasetWriter(directory: output, keys: keyTable, schema: schema)
            var throttle = ProgressThrottle(progress, total: census.records)
            var done = 0
            var counts = RankCopy.Counts()
            var shardBytes = 0
            // Each rank's keys are read and mapped to ids while the previous rank's blocks are encoded.
            let ranks = layout.epochs.flatMap(\.ranks)
            func rankKeys(_ i: Int) -> Pending<RankKeys>? {
                guard i < ranks.count else { return nil }
                let rank = ranks[i]
                return Pending(async: options.threads > 1) { try RankKeys(rank, k: k, table: keys) }
            }
            var next = rankKeys(0)
            var position = 0
            for epoch in layout.epochs {
                var inEpoch = SampleSet(capacity: keyTable.count)
                for rank in epoch.ranks {
                    let keysOfRank = try next!.value()
                    let lines = keysOfRank.lines
                    position += 1
                    next = rankKeys(position)
                    let writer = try dataset.shardWriter(epoch: epoch.epoch, rank: rank.rank)
                    writer.threads = options.threads
                    current = writer
                    written.append(DatasetWriter.shardFileName(epoch: epoch.epoch, rank: rank.rank))
                    let stage = "epoch \(epoch.epoch) rank \(rank.rank)"
                    let copy = RankCopy(rank: rank, lines: lines, ids: keysOfRank.ids, k: k, classes: options.classes)
                    counts.add(try copy.run(into: writer, inEpoch: &inEpoch) { throttle.report(stage: stage, done: done + $0) })
                    done += lines.count
                    shardBytes += try dataset.finish(writer).bytes
                    current = nil
                    throttle.report(stage: stage, done: done, force: true)
                }
            }
            written.append(DatasetManifest.fileName)
            let manifest = try dataset.finish()
            return ConversionSummary(directory: output, classes: options.classes, k: k, epochs: layout.epochs.map(\.epoch),
                                     shards: manifest.shards.count, keys: keyTable.count, recordsRead: census.records,
                                     recordsWritten: counts.written, duplicatesDropped: counts.repeats,
                                     keysInSeveralRanks: counts.inEarlierRank, sourceBytes: census.sourceBytes,
                                     shardBytes: shardBytes, keyTableBytes: manifest.keys.bytes)
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
}

/// Pass 1 of ``OfficialImporter``: every rank's keys and values files agree, and the union of all keys,
/// built one epoch at a time (each rank's keys sorted on their own, a piece at a time, and those new to
/// the union merged in).
struct OfficialKeyCensus {
    let keys: SortedKeys
    /// Lines of all keys files (records of all values files).
    let records: Int
    /// Bytes of all values and keys files.
    let sourceBytes: Int

    init(_ layout: OfficialSource, threads: Int) throws {
        var union = KeyRun()
        var records = 0
        var sourceBytes = 0
        for epoch in layout.epochs {
            // Ranks in parallel; the union is only read until the epoch's new keys are merged in.
            let known = union
            let ranks = try Parallel.map(epoch.ranks.count, threads: threads) { i -> (new: KeyRun, records: Int, bytes: Int) in
                let rank = epoch.ranks[i]
                let lines = try KeyLines(path: rank.keysPath)
                let count = try OfficialImporter.recordCount(rank, k: layout.k, keys: lines.count)
                let pieces = KeySort.pieces(lines).map { KeyRun.distinct(lines, sortedLines: KeySort.sortedLines(lines, $0)) }
                var keys = try KeyRun.union(pieces, threads: 1)
                if known.count > 0 { keys = KeyRun.subtracting(keys, known) }
                return (keys, count, count * OfficialLayout.recordSize(k: layout.k) + lines.text.count)
            }
            records += ranks.reduce(0) { $0 + $1.records }
            sourceBytes += ranks.reduce(0) { $0 + $1.bytes }
            union = try KeyRun.union([union] + ranks.map(\.new), threads: threads)
        }
        guard union.count <= Int(UInt32.max) else { throw ConversionError.argument("more than 2^32 keys") }
        keys = try union.joined()
        self.records = records
        self.sourceBytes = sourceBytes
    }
}

/// One rank's keys file and the sample id of each of its lines.
struct RankKeys {
    let lines: KeyLines
    let ids: LineIDs

    /// Reads and checks the keys file (against the values file's size too) and maps its lines to ids.
    init(_ rank: OfficialRankFiles, k: Int, table: SortedKeys) throws {
        lines = try KeyLines(path: rank.keysPath)
        _ = try OfficialImporter.recordCount(rank, k: k, keys: lines.count)
        ids = try table.ids(of: lines)
    }
}

/// Pass 2 of ``OfficialImporter`` for one (epoch, rank): its records, streamed from the values file in
/// chunks, appended in file order under the ids of their keys.
struct RankCopy {
    struct Counts {
        var written = 0
        /// Lines that repeat a key of the same keys file (dropped).
        var repeats = 0
        /// Records whose key an earlier rank of the epoch also has (kept).
        var inEarlierRank = 0

        mutating func add(_ other: Counts) {
            written += other.written
            repeats += other.repeats
            inEarlierRank += other.inEarlierRank
        }
    }

    let rank: OfficialRankFiles
    let lines: KeyLines
    let ids: LineIDs
    let k: Int
    let classes: Int

    /// Appends the records; `inEpoch` holds the epoch's keys seen so far (in earlier ranks), and gets
    /// this rank's. `progress` gets the records read so far.
    func run(into writer: ShardWriter, inEpoch: inout SampleSet, progress: (Int) -> Void) throws -> Counts {
        let file = try InputFile(path: rank.valuesPath)
        let recordSize = OfficialLayout.recordSize(k: k)
        let count = lines.count
        let chunkRecords = max(1, (1 << 20) / recordSize)
        var chunk = [UInt8](repeating: 0, count: chunkRecords * recordSize)
        var indices = [Int32](repeating: 0, count: k)
        var bits = [UInt16](repeating: 0, count: k)
        var counts = Counts(repeats: ids.repeats)
        var record = 0
        while record < count {
            let n = min(chunkRecords, count - record)
            try chunk.withUnsafeMutableBytes { try file.readExactly(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<(n * recordSize)])) }
            try chunk.withUnsafeBytes { bytes in
                try indices.withUnsafeMutableBufferPointer { indices in
                    try bits.withUnsafeMutableBufferPointer { bits in
                        for i in 0..<n {
                            let ordinal = record + i
                            let id = ids.ids[ordinal]
                            guard id != LineIDs.repeated else { continue }
                            let base = i * recordSize
                            for j in 0..<k {
                                indices[j] = Int32(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: base + 4 + 2 * j, as: UInt16.self)))
                                bits[j] = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: base + 4 + 2 * k + 2 * j, as: UInt16.self))
                            }
                            for j in 0..<k where Int(indices[j]) >= classes {
                                throw ConversionError(ShardErrorCode.indexOutOfRange.rawValue,
                                                      "class index \(indices[j]) (entry \(j)) is not below classes = \(classes)",
                                                      file: rank.valuesPath, record: ordinal, key: lines.key(ordinal))
                            }
                            do {
                                try writer.append(sampleID: id, indices: UnsafeBufferPointer(indices), valueBits: UnsafeBufferPointer(bits),
                                                  augmentation: UnsafeRawBufferPointer(rebasing: bytes[base..<(base + 4)]))
                            } catch let error as ShardError where error.code != .io {
                                throw ConversionError(error, file: rank.valuesPath, record: ordinal, key: lines.key(ordinal))
                            }
                            counts.written += 1
                            if !inEpoch.insert(id) { counts.inEarlierRank += 1 }
                        }
                    }
                }
            }
            record += n
            progress(record)
        }
        return counts
    }
}
