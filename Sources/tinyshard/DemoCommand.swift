import Foundation
import ArgumentParser
import DemoData
import ShardConvert
import ShardFormat

/// `tinyshard demo --out DIR`: the main job on an embedded default — write a synthetic dataset of shards,
/// verify every byte of it, and show what it holds.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a synthetic demo dataset (a synthetic teacher's top-K under explicit augmentation parameters), verify it and inspect it.",
        discussion: "Deterministic: the same options write the same bytes. Exit 1 if the written dataset does not verify.")

    @Option(help: "The dataset folder to write (absent, empty, or an earlier dataset, which is replaced).")
    var out: String

    @Option(help: "Records per shard (each epoch shows records × ranks images once).")
    var records = 2000

    @Option(help: "Epochs.")
    var epochs = 2

    @Option(help: "Writer ranks (shards per epoch).")
    var ranks = 2

    @Option(help: "Classes C.")
    var classes = 1000

    @Option(help: "Top-K entries per record.")
    var k = 10

    @Option(help: "Records per block.")
    var recordsPerBlock = 1024

    @Option(help: "Random seed.")
    var seed: UInt64 = 0

    func run() throws {
        let options = DemoOptions(recordsPerShard: records, epochs: epochs, ranks: ranks, classes: classes, k: k,
                                  recordsPerBlock: recordsPerBlock, seed: seed)
        let bar = ProgressBar.handler()
        defer { bar?.0.finish() }
        let summary = try DemoDataset.write(to: out, options: options, progress: bar?.1)
        bar?.0.finish()
        print("wrote \(summary.recordsWritten) records (\(summary.epochs.count) epochs × \(ranks) ranks × \(records)) to \(out)")
        print("  \(summary.shards) shards, \(summary.keys) keys, C = \(classes), K = \(k), augmentation params")
        print("  \(summary.shardBytes + summary.keyTableBytes) bytes = \(String(format: "%.2f", summary.bytesPerRecord)) bytes/record")

        let start = Date()
        let verification = ShardVerifier().verifyDataset(directory: out)
        print("\nverify (full depth):")
        print(Verify.human(verification, path: out, seconds: Date().timeIntervalSince(start)), terminator: "")
        print("\ninspect:")
        print(try Inspect.report(out), terminator: "")
        if !verification.isClean { throw CLIFailure.exit(ExitStatus.problems) }
    }
}
