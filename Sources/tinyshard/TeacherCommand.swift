import ArgumentParser
import Augment
import Distill
import Foundation
import ImageStore
import ShardFormat
import TinyViT
#if canImport(Glibc)
import Glibc
#endif

/// Shared plumbing of the distillation commands.
enum DistillCLI {
    /// Runs `body`, turning library errors into one-line CLI failures (ShardError passes through: the
    /// reporter prints it as `FILE: [code] message`).
    static func run<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let agreed as AgreedFailure {
            // Every rank knows: the CLI exits cleanly instead of aborting the job, with the same line.
            throw AgreedFailure(underlying: oneLine(agreed.underlying))
        } catch {
            throw oneLine(error)
        }
    }

    /// ShardError and CLIFailure as they are (the reporter prints them); any other error as one line.
    private static func oneLine(_ error: Error) -> Error {
        switch error {
        case is ShardError, is CLIFailure: return error
        default: return CLIFailure(String(describing: error))
        }
    }

    /// A TinyViT teacher from weights and an architecture; its class count must be the store's.
    static func loadTeacher(weights: String, arch: String, store: ImageStore, imageSize: Int?) throws -> TinyViT {
        let config = try configuration(arch, store: store, imageSize: imageSize)
        return try run { () throws -> TinyViT in
            if store.classCount > 0, store.classCount != config.numClasses {
                throw CLIFailure("\(weights): [mismatch] the teacher has \(config.numClasses) classes, the store \(store.path) \(store.classCount)")
            }
            let model = try TinyViT(config)
            try model.load(contentsOf: URL(fileURLWithPath: weights))
            return model
        }
    }

    static func openStore(_ path: String) throws -> ImageStore {
        try run { try ImageStore(path: path) }
    }

    /// --arch as a named config (classes from the store) or CONFIG.json; --image-size overrides the input size.
    static func configuration(_ arch: String, store: ImageStore, imageSize: Int?) throws -> TinyViTConfiguration {
        try run {
            var config = try ModelArchitecture.configuration(
                arch, numClasses: TinyViTConfiguration.named(arch) != nil && store.classCount > 0 ? store.classCount : nil)
            if let imageSize {
                guard imageSize > 0 else { throw CLIFailure("[usage] --image-size must be positive") }
                config.imageSize = imageSize
            }
            return config
        }
    }
}

/// `tinyshard teacher`: the teacher pass.
struct Teacher: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a TinyViT teacher over augmented views of an image store and write top-K shards plus the manifest.",
        discussion: """
            For each epoch and training image (images whose key hashes below --held-out are the evaluation split and \
            are skipped): draw augmentation parameters from (seed, epoch, sample), apply them, run the teacher in eval \
            mode, keep the top-K softmax probabilities and store them with the parameters (Spec/FORMAT.md). \
            Under mpirun (-np N), rank r writes the shard (epoch, r) of every epoch with its share of the epoch's \
            order as PyTorch's DistributedSampler deals it (padded with repeats to a multiple of N); each record equals \
            the single-process one. Rank 0 checks every rank's shards and commits the manifest after every epoch; \
            finished epochs can be read while the pass goes on. --out must be a folder all ranks share.

            A pass can be stopped and continued (Spec/PASS.md): SIGTERM, SIGINT or SIGUSR1 finish the batch in hand, \
            keep the unfinished block as a tail and exit; after a crash the complete blocks of each unfinished shard \
            are kept. The same command with --resume continues, and the folder ends byte for byte as a pass that never \
            stopped (same threads, same build). --resume with more --epochs adds epochs to a finished pass. The pass's \
            options, teacher (SHA-256), recipe, images and world size are fingerprinted in OUT/pass.json: a resume with \
            anything different is refused, naming what differs.
            """)

    @Option(help: "The image store (.tis).") var images: String
    @Option(help: "Teacher weights: safetensors with timm's state_dict keys.") var weights: String?
    @Option(help: "5m, 11m, 21m, or a CONFIG.json (timm keys; img_size is the augmented output size).") var arch: String?
    @Option(help: ArgumentHelp("An external teacher command (run with /bin/sh -c), fed .npy batches instead of our TinyViT.",
                               discussion: "Per batch it reads a line 'IN.npy OUT.npy' on stdin, writes float32 logits (N, classes) to OUT.npy and prints 'ok'. Needs --image-size; classes come from the store."))
    var external: String?
    @Option(help: "Override the config's input size (pixels).") var imageSize: Int?
    @Option(help: "Dataset folder to write.") var out: String
    @Option(help: "Epochs of augmented views.") var epochs = 1
    @Option(help: "Probabilities kept per record.") var k = 10
    @Option(help: "Run seed of the augmentation parameters and the shard order.") var seed: UInt64 = 0
    @Option(help: "Teacher batch size.") var batch = 64
    @Option(help: "Held-out fraction (by key hash) left out of the shards.") var heldOut = 0.2
    @Option(help: "Validation fraction (by key hash, after the held-out part) also left out (for tuning).") var validation = 0.0
    @Option(help: "The augmentation recipe: a preset (tinyvit, tinyvit-mix, digits) or a recipe JSON file.") var recipe = "tinyvit"
    @Option(help: "Records per block (default: the largest power of two R with R·K ≤ 2,048).") var recordsPerBlock: Int?
    @Flag(help: "Continue the pass in --out (after a crash or a stop), or add epochs to a finished one.") var resume = false

    func run() throws {
        let store = try DistillCLI.openStore(images)
        let namedRecipe = try DistillCLI.run { try NamedRecipe.load(recipe) }
        if external != nil {
            guard weights == nil, arch == nil else { throw CLIFailure("[usage] --external replaces --weights and --arch") }
            guard let imageSize, imageSize > 0 else { throw CLIFailure("[usage] --external needs --image-size") }
            guard store.classCount > 0 else { throw CLIFailure("\(images): [usage] the store names no classes; --external needs them") }
        } else if weights == nil || arch == nil {
            throw CLIFailure("[usage] give --weights and --arch (or --external)")
        }
        // Usage errors above end every rank alike before MPI starts; from here on, ranks agree on errors.
        let ranks = try DistillCLI.run { try Ranks.communicator() }
        let bar = ProgressBar(enabled: ranks.rank == 0)
        let stop = StopRequest()
        let signals = SignalStop(stop, alsoOn: [SIGUSR1])
        let (teacher, identity) = try ranks.agreeing("loading the teacher") { () throws -> (any TeacherModel, TeacherIdentity) in
            try DistillCLI.run {
                if let external, let imageSize {
                    let identity = TeacherIdentity(name: "external: " + external, sha256: SHA256.hex(Array(external.utf8)))
                    return (try ExternalTeacher(command: external, numClasses: store.classCount, imageSize: imageSize), identity)
                }
                let model = try DistillCLI.loadTeacher(weights: weights!, arch: arch!, store: store, imageSize: imageSize)
                let identity = try TeacherIdentity(name: URL(fileURLWithPath: weights!).lastPathComponent, file: weights!)
                return (TinyViTTeacher(model), identity)
            }
        }
        defer { (teacher as? ExternalTeacher)?.close() }
        let summary = try DistillCLI.run { () throws -> TeacherPass.Summary in
            try TeacherPass.run(store: store, teacher: teacher, outputDirectory: out,
                                options: .init(epochs: epochs, k: min(k, teacher.numClasses), seed: seed, batchSize: batch,
                                               recipe: namedRecipe, heldOutFraction: heldOut, validationFraction: validation,
                                               recordsPerBlock: recordsPerBlock, resume: resume),
                                identity: identity, communicator: ranks, stop: stop) { done, total in
                bar.draw(Double(done) / Double(max(total, 1)), "teacher \(done)/\(total) records")
            }
        }
        bar.finish()
        if summary.interrupted {
            let cause = signals.received.map { "stopped by \(SignalStop.name($0))" } ?? "stopped by a request on another rank"
            if ranks.rank == 0 {
                print("\(cause) after \(summary.committedEpochs) committed epoch\(summary.committedEpochs == 1 ? "" : "s"); "
                      + "continue with the same command and --resume")
            }
            let failure = CLIFailure.exit(128 + (signals.received ?? SIGTERM))
            if ranks.size > 1 { throw AgreedFailure(underlying: failure) }
            throw failure
        }
        guard ranks.rank == 0 else { return }
        let kept = summary.records - summary.computedRecords
        print(String(format: "wrote %d records in %d shards to %@ (%.1f bytes/record, %.1f s, %.0f img/s)%@",
                     summary.records, summary.manifest?.shards.count ?? 0, out, summary.bytesPerRecord, summary.seconds,
                     Double(summary.computedRecords) / max(summary.seconds, 1e-9),
                     kept > 0 ? " (\(kept) kept from the interrupted run)" : ""))
    }
}
