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
        /// Recorded in the shards' provenance by name and SHA-256 of its canonical JSON.
        public var recipe: NamedRecipe
        /// Images with `HeldOutSplit.unitHash(key) < heldOutFraction` are not written (they are the
        /// evaluation split of every run); with `validationFraction` > 0 the validation split is left out
        /// too (``DataSplit``).
        public var heldOutFraction: Double
        public var validationFraction: Double
        public var recordsPerBlock: Int

        public init(epochs: Int, k: Int, seed: UInt64 = 0, batchSize: Int = 32,
                    recipe: NamedRecipe = NamedRecipe(name: "tinyvit", recipe: .tinyViT),
                    heldOutFraction: Double = 0.2, validationFraction: Double = 0, recordsPerBlock: Int = 1024) {
            self.epochs = epochs; self.k = k; self.seed = seed; self.batchSize = batchSize; self.recipe = recipe
            self.heldOutFraction = heldOutFraction; self.validationFraction = validationFraction
            self.recordsPerBlock = recordsPerBlock
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
                           teacherName: String = "tinyvit", communicator: Communicator = SingleProcess(),
                           progress: ((Int, Int) -> Void)? = nil) throws -> Summary {
        try run(store: store, teacher: TinyViTTeacher(teacher), outputDirectory: outputDirectory, options: options,
                teacherName: teacherName, communicator: communicator, progress: progress)
    }

    /// The pass with any teacher: our TinyViT, or an external process (``ExternalTeacher``).
    ///
    /// With several ranks (`communicator`), rank r writes the shard (epoch, r) of its ``DistributedShare`` of
    /// each epoch's order; parameters are drawn per (seed, epoch, sample), so each record is the one the
    /// single-process pass writes. Ranks agree after every batch (one tiny allreduce), so an error on one
    /// rank stops all of them at the next batch with an ``AgreedFailure``; once every shard is finished,
    /// rank 0 checks the other ranks' files (``DatasetWriter/adoptShard(epoch:rank:)``) and writes the
    /// manifest. The output folder must be shared by the ranks (one host, or a shared file system).
    public static func run(store: ImageStore, teacher: any TeacherModel, outputDirectory: String, options: Options,
                           teacherName: String, communicator comm: Communicator = SingleProcess(),
                           progress: ((Int, Int) -> Void)? = nil) throws -> Summary {
        let start = Date()
        let share = try DistributedShare(rank: comm.rank, ranks: comm.size)
        let (writer, plan) = try comm.agreeing("the teacher pass's setup") {
            try setUp(store: store, teacher: teacher, outputDirectory: outputDirectory, options: options,
                      teacherName: teacherName, writesKeyTable: comm.rank == 0)
        }
        let size = teacher.imageSize, classes = teacher.numClasses
        let perRank = share.perRank(plan.split.train.count)
        let total = options.epochs * perRank
        var done = 0
        for epoch in 0..<options.epochs {
            let order = share.items(of: epochOrder(trainIndices: plan.split.train, seed: options.seed, epoch: epoch))
            var shard: ShardWriter?
            var position = 0
            // Every rank has `perRank` items, so every rank runs the same number of agreement points.
            repeat {
                let batch = Array(order[position..<min(order.count, position + options.batchSize)])
                position += batch.count
                // A failed rank's unfinished shard stays as `*.partial`, as after a crash.
                try comm.agreeing("epoch \(epoch) of the teacher pass") {
                    if shard == nil { shard = try writer.shardWriter(epoch: epoch, rank: comm.rank) }
                    if !batch.isEmpty {
                        try writeBatch(batch, epoch: epoch, plan: plan, teacher: teacher, size: size, classes: classes,
                                       k: options.k, batchSize: options.batchSize, into: shard!)
                    }
                    if position == order.count { _ = try writer.finish(shard!) }
                }
                done += batch.count
                progress?(done, total)
            } while position < order.count
        }
        var manifest: DatasetManifest?
        try comm.agreeing("writing the manifest") {
            guard comm.rank == 0 else { return }
            for epoch in 0..<options.epochs {
                for rank in 1..<max(comm.size, 1) { try writer.adoptShard(epoch: epoch, rank: rank) }
            }
            manifest = try writer.finish()
        }
        let written = try manifest ?? DatasetManifest.read(directory: outputDirectory)
        return Summary(manifest: written, records: total * comm.size,
                       shardBytes: written.shards.reduce(0) { $0 + $1.bytes }, seconds: Date().timeIntervalSince(start))
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
                              teacherName: String, writesKeyTable: Bool) throws -> (DatasetWriter, Plan) {
        let config = (numClasses: teacher.numClasses, imageSize: teacher.imageSize)
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
        let split = DataSplit(store: store, heldOutFraction: options.heldOutFraction, validationFraction: options.validationFraction)
        let views = try RecipeViews(recipe: options.recipe.recipe, seed: options.seed, size: size, store: store, map: map,
                                    trainIndices: split.train)
        var schema = ShardSchema(classes: config.numClasses, k: options.k, valueKind: .probability, sorted: true,
                                 augmentation: .params(outputHeight: size, outputWidth: size),
                                 recordsPerBlock: options.recordsPerBlock)
        schema.provenance["teacher"] = teacherName
        schema.provenance["augmentation_code_version"] = "1"
        schema.provenance["run_seed"] = String(options.seed)
        schema.provenance["recipe"] = options.recipe.name
        schema.provenance["recipe_sha256"] = options.recipe.hash
        schema.provenance["held_out_fraction"] = String(options.heldOutFraction)
        if options.validationFraction > 0 { schema.provenance["validation_fraction"] = String(options.validationFraction) }
        let writer = try DatasetWriter(directory: outputDirectory, keys: map.keys, schema: schema, writesKeyTable: writesKeyTable)
        return (writer, Plan(map: map, split: split, views: views, augmenter: Augmenter(outputWidth: size, outputHeight: size), store: store))
    }

    /// Draws, renders and teaches one batch of store indices and appends its records.
    ///
    /// The teacher always sees `batchSize` images (a short last batch is padded with blank images whose
    /// outputs are dropped): GEMM libraries may round a row differently for another row count, and the
    /// last batch of a rank's share differs from the single-process pass's. With one shape, a record
    /// does not depend on how the epoch was dealt to ranks (measured: `Tools/bench_mpi.py`). It still
    /// depends, in the last bit of rare float16 values, on the threads per process (oneDNN splits the
    /// sums differently), so compare passes run with the same OMP_NUM_THREADS.
    private static func writeBatch(_ batch: [Int], epoch: Int, plan: Plan, teacher: any TeacherModel, size: Int, classes: Int,
                                   k: Int, batchSize: Int, into shard: ShardWriter) throws {
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
            throw DistillError("[teacher] the teacher returned logits of shape \(logits.shape) for \(rows) images of \(classes) classes")
        }
        let probabilities = Probabilities.softmax(UnsafeBufferPointer(rebasing: logits.buffer[0..<(batch.count * classes)]), classes: classes)
        try probabilities.withUnsafeBufferPointer { p in
            for (row, index) in batch.enumerated() {
                let top = Probabilities.topK(UnsafeBufferPointer(rebasing: p[(row * classes)..<((row + 1) * classes)]), k: k)
                try shard.append(sampleID: plan.map.sampleID[index], indices: top.indices, values: top.values, augmentation: codes[row])
            }
        }
    }
}

/// A teacher: logits (N, classes) for normalised images (N, 3, imageSize, imageSize).
public protocol TeacherModel: AnyObject {
    var numClasses: Int { get }
    var imageSize: Int { get }
    func logits(_ images: Tensor) throws -> Tensor
}

/// Our TinyViT in eval mode (running BatchNorm statistics, no drop path).
public final class TinyViTTeacher: TeacherModel {
    public let model: TinyViT
    public init(_ model: TinyViT) { self.model = model }
    public var numClasses: Int { model.configuration.numClasses }
    public var imageSize: Int { model.configuration.imageSize }
    public func logits(_ images: Tensor) throws -> Tensor {
        try model.forward(images, context: ForwardContext(training: false, recordsGradients: false))
    }
}

/// A teacher in another process (e.g. PyTorch), fed through .npy files.
///
/// Protocol: `/bin/sh -c COMMAND` is started once. For each batch the pass writes the augmented images
/// to `IN.npy` (float32, (N, 3, H, W), ImageNet-normalised) and the line `IN.npy OUT.npy` to the
/// process's stdin; the process writes the logits to `OUT.npy` (float32 or float64, (N, classes)) and
/// answers with a line `ok` on stdout. When the pass ends, stdin is closed and the process should exit.
/// A minimal Python side:
/// ```python
/// import sys, numpy as np
/// for line in sys.stdin:
///     src, dst = line.split()
///     np.save(dst, model(np.load(src)).astype(np.float32)); print("ok", flush=True)
/// ```
public final class ExternalTeacher: TeacherModel {
    public let command: String
    public let numClasses: Int
    public let imageSize: Int
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let directory: String
    private var batch = 0
    private var pendingOutput = Data()

    public init(command: String, numClasses: Int, imageSize: Int) throws {
        self.command = command
        self.numClasses = numClasses
        self.imageSize = imageSize
        directory = NSTemporaryDirectory() + "tinyshard-teacher-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // A teacher that dies makes our next write to its stdin hit a closed pipe: without this the kernel
        // kills the whole process with SIGPIPE (no message, no checkpoint); ignored, the write fails with
        // EPIPE and `logits` reports the exit as a one-line error. Process-wide, and harmless to keep: this
        // process never relies on SIGPIPE to stop writing.
        signal(SIGPIPE, SIG_IGN)
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.standardInput = input
        process.standardOutput = output
        do { try process.run() } catch {
            throw DistillError("[teacher] cannot start the external teacher `\(command)`: \(error.localizedDescription)")
        }
    }

    deinit { close() }

    /// Closes the teacher's stdin and waits for it to exit.
    public func close() {
        guard batch >= 0 else { return }
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: directory)
        batch = -1
    }

    public func logits(_ images: Tensor) throws -> Tensor {
        guard batch >= 0 else { throw DistillError("[teacher] the external teacher is closed") }
        let inPath = directory + "/batch\(batch).npy", outPath = directory + "/logits\(batch).npy"
        batch += 1
        try NPY.write(images, to: URL(fileURLWithPath: inPath))
        guard process.isRunning else { throw DistillError("[teacher] the external teacher `\(command)` exited (status \(process.terminationStatus))") }
        do {
            try input.fileHandleForWriting.write(contentsOf: Data("\(inPath) \(outPath)\n".utf8))
        } catch {
            throw DistillError("[teacher] cannot write to the external teacher `\(command)`: \(error.localizedDescription)")
        }
        let line = try readLine()
        guard line.trimmingCharacters(in: .whitespaces) == "ok" else {
            throw DistillError("[teacher] the external teacher `\(command)` answered \"\(line)\" instead of ok")
        }
        let logits = try NPY.read(URL(fileURLWithPath: outPath))
        try? FileManager.default.removeItem(atPath: inPath)
        try? FileManager.default.removeItem(atPath: outPath)
        return logits
    }

    private func readLine() throws -> String {
        while true {
            if let newline = pendingOutput.firstIndex(of: 0x0A) {
                let line = String(decoding: pendingOutput[pendingOutput.startIndex..<newline], as: UTF8.self)
                pendingOutput = Data(pendingOutput[(newline + 1)...])
                return line
            }
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else {
                throw DistillError("[teacher] the external teacher `\(command)` closed its output without answering")
            }
            pendingOutput.append(chunk)
        }
    }
}
