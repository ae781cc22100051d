import ArgumentParser
import Foundation
import ShardConvert
import ShardFormat

/// `tinyshard convert official|npy`: teacher outputs from other layouts into a dataset.
struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert teacher outputs into a TinyShard dataset.",
        subcommands: [ConvertOfficial.self, ConvertNpy.self])
}

struct ConvertOfficial: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "official",
        abstract: "Convert the official TinyViT logits layout (logits_top{K}_epoch{E}/rank{r}-keys.txt, rank{r}-values.bin).",
        discussion: """
            Each (epoch, rank) becomes one shard with all of that rank's records in file order, so that \
            `tinyshard export official` writes the files back byte for byte. A key the distributed sampler padded \
            into a second rank of an epoch is kept in both ranks' shards, each with its own seed and values. A key \
            repeated within one rank's keys file (the official writer never writes one) is dropped and counted.
            """)

    @Argument(help: "The folder holding logits_top{K}_epoch{E} folders.")
    var directory: String

    @Option(help: "The dataset folder to write (absent, empty, or an earlier dataset, which is replaced).")
    var out: String

    @Option(help: "Number of classes C of the teacher (the official files do not record it).")
    var classes: Int

    @Option(help: "Teacher name for the provenance.")
    var teacher: String?

    @Option(help: ArgumentHelp("Records per block.", discussion: RecordsPerBlockHelp.defaultRule))
    var recordsPerBlock: Int?

    @Option(help: "Threads that sort keys and encode blocks (default: the active processor count). The output does not depend on it.")
    var threads: Int?

    func run() throws {
        ProcessMemory.returnLargeFreedBuffers()
        let options = OfficialImportOptions(classes: classes, teacher: teacher, recordsPerBlock: recordsPerBlock,
                                            threads: threads ?? ShardWriter.defaultThreads)
        let bar = ProgressBar.handler()
        defer { bar?.0.finish() }
        let summary = try OfficialImporter.importDataset(from: directory, to: out, options: options, progress: bar?.1)
        bar?.0.finish()
        print(ConvertReport.text(summary, source: directory))
    }
}

struct ConvertNpy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "npy",
        abstract: "Convert dense teacher outputs (.npy float32 [N, C]) into a one-shard dataset of top-K probabilities.")

    enum Kind: String, ExpressibleByArgument, CaseIterable {
        case logits, probabilities
    }

    enum Augmentation: String, ExpressibleByArgument, CaseIterable {
        case none, seed, params
    }

    @Argument(help: "Teacher outputs: float32 [N, C] .npy (C order).")
    var outputs: String

    @Option(help: "Keys file: N lines, the key of each row.")
    var keys: String

    @Option(help: "What the rows hold: logits (softmax with --temperature first) or probabilities.")
    var kind: Kind

    @Option(help: "Top-K entries to keep per row.")
    var k: Int

    @Option(help: "The dataset folder to write (absent, empty, or an earlier dataset, which is replaced).")
    var out: String

    @Option(help: "Softmax temperature for logits.")
    var temperature = 1.0

    @Option(help: "Augmentation kind stored per record.")
    var augmentation: Augmentation = .none

    @Option(help: "Augmentation codes: uint8 [N, A] .npy for the kind (A = 4 seed, 80 params), or int32 [N] seeds.")
    var codes: String?

    @Option(help: "Output image size HxW (or one number) for --augmentation params.")
    var outputSize: String?

    @Option(help: "Epoch of the records.")
    var epoch = 0

    @Option(help: "Writer rank of the records.")
    var rank = 0

    @Option(help: "Teacher name for the provenance.")
    var teacher: String?

    @Option(help: ArgumentHelp("Records per block.", discussion: RecordsPerBlockHelp.defaultRule))
    var recordsPerBlock: Int?

    func run() throws {
        let kindOfAugmentation: AugmentationKind
        switch augmentation {
        case .none: kindOfAugmentation = .none
        case .seed: kindOfAugmentation = .seed
        case .params:
            guard let outputSize else { throw ValidationError("--augmentation params needs --output-size HxW") }
            let parts = outputSize.split(separator: "x").compactMap { Int($0) }
            guard (parts.count == 1 || parts.count == 2) && outputSize.split(separator: "x").count == parts.count else {
                throw ValidationError("--output-size: '\(outputSize)' is not HxW or one number")
            }
            kindOfAugmentation = .params(outputHeight: parts[0], outputWidth: parts.last!)
        }
        let options = NpyImportOptions(outputs: outputs, keys: keys, kind: kind == .logits ? .logits : .probabilities,
                                       temperature: temperature, k: k, augmentation: kindOfAugmentation,
                                       augmentationCodes: codes, epoch: epoch, rank: rank, teacher: teacher,
                                       recordsPerBlock: recordsPerBlock)
        let bar = ProgressBar.handler()
        defer { bar?.0.finish() }
        let summary = try NpyImporter.importDataset(options, to: out, progress: bar?.1)
        bar?.0.finish()
        print(ConvertReport.text(summary, source: outputs))
    }
}

/// The `--records-per-block` default, in the help of both converters.
enum RecordsPerBlockHelp {
    static let defaultRule = "Default: the largest power of two R with R × K ≤ 2,048 (K = 100: 16, K = 10: 128, K = 1: 2,048)."
}

enum ConvertReport {
    static func text(_ summary: ConversionSummary, source: String) -> String {
        var out = "converted \(source) into \(summary.directory): C = \(summary.classes), K = \(summary.k), "
        out += "\(summary.epochs.count) epoch\(summary.epochs.count == 1 ? "" : "s"), \(summary.shards) shard\(summary.shards == 1 ? "" : "s"), \(summary.keys) keys\n"
        out += "records written \(summary.recordsWritten) (read \(summary.recordsRead), keys repeated within a rank dropped \(summary.duplicatesDropped))\n"
        if summary.keysInSeveralRanks > 0 {
            out += "keys in several ranks of an epoch \(summary.keysInSeveralRanks) (each rank's shard keeps its own record)\n"
        }
        out += "dataset \(summary.shardBytes + summary.keyTableBytes) bytes: \(String(format: "%.2f", summary.bytesPerRecord)) bytes/record"
        if summary.sourceBytes > 0, summary.recordsRead > 0 {
            out += " (source \(String(format: "%.2f", Double(summary.sourceBytes) / Double(summary.recordsRead))) bytes/record)"
        }
        return out
    }
}
