import ShardConvert
import ShardFormat

/// Options of ``DemoDataset``.
public struct DemoOptions: Sendable {
    /// Records per shard. The demo has `recordsPerShard × ranks` images; each epoch shows every image
    /// once, split over the ranks.
    public var recordsPerShard: Int
    /// Epochs to write; each gets its own augmentation draws.
    public var epochs: Int
    /// Ranks per epoch: one shard each.
    public var ranks: Int
    /// C, the synthetic teacher's classes.
    public var classes: Int
    /// K, the entries stored per record (≤ `classes`).
    public var k: Int
    /// R, records per block of every shard.
    public var recordsPerBlock: Int
    /// Seed of every random draw: the same seed gives the same bytes.
    public var seed: UInt64
    /// Side of the square training view in pixels (the `params` output size).
    public var outputSize: Int

    /// Options with the defaults of `tinyshard demo`: 2 epochs × 2 ranks of 2000 records, 1000 classes, top-10.
    public init(recordsPerShard: Int = 2000, epochs: Int = 2, ranks: Int = 2, classes: Int = 1000, k: Int = 10,
                recordsPerBlock: Int = 1024, seed: UInt64 = 0, outputSize: Int = 224) {
        self.recordsPerShard = recordsPerShard
        self.epochs = epochs
        self.ranks = ranks
        self.classes = classes
        self.k = k
        self.recordsPerBlock = recordsPerBlock
        self.seed = seed
        self.outputSize = outputSize
    }
}

/// Writes a synthetic dataset: a ``SyntheticTeacher``'s top-K for images seen under
/// ``SyntheticAugmentation`` parameters (kind `params`), one shard per (epoch, rank). Deterministic:
/// the same options give the same bytes.
public enum DemoDataset {
    /// Writes the demo dataset to the folder `output` (keys, shards, manifest) and returns what it wrote; throws
    /// ShardConvert's `ConversionError` or `ShardError` when the folder cannot be written.
    public static func write(to output: String, options: DemoOptions, progress: ProgressHandler? = nil) throws
        -> ConversionSummary
    {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw ConversionError.argument(message) } }
        try check(options.recordsPerShard >= 1, "records must be at least 1")
        try check(options.epochs >= 1, "epochs must be at least 1")
        try check(options.ranks >= 1, "ranks must be at least 1")
        let (images, overflow) = options.recordsPerShard.multipliedReportingOverflow(by: options.ranks)
        try check(!overflow && images <= Int(UInt32.max), "records × ranks must be below 2^32")
        try check((1...ShardSchema.maxClasses).contains(options.classes), "classes must be in 1...\(ShardSchema.maxClasses)")
        try check((1...min(options.classes, ShardSchema.maxK)).contains(options.k), "k must be in 1...min(classes, \(ShardSchema.maxK))")
        try check((16...4096).contains(options.outputSize), "output size must be in 16...4096")
        let schema = ShardSchema(classes: options.classes, k: options.k, valueKind: .probability, temperature: 1, sorted: true,
                                 augmentation: .params(outputHeight: options.outputSize, outputWidth: options.outputSize),
                                 recordsPerBlock: options.recordsPerBlock,
                                 provenance: ["source": "demo", "teacher": "synthetic-demo", "teacher_checksum": "",
                                              "augmentation_code_version": "tinyshard-synthetic-1",
                                              "writer": TinyShardVersion.writer])
        do { try schema.validate() } catch let error as ShardError { throw ConversionError.argument(error.message) }

        var random = SeededGenerator(seed: options.seed)
        // Keys zero-padded so that their byte order is their numeric order: sample id = image number.
        let width = max(7, String(images - 1).count)
        let keys = try KeyTable(sorting: (0..<images).lazy.map { number in
            let digits = String(number)
            return "img" + String(repeating: "0", count: width - digits.count) + digits
        })
        var trueClass = [Int32](repeating: 0, count: images)
        var sourceSize = [UInt32](repeating: 0, count: images)  // width << 16 | height
        for i in 0..<images {
            trueClass[i] = Int32(random.integer(0...(options.classes - 1)))
            sourceSize[i] = UInt32(random.integer(256...640)) << 16 | UInt32(random.integer(256...640))
        }

        let folder = try OutputFolder.forDataset(output)
        var written = [DatasetManifest.keysFileName]
        var current: ShardWriter?
        do {
            let dataset = try DatasetWriter(directory: output, keys: keys, schema: schema)
            let augmentation = SyntheticAugmentation(outputHeight: options.outputSize, outputWidth: options.outputSize)
            var teacher = SyntheticTeacher(classes: options.classes, k: options.k)
            let total = images * options.epochs
            var throttle = ProgressThrottle(progress, total: total, interval: 1024)
            var done = 0
            var shardBytes = 0
            var order = Array(0..<images)
            for epoch in 0..<options.epochs {
                random.shuffle(&order)
                for rank in 0..<options.ranks {
                    let writer = try dataset.shardWriter(epoch: epoch, rank: rank)
                    current = writer
                    written.append(DatasetWriter.shardFileName(epoch: epoch, rank: rank))
                    let stage = "epoch \(epoch) rank \(rank)"
                    for position in stride(from: rank, to: images, by: options.ranks) {
                        let image = order[position]
                        let partner = random.integer(0...(images - 1))
                        let parameters = augmentation.parameters(
                            sourceWidth: Int(sourceSize[image] >> 16), sourceHeight: Int(sourceSize[image] & 0xFFFF),
                            partner: UInt32(partner), partnerWidth: Int(sourceSize[partner] >> 16),
                            partnerHeight: Int(sourceSize[partner] & 0xFFFF), using: &random)
                        let (indices, bits) = teacher.predict(trueClass: Int(trueClass[image]), partnerClass: Int(trueClass[partner]),
                                                              lambda: parameters.mix?.lambda ?? 1, using: &random)
                        let code = try parameters.encoded(outputHeight: options.outputSize, outputWidth: options.outputSize)
                        try writer.append(sampleID: UInt32(image), indices: indices, valueBits: bits, augmentation: code)
                        done += 1
                        throttle.report(stage: stage, done: done)
                    }
                    shardBytes += try dataset.finish(writer).bytes
                    current = nil
                    throttle.report(stage: stage, done: done, force: true)
                }
            }
            written.append(DatasetManifest.fileName)
            let manifest = try dataset.finish()
            return ConversionSummary(directory: output, classes: options.classes, k: options.k, epochs: Array(0..<options.epochs),
                                     shards: manifest.shards.count, keys: keys.count, recordsRead: done, recordsWritten: done,
                                     duplicatesDropped: 0, sourceBytes: 0, shardBytes: shardBytes, keyTableBytes: manifest.keys.bytes)
        } catch {
            current?.discard()
            folder.clean(removing: written)
            throw error
        }
    }
}

extension SeededGenerator {
    /// Fisher–Yates with this generator (the standard library's shuffle does not promise its algorithm).
    mutating func shuffle<T>(_ array: inout [T]) {
        guard array.count > 1 else { return }
        for i in stride(from: array.count - 1, to: 0, by: -1) {
            array.swapAt(i, integer(0...i))
        }
    }
}
