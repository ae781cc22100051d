import Augment
import Foundation
import ImageStore
import ShardFormat
import Tensor
import TinyViT

/// The teacher pass: augmented views through a TinyViT teacher, top-K probabilities into shards.
///
/// A pass survives what multi-day passes meet (Spec/PASS.md): it fingerprints its options in `pass.json`,
/// commits the manifest after every epoch all ranks finished, stops on a request (a signal) after the batch
/// in hand with a tail of the unfinished block, and resumes (``Options/resume``) to the bytes an
/// uninterrupted pass writes.
public enum TeacherPass {
    /// The writer version in a pass's fingerprint: another version may encode the same records differently.
    public static let writerVersion = "0.2.0"

    /// What a pass computes and how it writes it; recorded in `pass.json`, so a resume must pass the same values.
    public struct Options: Sendable {
        /// Epochs of augmented views to compute.
        public var epochs: Int
        /// K, the top probabilities stored per record.
        public var k: Int
        /// The augmentation seed: a student run with the same seed and recipe draws the same views.
        public var seed: UInt64
        /// Images per teacher forward (per rank).
        public var batchSize: Int
        /// Recorded in the shards' provenance by name and SHA-256 of its canonical JSON.
        public var recipe: NamedRecipe
        /// Images with `HeldOutSplit.unitHash(key) < heldOutFraction` are not written (they are the
        /// evaluation split of every run); with `validationFraction` > 0 the validation split is left out
        /// too (``DataSplit``).
        public var heldOutFraction: Double
        /// The share of keys after the held-out split that forms the validation split, also left out; 0 for none.
        public var validationFraction: Double
        /// R, records per block of every shard.
        public var recordsPerBlock: Int
        /// Continue the pass in the output folder (Spec/PASS.md 5) instead of starting one.
        public var resume: Bool
        /// The key table version written (2 by default; 1 for readers of spec revision 1.1).
        public var keyTableVersion: Int

        /// `recordsPerBlock` nil: the largest power of two R with R·K ≤ 2,048 (Spec/FORMAT.md 1.1).
        public init(epochs: Int, k: Int, seed: UInt64 = 0, batchSize: Int = 32,
                    recipe: NamedRecipe = NamedRecipe(name: "tinyvit", recipe: .tinyViT),
                    heldOutFraction: Double = 0.2, validationFraction: Double = 0, recordsPerBlock: Int? = nil,
                    resume: Bool = false, keyTableVersion: Int = KeyTable.defaultVersion) {
            self.epochs = epochs; self.k = k; self.seed = seed; self.batchSize = batchSize; self.recipe = recipe
            self.heldOutFraction = heldOutFraction; self.validationFraction = validationFraction
            self.recordsPerBlock = recordsPerBlock ?? ShardSchema.defaultRecordsPerBlock(k: k)
            self.resume = resume; self.keyTableVersion = keyTableVersion
        }
    }

    /// What a pass (or the part of it this run did) wrote.
    public struct Summary: Sendable {
        /// The manifest as last committed (nil when no epoch is finished yet).
        public var manifest: DatasetManifest?
        /// Records the pass holds, including those kept from before a resume.
        public var records: Int
        /// Records this run computed (the rest were kept from an interrupted run).
        public var computedRecords: Int
        /// Bytes of the shards written.
        public var shardBytes: Int
        /// Wall seconds of this run.
        public var seconds: Double
        /// Epochs finished by every rank and listed in the manifest.
        public var committedEpochs: Int
        /// The run stopped on a request before the pass was done; `--resume` continues it.
        public var interrupted: Bool
        /// Shard bytes per record (0 when nothing was written).
        public var bytesPerRecord: Double { records > 0 ? Double(shardBytes) / Double(records) : 0 }
    }

    /// Order of the training samples (store indices) in epoch `epoch`'s shard.
    public static func epochOrder(trainIndices: [Int], seed: UInt64, epoch: Int) -> [Int] {
        seededPermutation(trainIndices.count, seed: seed ^ (0xD157_0000_0000_0000 &+ UInt64(epoch))).map { trainIndices[$0] }
    }

    /// Runs the pass with our TinyViT as the teacher (identified by the SHA-256 of its weights).
    public static func run(store: ImageStore, teacher: TinyViT, outputDirectory: String, options: Options,
                           teacherName: String = "tinyvit", communicator: Communicator = SingleProcess(),
                           stop: StopRequest? = nil, progress: ((Int, Int) -> Void)? = nil) throws -> Summary {
        try run(store: store, teacher: TinyViTTeacher(teacher), outputDirectory: outputDirectory, options: options,
                identity: TeacherIdentity(name: teacherName, model: teacher), communicator: communicator, stop: stop,
                progress: progress)
    }

    /// The pass with any teacher: our TinyViT, or an external process (``ExternalTeacher``).
    ///
    /// With several ranks (`communicator`), rank r writes the shard (epoch, r) of its ``DistributedShare`` of
    /// each epoch's order; parameters are drawn per (seed, epoch, sample), so each record is the one the
    /// single-process pass writes. Ranks agree after every batch (one tiny allreduce): an error on one rank
    /// stops all of them at the next batch with an ``AgreedFailure``, and a stop request on any rank stops all
    /// of them after the same batch. After each epoch, rank 0 checks the other ranks' files
    /// (`DatasetWriter/adoptShard(epoch:rank:)`) and commits the manifest. The output folder must be shared
    /// by the ranks (one host, or a shared file system).
    public static func run(store: ImageStore, teacher: any TeacherModel, outputDirectory: String, options: Options,
                           identity: TeacherIdentity, communicator comm: Communicator = SingleProcess(),
                           stop: StopRequest? = nil, progress: ((Int, Int) -> Void)? = nil) throws -> Summary {
        let start = Date()
        let share = try DistributedShare(rank: comm.rank, ranks: comm.size)
        let (writer, plan) = try comm.agreeing("the teacher pass's setup") {
            try setUp(store: store, teacher: teacher, outputDirectory: outputDirectory, options: options, identity: identity,
                      rank: comm.rank, worldSize: comm.size)
        }
        let size = teacher.imageSize, classes = teacher.numClasses
        let perRank = share.perRank(plan.split.train.count)
        let total = options.epochs * perRank
        var done = 0, computed = 0, committed = 0
        var manifest: DatasetManifest?
        for epoch in 0..<options.epochs {
            let order = share.items(of: epochOrder(trainIndices: plan.split.train, seed: options.seed, epoch: epoch))
            let shard = try comm.agreeing("opening epoch \(epoch) of the teacher pass") {
                try RankShard(epoch: epoch, rank: comm.rank, order: order, plan: plan, writer: writer, resume: options.resume)
            }
            // Every rank has `perRank` items and walks every batch start, so every rank runs the same number of
            // agreement points, whatever it kept from before a resume.
            for position in stride(from: 0, to: max(order.count, 1), by: options.batchSize) {
                let batch = Array(order[position..<min(order.count, position + options.batchSize)])
                let status = comm.agreeingWithStop("epoch \(epoch) of the teacher pass", stop: stop) {
                    guard shard.needs(batchAt: position, count: batch.count) else { return }
                    let records = try teachBatch(batch, epoch: epoch, plan: plan, teacher: teacher, size: size, classes: classes,
                                                 k: options.k, batchSize: options.batchSize)
                    computed += try shard.append(records, batchStart: position)
                }
                try status.get()
                done += batch.count
                progress?(done, total)
                if status.stopped {
                    try comm.agreeing("stopping the teacher pass") { try shard.stop() }
                    return Summary(manifest: manifest, records: done * comm.size, computedRecords: computed * comm.size,
                                   shardBytes: manifest?.shards.reduce(0) { $0 + $1.bytes } ?? 0,
                                   seconds: Date().timeIntervalSince(start), committedEpochs: committed, interrupted: true)
                }
            }
            try comm.agreeing("finishing epoch \(epoch) of the teacher pass") { try shard.finish() }
            try comm.agreeing("committing epoch \(epoch)") {
                guard comm.rank == 0 else { return }
                for rank in 0..<comm.size where !writer.holds(epoch: epoch, rank: rank) {
                    try writer.adoptShard(epoch: epoch, rank: rank)
                }
                manifest = try writer.finish()
            }
            committed = epoch + 1
        }
        let written = try manifest ?? DatasetManifest.read(directory: outputDirectory)
        return Summary(manifest: written, records: total * comm.size, computedRecords: computed * comm.size,
                       shardBytes: written.shards.reduce(0) { $0 + $1.bytes }, seconds: Date().timeIntervalSince(start),
                       committedEpochs: committed, interrupted: false)
    }

    /// What every rank prepares before the first batch: the sample map, the split, the recipe's views, and
    /// the dataset writer (rank 0 writes the key table).
    struct Plan {
        var map: SampleMap
        var split: DataSplit
        var views: RecipeViews
        var augmenter: Augmenter
        var store: ImageStore
    }

    private static func setUp(store: ImageStore, teacher: any TeacherModel, outputDirectory: String, options: Options,
                              identity: TeacherIdentity, rank: Int, worldSize: Int) throws -> (DatasetWriter, Plan) {
        let config = (numClasses: teacher.numClasses, imageSize: teacher.imageSize)
        let size = config.imageSize
        guard options.epochs >= 1 else { throw DistillError(.invalidArgument, "epochs must be ≥ 1") }
        guard options.batchSize >= 1 else { throw DistillError(.invalidArgument, "batch must be ≥ 1") }
        guard (1...min(config.numClasses, ShardSchema.maxK)).contains(options.k) else {
            throw DistillError(.invalidArgument, "k must be in 1...\(min(config.numClasses, ShardSchema.maxK)), got \(options.k)")
        }
        if store.classCount > 0, store.classCount != config.numClasses {
            throw DistillError(.mismatch, "the store has \(store.classCount) classes, the teacher \(config.numClasses)", file: store.path)
        }
        let map = try SampleMap(store: store)
        let split = DataSplit(store: store, heldOutFraction: options.heldOutFraction, validationFraction: options.validationFraction)
        let views = try RecipeViews(recipe: options.recipe.recipe, seed: options.seed, size: size, store: store, map: map,
                                    trainIndices: split.train)
        var schema = ShardSchema(classes: config.numClasses, k: options.k, valueKind: .probability, sorted: true,
                                 augmentation: .params(outputHeight: size, outputWidth: size),
                                 recordsPerBlock: options.recordsPerBlock)
        schema.provenance["teacher"] = identity.name
        schema.provenance["teacher_checksum"] = "sha256:" + identity.sha256
        schema.provenance["augmentation_code_version"] = "1"
        schema.provenance["run_seed"] = String(options.seed)
        schema.provenance["recipe"] = options.recipe.name
        schema.provenance["recipe_sha256"] = options.recipe.hash
        schema.provenance["held_out_fraction"] = String(options.heldOutFraction)
        if options.validationFraction > 0 { schema.provenance["validation_fraction"] = String(options.validationFraction) }
        // Rank 0 alone checks and changes the folder; the others touch nothing before the setup is agreed.
        if rank == 0 {
            let record = PassRecord(epochs: options.epochs, fingerprint: TeacherPassFolder.fingerprint(
                options: options, teacher: identity, store: store, classes: config.numClasses, imageSize: size, worldSize: worldSize))
            _ = try TeacherPassFolder.prepare(directory: outputDirectory, record: record, resume: options.resume)
        }
        // A resumed pass writes the key table only when an earlier run died before it was in place.
        let keysPath = outputDirectory + "/" + DatasetManifest.keysFileName
        let writesKeyTable = rank == 0 && (!options.resume || !FileManager.default.fileExists(atPath: keysPath))
        let writer = try DatasetWriter(directory: outputDirectory, keys: map.keys, schema: schema, writesKeyTable: writesKeyTable,
                                       keyTableVersion: options.keyTableVersion)
        if rank == 0 && options.resume { try TeacherPassFolder.checkKeyTable(directory: outputDirectory, expected: writer.keysFileEntry) }
        return (writer, Plan(map: map, split: split, views: views, augmenter: Augmenter(outputWidth: size, outputHeight: size), store: store))
    }

    /// Draws, renders and teaches one batch of store indices: its records, in batch order.
    ///
    /// The teacher always sees `batchSize` images (a short last batch is padded with blank images whose
    /// outputs are dropped): GEMM libraries may round a row differently for another row count, and the
    /// last batch of a rank's share differs from the single-process pass's. With one shape, a record
    /// does not depend on how the epoch was dealt to ranks (measured: `Tools/bench_mpi.py`). It still
    /// depends, in the last bit of rare float16 values, on the threads per process (oneDNN splits the
    /// sums differently), so compare passes run with the same OMP_NUM_THREADS.
    static func teachBatch(_ batch: [Int], epoch: Int, plan: Plan, teacher: any TeacherModel, size: Int, classes: Int,
                           k: Int, batchSize: Int) throws -> [ShardRecord] {
        let plane = 3 * size * size
        var codes: [[UInt8]] = []
        let rows = max(batch.count, batchSize)
        let images = Tensor(zeros: [rows, 3, size, size])
        for (row, index) in batch.enumerated() {
            let parameters = try plan.views.parameters(epoch: epoch, index: index)
            codes.append(try parameters.encoded(outputHeight: size, outputWidth: size))
            try ImagePreparation.render(parameters, store: plan.store, index: index, map: plan.map, augmenter: plan.augmenter,
                                        into: UnsafeMutableBufferPointer(start: images.pointer + row * plane, count: plane))
        }
        let logits = try teacher.logits(images)
        guard logits.shape == [rows, classes] else {
            throw DistillError(.teacher, "the teacher returned logits of shape \(logits.shape) for \(rows) images of \(classes) classes")
        }
        let probabilities = Probabilities.softmax(UnsafeBufferPointer(rebasing: logits.buffer[0..<(batch.count * classes)]), classes: classes)
        return probabilities.withUnsafeBufferPointer { p in
            batch.enumerated().map { row, index in
                let top = Probabilities.topK(UnsafeBufferPointer(rebasing: p[(row * classes)..<((row + 1) * classes)]), k: k)
                return ShardRecord(sampleID: plan.map.sampleID[index], augmentation: codes[row], indices: top.indices,
                                   values: top.values.map { Float16($0) })
            }
        }
    }
}
