import ArgumentParser
import Augment
import Distill
import Foundation
import ImageStore
import Reports
import ShardFormat
import TinyViT

extension Train {
    /// Store indices of the images `--exclude` lists and `--exclude-hard` finds (one-line errors naming the file
    /// and line of a key the store lacks).
    func excludedImages(_ store: ImageStore) throws -> Set<Int> {
        var excluded = Set<Int>()
        if let exclude {
            guard let text = try? String(contentsOfFile: exclude, encoding: .utf8) else {
                throw CLIFailure(file: exclude, code: "io", "cannot read the list of keys (UTF-8 text, one key per line)")
            }
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
                guard let index = store.index(ofKey: String(line)) else {
                    throw CLIFailure(file: exclude, code: "mismatch", "line \(number + 1): the store \(store.path) has no image with the key '\(line)'")
                }
                excluded.insert(index)
            }
        }
        if let excludeHard, let shards {
            var options = PassAnalysis.Options()
            options.hardShare = excludeHard
            let keys = try DistillCLI.run {
                try PassAnalysis(dataset: try ShardDataset(directory: shards), store: store, options: options).hardSampleKeys()
            }
            for key in keys { if let index = store.index(ofKey: key) { excluded.insert(index) } }
        }
        return excluded
    }
}

/// `tinyshard train`: a student off shards, with an online teacher, or on hard labels.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a TinyViT: off shards (stored soft labels, parameters replayed), with an online teacher, or on hard labels.",
        discussion: """
            Views: with --shards, each record's stored parameters are replayed (no recipe needed); without, they are \
            drawn on the fly from --recipe and --seed (the teacher pass's recipe and seed give exactly its views). \
            Targets: the shards' soft labels; --hard-labels for one-hot store labels; or --teacher WEIGHTS \
            --teacher-arch CONFIG for a teacher in the loop (eval mode, on the student's exact view): its softmax, or \
            with --teacher-k K its top-K rebuilt as a stored record's dense label. \
            Writes RUN/config.json, RUN/checkpoint/ after every epoch (weights, optimizer state, position), \
            RUN/model.safetensors at the end, RUN/metrics.csv and RUN/curves.svg. SIGINT or SIGTERM finishes the \
            current step, writes a resumable checkpoint (mid-epoch position included) and exits; --resume continues \
            bit-exactly (same options required). A corrupt or missing shard stops training with the file and record.
            --batch is the global batch of one optimiser step: --accumulate M splits it into M micro-batches whose \
            gradients are averaged. Under mpirun (-np N), each rank takes its 1/N of every batch, gradients are \
            averaged with an allreduce, BatchNorm uses each rank's images (--sync-batchnorm: the whole batch's), \
            and rank 0 writes the run folder; mpirun -np 2 and --accumulate 2 train on the same micro-batches. \
            SIGUSR1 to mpirun (forwarded to every rank) stops every rank after the same step with a resumable \
            checkpoint; --resume needs the same number of ranks. See the README for launching.

            Order: records are read with the record-order sampler (Spec/RECORD-ORDER.md): the ranks × accumulate \
            micro-batch streams each read a contiguous share of the stored records, whole blocks in stored order (the \
            pass's own shuffle); --shuffle-window W mixes the records of W blocks more. --order shuffled reshuffles \
            every epoch and deals it like PyTorch's DistributedSampler (one block decode per record); --order batchwise \
            cuts the stored order into global batches split across ranks (the same batches whatever the world size, \
            every rank decoding every block). Training epoch e \
            reads stored epoch e; more epochs than stored need --cycle-epochs (epoch e reads stored epoch e mod S).
            """)

    @Option(help: "The image store (.tis).") var images: String
    @Option(help: "A dataset folder from 'tinyshard teacher': replay its views (and, by default, its soft labels).") var shards: String?
    @Option(help: "Without --shards: the views' recipe, a preset (tinyvit, tinyvit-mix, digits) or a recipe JSON file.") var recipe: String?
    @Option(help: "5m, 11m, 21m, or a CONFIG.json.") var arch: String
    @Option(help: "Override the config's input size (pixels).") var imageSize: Int?
    @Option(help: "Online distillation: the teacher's weights (safetensors, timm keys).") var teacher: String?
    @Option(help: "The teacher's architecture (5m, 11m, 21m, or a CONFIG.json).") var teacherArch: String?
    @Option(help: "Keep only the teacher's top-K, rebuilt as a stored dense label (float16 values, spec section 7 residual).") var teacherK: Int?
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
    @Option(help: "Seed of the weights and drop path; without --shards also of the views and their order.") var seed: UInt64 = 0
    @Option(help: "Held-out fraction (by key hash) for evaluation.") var heldOut = 0.2
    @Option(help: "Evaluate on (and train without) this validation part of the training split instead (for tuning).") var validation = 0.0
    @Flag(help: "One-hot targets from the store's labels.") var hardLabels = false
    @Flag(help: "Continue from RUN/checkpoint.") var resume = false
    @Option(help: "Stop after this many epochs in this invocation (the run stays resumable).") var stopAfter: Int?
    @Option(help: "Evaluate every N epochs (0: only after the last).") var evalEvery = 1
    @Option(help: "Micro-batches per optimiser step (per rank): --batch stays the global batch, gradients are averaged.") var accumulate = 1
    @Flag(help: "Under mpirun: BatchNorm statistics over the whole global batch (SyncBatchNorm) instead of each rank's images.") var syncBatchnorm = false
    @Option(help: "record (the record-order sampler, default), shuffled (a new permutation every epoch, DistributedSampler dealing) or batchwise (stored order by global batch: the same batches whatever the world size).") var order = "record"
    @Option(help: "With --order record: shuffle the records of this many blocks together (0: exactly as stored).") var shuffleWindow = 0
    @Flag(help: "Train more epochs than the shards store by reading the stored epochs again in order.") var cycleEpochs = false
    @Option(help: "Train from only the first k stored entries of each record (K chosen after the pass; Spec/FORMAT.md 7).") var k: Int?
    @Option(help: "Leave out the images whose keys this file lists (one per line) as training samples.") var exclude: String?
    @Option(help: "Evaluate on every image of this store (a real test set, e.g. Fashion-MNIST's t10k) instead of the held-out split; its classes must be the training store's.") var evalImages: String?
    @Option(help: "Leave out the hard samples of --shards: images whose label is outside the teacher's top 5 in at least this share of their records (tinyshard analyze's rule).") var excludeHard: Double?

    func run() throws {
        let store = try DistillCLI.openStore(images)
        let config = try DistillCLI.configuration(arch, store: store, imageSize: imageSize)
        if shards != nil, recipe != nil { throw CLIFailure("[usage] --shards replays stored views; --recipe is for views drawn on the fly") }
        if teacher != nil, hardLabels { throw CLIFailure("[usage] --teacher and --hard-labels are two different targets; give one") }
        if (teacher == nil) != (teacherArch == nil) { throw CLIFailure("[usage] --teacher and --teacher-arch go together") }
        if teacherK != nil, teacher == nil { throw CLIFailure("[usage] --teacher-k needs --teacher") }
        if k != nil, shards == nil || hardLabels || teacher != nil { throw CLIFailure("[usage] --k takes the top k of stored soft labels: it needs --shards") }
        if shards == nil, teacher == nil, !hardLabels {
            throw CLIFailure("[usage] without --shards, give --hard-labels or --teacher (there are no stored soft labels)")
        }
        let sampleOrder: SampleOrder
        switch order {
        case "record":
            guard shuffleWindow >= 0 else { throw CLIFailure("[usage] --shuffle-window must be ≥ 0") }
            sampleOrder = .record(window: shuffleWindow)
        case "shuffled", "batchwise":
            guard shuffleWindow == 0 else { throw CLIFailure("[usage] --shuffle-window goes with --order record") }
            sampleOrder = order == "shuffled" ? .shuffled : .batchwise
        default: throw CLIFailure("[usage] --order is record, shuffled or batchwise, got '\(order)'")
        }
        let options = TrainOptions(epochs: epochs, batchSize: batch, learningRate: lr, minLearningRate: minLr,
                                   warmupEpochs: warmupEpochs, weightDecay: weightDecay, clip: clip > 0 ? clip : nil,
                                   dropPath: dropPath, layerDecay: layerDecay, seed: seed, heldOutFraction: heldOut,
                                   validationFraction: validation, accumulate: accumulate, syncBatchNorm: syncBatchnorm,
                                   order: sampleOrder, cycleEpochs: cycleEpochs)
        if excludeHard != nil, shards == nil { throw CLIFailure("[usage] --exclude-hard finds hard samples in --shards") }
        if let excludeHard, !(0...1).contains(excludeHard) { throw CLIFailure("[usage] --exclude-hard must be in 0...1") }
        let excluded = try excludedImages(store)
        let ranks = try DistillCLI.run { try Ranks.communicator() }
        if syncBatchnorm, ranks.size == 1 {
            throw CLIFailure("[usage] --sync-batchnorm synchronises BatchNorm across the ranks of an mpirun job; this process runs alone")
        }
        let rankZero = ranks.rank == 0
        let bar = ProgressBar(enabled: rankZero)
        let stop = StopRequest()
        let signals = SignalStop(stop, alsoOn: ranks.size > 1 ? [SIGUSR1] : [])
        let trainer = try ranks.agreeing("setting up training") { try DistillCLI.run { () throws -> Trainer in
            let views: ViewSource
            if let shards {
                views = .replay(try ShardDataset(directory: shards))
            } else {
                views = .recipe(try NamedRecipe.load(recipe ?? "tinyvit"), seed: seed)
            }
            let targets: TargetSource
            if let teacher, let teacherArch {
                let model = try DistillCLI.loadTeacher(weights: teacher, arch: teacherArch, store: store, imageSize: imageSize)
                targets = .onlineTeacher(TinyViTTeacher(model), name: teacher, k: teacherK)
            } else {
                targets = hardLabels ? .hardLabels : .storedSoftLabels(top: k)
            }
            return try Trainer(store: store, views: views, targets: targets, configuration: config, options: options,
                               runDirectory: out, resume: resume, communicator: ranks, excluding: excluded,
                               evaluationStore: try evalImages.map { try ImageStore(path: $0) })
        } }
        if rankZero, shards != nil, !resume { print("reading the shards in \(sampleOrder)") }
        if rankZero, !excluded.isEmpty, !resume { print("leaving out \(excluded.count) images as training samples") }
        let summary = try DistillCLI.run { () throws -> TrainSummary in
            try trainer.run(stopAfterEpochs: stopAfter, evaluateEvery: evalEvery, stop: stop) { p in
                let done = Double(p.epoch * p.stepsPerEpoch + p.stepInEpoch) / Double(max(1, p.epochs * p.stepsPerEpoch))
                bar.draw(done, String(format: "epoch %d/%d step %d/%d loss %.4f lr %.2e %.0f img/s", p.epoch + 1, p.epochs,
                                      p.stepInEpoch, p.stepsPerEpoch, p.loss, p.learningRate, p.imagesPerSecond))
            }
        }
        bar.finish()
        guard rankZero else {
            if summary.interrupted { throw AgreedFailure(underlying: CLIFailure.exit(128 + (signals.received ?? SIGTERM))) }
            return
        }
        let split = evalImages != nil ? "test" : validation > 0 ? "validation" : "held-out"
        for row in summary.rows where row.top1 != nil {
            let loss = summary.rows.filter { $0.epoch == row.epoch }.map { Double($0.loss) }
            print(String(format: "epoch %d: loss %.4f  %@ top-1 %.2f%%  top-5 %.2f%%", row.epoch + 1,
                         loss.reduce(0, +) / Double(max(loss.count, 1)), split, row.top1! * 100, (row.top5 ?? 0) * 100))
        }
        let busy = summary.stepSeconds
        if busy > 0 {
            var ranksPart = ""
            if summary.ranks > 1 || summary.accumulate > 1 {
                ranksPart = String(format: ", allreduce %.1f%%, waiting for other ranks %.1f%% (%d rank%@ × %d micro-batch%@ of %d)",
                                   100 * summary.allreduceSeconds / busy, 100 * summary.syncSeconds / busy, summary.ranks,
                                   summary.ranks == 1 ? "" : "s", summary.accumulate, summary.accumulate == 1 ? "" : "es",
                                   batch / (summary.ranks * summary.accumulate))
            }
            print(String(format: "step time: data wait %.1f%%, teacher %.1f%%, student %.1f%%%@ (preparation %.1f s on a background thread); training %.1f s wall, %.1f s CPU",
                         100 * summary.waitSeconds / busy, 100 * summary.teacherShare, 100 * summary.computeSeconds / busy, ranksPart,
                         summary.prepareSeconds, summary.trainSeconds, summary.cpuSeconds))
        }
        if summary.interrupted {
            let signal = signals.received
            let cause = signal.map { "interrupted by \(SignalStop.name($0))" } ?? "interrupted by a stop request on another rank"
            print("\(cause) after step \(summary.steps) (epoch \(summary.completedEpochs + 1)); "
                  + "checkpoint written to \(out)/checkpoint; continue with --resume")
            let failure = CLIFailure.exit(128 + (signal ?? SIGTERM))
            if ranks.size > 1 { throw AgreedFailure(underlying: failure) }
            throw failure
        }
        print("run folder: \(out) (\(summary.completedEpochs)/\(epochs) epochs, \(summary.steps) steps)")
    }
}
