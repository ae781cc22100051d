import ArgumentParser
import Augment
import Distill
import Foundation
import ShardFormat
import TinyViT

/// `tinyshard train`: student training off shards (or hard-label training with on-the-fly augmentation).
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a TinyViT off shards (dense soft labels, parameters replayed) or, without --shards, on hard labels.",
        discussion: """
            Writes RUN/config.json, RUN/checkpoint/ after every epoch (weights, optimizer state, position), \
            RUN/model.safetensors at the end, RUN/metrics.csv and RUN/curves.svg. --resume continues from \
            RUN/checkpoint bit-exactly (same options required). A corrupt or missing shard stops training with \
            the file and record.
            """)

    @Option(help: "The image store (.tis).") var images: String
    @Option(help: "A dataset folder from 'tinyshard teacher'. Without it: hard labels, parameters drawn on the fly.") var shards: String?
    @Option(help: "5m, 11m, 21m, or a CONFIG.json.") var arch: String
    @Option(help: "Override the config's input size (pixels).") var imageSize: Int?
    @Option(help: "Run folder.") var out: String
    @Option var epochs = 10
    @Option var batch = 32
    @Option(help: "Peak learning rate.") var lr: Float = 1e-3
    @Option(help: "Final learning rate of the cosine.") var minLr: Float = 1e-5
    @Option var warmupEpochs = 1.0
    @Option var weightDecay: Float = 0.05
    @Option(help: "Gradient-norm clip (0: none).") var clip: Float = 5
    @Option var dropPath: Float = 0
    @Option(help: "Layer-wise learning-rate decay (1: none).") var layerDecay: Float = 1
    @Option var seed: UInt64 = 0
    @Option(help: "Held-out fraction (by key hash) for evaluation.") var heldOut = 0.2
    @Flag(help: "One-hot targets from the store's labels, replaying the shards' augmentation parameters.") var hardLabels = false
    @Flag(help: "Continue from RUN/checkpoint.") var resume = false
    @Option(help: "Stop after this many epochs in this invocation (the run stays resumable).") var stopAfter: Int?

    func run() throws {
        let store = try DistillCLI.openStore(images)
        let config = try DistillCLI.configuration(arch, store: store, imageSize: imageSize)
        if hardLabels && shards == nil { throw CLIFailure("[usage] --hard-labels replays shards' parameters; give --shards") }
        let options = TrainOptions(epochs: epochs, batchSize: batch, learningRate: lr, minLearningRate: minLr,
                                   warmupEpochs: warmupEpochs, weightDecay: weightDecay, clip: clip > 0 ? clip : nil,
                                   dropPath: dropPath, layerDecay: layerDecay, seed: seed, heldOutFraction: heldOut)
        let bar = DistillCLI.Bar()
        let summary = try DistillCLI.run { () throws -> TrainSummary in
            let source: TrainingSource
            if let shards {
                source = .shards(try ShardDataset(directory: shards), hardLabels: hardLabels)
            } else {
                source = .onTheFly(recipe: .tinyViT, seed: seed)
            }
            let trainer = try Trainer(store: store, source: source, configuration: config, options: options, runDirectory: out, resume: resume)
            return try trainer.run(stopAfterEpochs: stopAfter) { p in
                let done = Double(p.epoch * p.stepsPerEpoch + p.stepInEpoch) / Double(max(1, p.epochs * p.stepsPerEpoch))
                bar.draw(done, String(format: "epoch %d/%d step %d/%d loss %.4f lr %.2e %.0f img/s", p.epoch + 1, p.epochs,
                                      p.stepInEpoch, p.stepsPerEpoch, p.loss, p.learningRate, p.imagesPerSecond))
            }
        }
        bar.finish()
        for row in summary.rows where row.top1 != nil {
            let loss = summary.rows.filter { $0.epoch == row.epoch }.map { Double($0.loss) }
            print(String(format: "epoch %d: loss %.4f  held-out top-1 %.2f%%  top-5 %.2f%%", row.epoch + 1,
                         loss.reduce(0, +) / Double(max(loss.count, 1)), row.top1! * 100, (row.top5 ?? 0) * 100))
        }
        let busy = summary.waitSeconds + summary.computeSeconds
        if busy > 0 {
            print(String(format: "data wait %.1f%% of step time (preparation %.1f s on a background thread, compute %.1f s)",
                         100 * summary.waitSeconds / busy, summary.prepareSeconds, summary.computeSeconds))
        }
        print("run folder: \(out) (\(summary.completedEpochs)/\(epochs) epochs, \(summary.steps) steps)")
    }
}
