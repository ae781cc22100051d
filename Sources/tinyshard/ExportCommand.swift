import ArgumentParser
import ShardConvert

/// `tinyshard export official DATASET --out DIR`.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a dataset in another layout.",
        subcommands: [ExportOfficial.self])
}

struct ExportOfficial: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "official",
        abstract: "Write a dataset (augmentation kind seed, probabilities) in the official TinyViT logits layout.",
        discussion: "A dataset converted from the official layout exports byte-identical to its input (keys files ending in a newline, as the official writer makes them; a key repeated within one rank's file, which that writer never writes, was dropped by the conversion).")

    @Argument(help: "The dataset folder.")
    var dataset: String

    @Option(help: "The folder to write (absent or empty).")
    var out: String

    func run() throws {
        guard case let .dataset(folder) = try InputPath.classify(dataset) else {
            throw CLIFailure(file: dataset, code: "invalid-argument", "export needs a dataset folder, not a shard file")
        }
        let bar = ProgressBar.handler()
        defer { bar?.0.finish() }
        let summary = try OfficialExporter.export(dataset: folder, to: out, progress: bar?.1)
        bar?.0.finish()
        print("exported \(summary.records) records of \(summary.ranks) (epoch, rank) pairs, K = \(summary.k), into \(out) (\(summary.bytes) bytes)")
    }
}
