import ArgumentParser
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
        } catch let error as ShardError {
            throw error
        } catch let error as CLIFailure {
            throw error
        } catch {
            throw CLIFailure(String(describing: error))
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

    /// A one-line bar on stderr when it is a terminal.
    final class Bar {
        private let enabled = isatty(STDERR_FILENO) == 1
        private var last = 0.0
        func draw(_ fraction: Double, _ text: String, force: Bool = false) {
            guard enabled else { return }
            let now = Date().timeIntervalSinceReferenceDate
            guard force || now - last >= 0.1 else { return }
            last = now
            let width = 30, filled = Int(min(1, max(0, fraction)) * Double(width))
            fputs("\r\u{1B}[2K[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] " + text, stderr)
        }
        func finish() { if enabled { fputs("\r\u{1B}[2K", stderr) } }
    }
}

/// `tinyshard teacher`: the teacher pass.
struct Teacher: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a TinyViT teacher over augmented views of an image store and write top-K shards plus the manifest.",
        discussion: """
            For each epoch and training image (images whose key hashes below --held-out are the evaluation split and \
            are skipped): draw augmentation parameters from (seed, epoch, sample), apply them, run the teacher in eval \
            mode, keep the top-K softmax probabilities and store them with the parameters (Spec/FORMAT.md).
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
    @Flag(help: "Draw mixup/cutmix too (TinyViT's pretraining recipe: mixup 0.8, cutmix 1.0, switch 0.5).") var mix = false

    func run() throws {
        let store = try DistillCLI.openStore(images)
        let bar = DistillCLI.Bar()
        let teacher: any TeacherModel
        let name: String
        if let external {
            guard weights == nil, arch == nil else { throw CLIFailure("[usage] --external replaces --weights and --arch") }
            guard let imageSize, imageSize > 0 else { throw CLIFailure("[usage] --external needs --image-size") }
            guard store.classCount > 0 else { throw CLIFailure("\(images): [usage] the store names no classes; --external needs them") }
            teacher = try DistillCLI.run { try ExternalTeacher(command: external, numClasses: store.classCount, imageSize: imageSize) }
            name = "external: " + external
        } else {
            guard let weights, let arch else { throw CLIFailure("[usage] give --weights and --arch (or --external)") }
            let config = try DistillCLI.configuration(arch, store: store, imageSize: imageSize)
            teacher = try DistillCLI.run { () throws -> TinyViTTeacher in
                let model = try TinyViT(config)
                try model.load(contentsOf: URL(fileURLWithPath: weights))
                return TinyViTTeacher(model)
            }
            name = URL(fileURLWithPath: weights).lastPathComponent
        }
        defer { (teacher as? ExternalTeacher)?.close() }
        let summary = try DistillCLI.run { () throws -> TeacherPass.Summary in
            try TeacherPass.run(store: store, teacher: teacher, outputDirectory: out,
                                options: .init(epochs: epochs, k: min(k, teacher.numClasses), seed: seed, batchSize: batch,
                                               recipe: mix ? .tinyViTWithMix : .tinyViT, heldOutFraction: heldOut),
                                teacherName: name) { done, total in
                bar.draw(Double(done) / Double(max(total, 1)), "teacher \(done)/\(total) records")
            }
        }
        bar.finish()
        print(String(format: "wrote %d records in %d shards to %@ (%.1f bytes/record, %.1f s, %.0f img/s)",
                     summary.records, summary.manifest.shards.count, out, summary.bytesPerRecord, summary.seconds,
                     Double(summary.records) / max(summary.seconds, 1e-9)))
    }
}
