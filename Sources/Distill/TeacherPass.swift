import Augment
import Foundation
import ImageStore
import ShardFormat
import Tensor
import TinyViT

/// The teacher pass: augmented views through a TinyViT teacher, top-K probabilities into shards.
public enum TeacherPass {
    public struct Options: Sendable {
        public var epochs: Int
        public var k: Int
        public var seed: UInt64
        public var batchSize: Int
        public var recipe: AugmentationRecipe
        /// Images with `HeldOutSplit.unitHash(key) < heldOutFraction` are not written (they are the
        /// evaluation split of every run).
        public var heldOutFraction: Double
        public var recordsPerBlock: Int

        public init(epochs: Int, k: Int, seed: UInt64 = 0, batchSize: Int = 32, recipe: AugmentationRecipe = .tinyViT,
                    heldOutFraction: Double = 0.2, recordsPerBlock: Int = 1024) {
            self.epochs = epochs; self.k = k; self.seed = seed; self.batchSize = batchSize; self.recipe = recipe
            self.heldOutFraction = heldOutFraction; self.recordsPerBlock = recordsPerBlock
        }
    }

    public struct Summary: Sendable {
        public var manifest: DatasetManifest
        public var records: Int
        public var shardBytes: Int
        public var seconds: Double
        public var bytesPerRecord: Double { records > 0 ? Double(shardBytes) / Double(records) : 0 }
    }

    /// Order of the training samples (store indices) in epoch `epoch`'s shard.
    public static func epochOrder(trainIndices: [Int], seed: UInt64, epoch: Int) -> [Int] {
        seededPermutation(trainIndices.count, seed: seed ^ (0xD157_0000_0000_0000 &+ UInt64(epoch))).map { trainIndices[$0] }
    }

    /// Runs the pass; `progress(done, total)` after each batch.
    public static func run(store: ImageStore, teacher: TinyViT, outputDirectory: String, options: Options,
                           teacherName: String = "tinyvit", progress: ((Int, Int) -> Void)? = nil) throws -> Summary {
        let start = Date()
        let config = teacher.configuration
        let size = config.imageSize
        guard options.epochs >= 1 else { throw DistillError("[invalid_argument] epochs must be ≥ 1") }
        guard options.batchSize >= 1 else { throw DistillError("[invalid_argument] batch must be ≥ 1") }
        guard (1...min(config.numClasses, ShardSchema.maxK)).contains(options.k) else {
            throw DistillError("[invalid_argument] k must be in 1...\(min(config.numClasses, ShardSchema.maxK)), got \(options.k)")
        }
        if store.classCount > 0, store.classCount != config.numClasses {
            throw DistillError("\(store.path): [mismatch] the store has \(store.classCount) classes, the teacher \(config.numClasses)")
        }
        let map = try SampleMap(store: store)
        let sampler = try AugmentationSampler(runSeed: options.seed, recipe: options.recipe, outputWidth: size, outputHeight: size)
        let augmenter = Augmenter(outputWidth: size, outputHeight: size)
        let split = store.split(heldOutFraction: options.heldOutFraction)
        var schema = ShardSchema(classes: config.numClasses, k: options.k, valueKind: .probability, sorted: true,
                                 augmentation: .params(outputHeight: size, outputWidth: size),
                                 recordsPerBlock: options.recordsPerBlock)
        schema.provenance["teacher"] = teacherName
        schema.provenance["augmentation_code_version"] = "1"
        schema.provenance["run_seed"] = String(options.seed)
        let writer = try DatasetWriter(directory: outputDirectory, keys: map.keys, schema: schema)
        let plane = 3 * size * size
        let total = options.epochs * split.train.count
        var done = 0
        var bytes = 0
        for epoch in 0..<options.epochs {
            let shard = try writer.shardWriter(epoch: epoch, rank: 0)
            let order = epochOrder(trainIndices: split.train, seed: options.seed, epoch: epoch)
            var position = 0
            while position < order.count {
                let batch = Array(order[position..<min(order.count, position + options.batchSize)])
                position += batch.count
                var codes: [[UInt8]] = []
                let images = Tensor(zeros: [batch.count, 3, size, size])
                for (row, index) in batch.enumerated() {
                    let parameters = try drawParameters(sampler: sampler, store: store, map: map, epoch: epoch, index: index)
                    codes.append(try parameters.encoded(outputHeight: size, outputWidth: size))
                    try ImagePreparation.render(parameters, store: store, index: index, map: map, augmenter: augmenter,
                                                into: UnsafeMutableBufferPointer(start: images.pointer + row * plane, count: plane))
                }
                let logits = try teacher.forward(images, context: ForwardContext(training: false, recordsGradients: false))
                let probabilities = Probabilities.softmax(logits.buffer, classes: config.numClasses)
                try probabilities.withUnsafeBufferPointer { p in
                    for (row, index) in batch.enumerated() {
                        let top = Probabilities.topK(UnsafeBufferPointer(rebasing: p[(row * config.numClasses)..<((row + 1) * config.numClasses)]),
                                                     k: options.k)
                        try shard.append(sampleID: map.sampleID[index], indices: top.indices, values: top.values, augmentation: codes[row])
                    }
                }
                done += batch.count
                progress?(done, total)
            }
            bytes += try writer.finish(shard).bytes
        }
        let manifest = try writer.finish()
        return Summary(manifest: manifest, records: total, shardBytes: bytes, seconds: Date().timeIntervalSince(start))
    }

    /// The parameters of store image `index` in `epoch` (partner sizes from the store when the recipe mixes).
    public static func drawParameters(sampler: AugmentationSampler, store: ImageStore, map: SampleMap, epoch: Int,
                                      index: Int) throws -> AugmentationParameters {
        let (w, h) = try store.size(at: index)
        return try sampler.parameters(epoch: UInt32(epoch), sample: map.sampleID[index], sourceWidth: w, sourceHeight: h,
                                      sampleCount: store.count) { partner in
            try store.size(at: map.storeIndex[Int(partner)])
        }
    }
}
