import ShardFormat

/// What the rows of a dense teacher-output array are.
public enum NpyValueKind: String, Sendable, CaseIterable {
    /// Raw logits: converted with softmax(logits / temperature) before top-K values are stored.
    case logits
    /// Softmax outputs already: stored as they are (rounded to float16).
    case probabilities
}

/// Options of ``NpyImporter``.
public struct NpyImportOptions: Sendable {
    /// float32 [N, C] teacher outputs.
    public var outputs: String
    /// N keys, one per line, in row order.
    public var keys: String
    /// Whether the rows are logits or probabilities.
    public var kind: NpyValueKind
    /// Softmax temperature for logits (recorded in the header for probabilities too).
    public var temperature: Double
    /// K, the top entries kept per row (1...C).
    public var k: Int
    /// How the rows' augmentation is stored; `.none` needs no `augmentationCodes`.
    public var augmentation: AugmentationKind
    /// uint8 [N, A] codes for the augmentation kind, or int32 [N] seeds for kind `seed`.
    public var augmentationCodes: String?
    /// The epoch written into the shard's header and name.
    public var epoch: Int
    /// The rank written into the shard's header and name.
    public var rank: Int
    /// Written as provenance `teacher`.
    public var teacher: String?
    /// R, records per block (default `ShardSchema/defaultRecordsPerBlock(k:)`).
    public var recordsPerBlock: Int

    /// Options for `outputs` and `keys`; a nil `recordsPerBlock` takes the default for `k`.
    public init(outputs: String, keys: String, kind: NpyValueKind, temperature: Double = 1, k: Int,
                augmentation: AugmentationKind = .none, augmentationCodes: String? = nil, epoch: Int = 0, rank: Int = 0,
                teacher: String? = nil, recordsPerBlock: Int? = nil) {
        self.outputs = outputs
        self.keys = keys
        self.kind = kind
        self.temperature = temperature
        self.k = k
        self.augmentation = augmentation
        self.augmentationCodes = augmentationCodes
        self.epoch = epoch
        self.rank = rank
        self.teacher = teacher
        self.recordsPerBlock = recordsPerBlock ?? ShardSchema.defaultRecordsPerBlock(k: k)
    }
}

/// Converts dense teacher outputs saved with numpy into a one-shard dataset: per row, the top-K classes
/// (largest first, ties by lower class index) and their probabilities. Rows are streamed a chunk at a
/// time; memory holds the keys and one chunk.
public enum NpyImporter {
    /// Converts `options.outputs` into a dataset in the folder `output`; throws ``ConversionError`` for a file of the
    /// wrong dtype or shape, a key count that differs from N, a repeated key or a value a shard cannot hold.
    public static func importDataset(_ options: NpyImportOptions, to output: String, progress: ProgressHandler? = nil) throws
        -> ConversionSummary
    {
        let outputs = try NpyReader(path: options.outputs)
        try outputs.require(.float32, shape: [nil, nil], what: "teacher outputs")
        let n = outputs.rows
        let classes = outputs.rowLength
        let k = options.k
        guard (1...ShardSchema.maxClasses).contains(classes) else {
            throw ConversionError.npy("\(classes) classes is outside 1...\(ShardSchema.maxClasses)", file: options.outputs)
        }
        guard (1...min(classes, ShardSchema.maxK)).contains(k) else {
            throw ConversionError.argument("k must be in 1...min(classes = \(classes), \(ShardSchema.maxK)), got \(k)")
        }
        guard options.temperature.isFinite, options.temperature > 0 else {
            throw ConversionError.argument("temperature must be a positive number, got \(options.temperature)")
        }
        let lines = try KeyLines(path: options.keys).keys
        guard lines.count == n else {
            throw ConversionError("bad-keys", "\(lines.count) keys, but \(options.outputs) has \(n) rows", file: options.keys)
        }
        var firstLine: [String: Int] = [:]
        for (line, key) in lines.enumerated() {
            if let first = firstLine.updateValue(line + 1, forKey: key) {
                throw ConversionError("bad-keys", "key '\(key)' is also on line \(first); each row needs its own key",
                                      file: options.keys, line: line + 1)
            }
        }
        firstLine = [:]
        let codes = try augmentationReader(options, rows: n)
        let keyTable: KeyTable
        do {
            keyTable = try KeyTable(sorting: lines)
        } catch let error as ShardError {
            throw ConversionError("bad-keys", error.message, file: options.keys)
        }

        var provenance = ["source": "npy", "writer": TinyShardVersion.writer, "teacher": options.teacher ?? "unknown",
                          "teacher_checksum": ""]
        if options.augmentation != .none { provenance["augmentation_code_version"] = options.augmentation == .seed ? "seed" : "params-v1" }
        let schema = ShardSchema(classes: classes, k: k, valueKind: .probability, temperature: options.temperature,
                                 sorted: true, augmentation: options.augmentation, recordsPerBlock: options.recordsPerBlock,
                                 provenance: provenance)
        do {
            var check = schema
            check.epoch = options.epoch
            check.rank = options.rank
            try check.validate()
        } catch let error as ShardError {
            throw ConversionError.argument(error.message)
        }
        let folder = try OutputFolder.forDataset(output)
        let shardName = DatasetWriter.shardFileName(epoch: options.epoch, rank: options.rank)
        var writer: ShardWriter?
        do {
            let dataset = try DatasetWriter(directory: output, keys: keyTable, schema: schema)
            let shard = try dataset.shardWriter(epoch: options.epoch, rank: options.rank)
            writer = shard
            try copyRows(outputs, codes: codes, options: options, lines: lines, keys: keyTable, into: shard, progress: progress)
            let info = try dataset.finish(shard)
            writer = nil
            let manifest = try dataset.finish()
            let sourceBytes = (InputFile.size(of: options.outputs) ?? 0)
                + (options.augmentationCodes.flatMap(InputFile.size(of:)) ?? 0)
            return ConversionSummary(directory: output, classes: classes, k: k, epochs: [options.epoch], shards: 1,
                                     keys: keyTable.count, recordsRead: n, recordsWritten: n, duplicatesDropped: 0,
                                     sourceBytes: sourceBytes, shardBytes: info.bytes, keyTableBytes: manifest.keys.bytes)
        } catch {
            writer?.discard()
            folder.clean(removing: [DatasetManifest.keysFileName, shardName, DatasetManifest.fileName])
            throw error
        }
    }

    /// The augmentation-code reader, checked against the kind and the row count; nil for kind `none`.
    private static func augmentationReader(_ options: NpyImportOptions, rows: Int) throws -> NpyReader? {
        guard let path = options.augmentationCodes else {
            guard options.augmentation == .none else {
                throw ConversionError.argument("augmentation kind \(options.augmentation.name) needs a codes file")
            }
            return nil
        }
        guard options.augmentation != .none else {
            throw ConversionError.argument("a codes file was given but the augmentation kind is none")
        }
        let reader = try NpyReader(path: path)
        let size = options.augmentation.codeSize
        if options.augmentation == .seed && reader.dtype == .int32 {
            try reader.require(.int32, shape: [rows], what: "seeds")
        } else {
            try reader.require(.uint8, shape: [rows, size], what: "\(options.augmentation.name) codes")
        }
        return reader
    }

    private static func copyRows(_ outputs: NpyReader, codes: NpyReader?, options: NpyImportOptions, lines: [String],
                                 keys: KeyTable, into writer: ShardWriter, progress: ProgressHandler?) throws {
        let n = outputs.rows
        let classes = outputs.rowLength
        let k = options.k
        let codeSize = options.augmentation.codeSize
        let chunkRows = max(1, (4 << 20) / (4 * classes))
        var throttle = ProgressThrottle(progress, total: n)
        var rowsBuffer: [Float] = []
        var seeds: [Int32] = []
        var codeBytes: [UInt8] = []
        var indices = [Int32](repeating: 0, count: k)
        var probabilities = [Double](repeating: 0, count: k)
        var code = [UInt8](repeating: 0, count: codeSize)
        var start = 0
        while start < n {
            let count = min(chunkRows, n - start)
            try outputs.readRows(count, into: &rowsBuffer)
            if let codes {
                if codes.dtype == .int32 { try codes.readRows(count, into: &seeds) } else { try codes.readRows(count, into: &codeBytes) }
            }
            for i in 0..<count {
                let row = start + i
                let key = lines[row]
                func fail(_ code: ShardErrorCode, _ message: String) -> ConversionError {
                    ConversionError(code.rawValue, message, file: options.outputs, record: row, key: key)
                }
                try rowsBuffer.withUnsafeBufferPointer { all in
                    let values = UnsafeBufferPointer(rebasing: all[(i * classes)..<((i + 1) * classes)])
                    if let bad = values.firstIndex(where: { !$0.isFinite }) {
                        throw fail(.badValue, "class \(bad) is \(values[bad])")
                    }
                    indices.withUnsafeMutableBufferPointer { TopK.select(values, into: $0) }
                }
                switch options.kind {
                case .logits:
                    rowsBuffer.withUnsafeBufferPointer { all in
                        indices.withUnsafeBufferPointer { selected in
                            probabilities.withUnsafeMutableBufferPointer {
                                TopK.softmax(UnsafeBufferPointer(rebasing: all[(i * classes)..<((i + 1) * classes)]),
                                             temperature: options.temperature, at: selected, into: $0)
                            }
                        }
                    }
                case .probabilities:
                    for j in 0..<k { probabilities[j] = Double(rowsBuffer[i * classes + Int(indices[j])]) }
                }
                let bits = probabilities.map { Float16($0).bitPattern }
                if codeSize > 0 {
                    if codes?.dtype == .int32 {
                        let seed = UInt32(bitPattern: seeds[i])
                        for b in 0..<4 { code[b] = UInt8(truncatingIfNeeded: seed >> (8 * UInt32(b))) }
                    } else {
                        for b in 0..<codeSize { code[b] = codeBytes[i * codeSize + b] }
                    }
                }
                guard let id = keys.id(of: key) else { throw fail(.badKeys, "key is missing from the key table") }
                do {
                    try writer.append(sampleID: id, indices: indices, valueBits: bits, augmentation: code)
                } catch let error as ShardError where error.code != .io {
                    let file = error.code == .badAugmentation ? (options.augmentationCodes ?? options.outputs) : options.outputs
                    throw ConversionError(error, file: file, record: row, key: key)
                }
            }
            start += count
            throttle.report(stage: "rows", done: start, force: start == n)
        }
    }
}
