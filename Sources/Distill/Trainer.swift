import Augment
import Foundation
import ImageStore
import ShardFormat
import Tensor
import TinyViT

/// Trains a TinyViT (from scratch or a checkpoint) from a ``ViewSource`` and a ``TargetSource`` and
/// writes a run folder: `config.json`, `checkpoint/{model,optimizer}.safetensors` + `checkpoint/state.json`
/// (after every epoch, and mid-epoch when stopped), `model.safetensors` (final), `metrics.csv`, `curves.svg`.
///
/// One optimiser step is three separate stages — `prepareBatch()` (views and targets, including the
/// online teacher), `forwardBackward(_:micro:)` and `update()` — with gradient accumulation and data
/// parallelism between them (`gradientStep(stop:)`, Trainer+Ranks.swift): `options.batchSize` is the global
/// batch of one step, cut into ranks × `options.accumulate` micro-batches (``MicroBatches``).
///
/// With several ranks (a ``Communicator``), every rank runs its own Trainer on its micro-batches; the
/// gradients are averaged with an allreduce, so every rank applies the same update to the same weights.
/// Rank 0 alone writes the run folder (config, checkpoints, metrics, plot, model). The ranks agree after
/// every step on failures and stop requests, so an error or a signal on one rank stops all of them at
/// the same step (``AgreedFailure``; a stop writes the usual resumable checkpoint).
public final class Trainer {
    /// The images trained on (and evaluated on, unless a separate evaluation store was given).
    public let store: ImageStore
    /// Where the augmented views come from (stored parameters or the recipe).
    public let views: ViewSource
    /// Where the soft (or hard) targets come from.
    public let targets: TargetSource
    /// The run's hyper-parameters (checkpointed).
    public let options: TrainOptions
    /// The run folder (config, checkpoints, metrics, model); rank 0 alone writes it.
    public let runDirectory: String
    /// The student being trained.
    public let model: TinyViT
    /// The student's optimiser.
    public let optimizer: AdamW
    /// Which store images are trained and evaluated on.
    public let split: DataSplit
    /// The ranks this trainer runs with (``SingleProcess`` for one).
    public let communicator: Communicator
    /// This rank's micro-batches of each step.
    public let microBatches: MicroBatches
    /// Position: epochs done, batches done in the current epoch, optimiser steps done.
    public internal(set) var completedEpochs = 0
    /// Batches done in the current epoch.
    public internal(set) var stepInEpoch = 0
    /// Optimiser steps done over the whole run.
    public internal(set) var step = 0
    /// Every metrics row so far (checkpointed).
    public internal(set) var rows: [MetricsRow] = []
    /// Training wall seconds over all invocations (evaluation excluded), checkpointed.
    public internal(set) var trainSeconds = 0.0
    /// Optimiser steps per epoch, from the first epoch's plan of streams.
    public private(set) var stepsPerEpoch: Int
    /// A separate store evaluated instead of the held-out split.
    let evaluationStore: ImageStore?
    let map: SampleMap
    let planner: ViewPlanner
    let hard: HardLabels
    let size: Int
    let classes: Int
    private var pipeline: BatchPipeline?
    var timing = StepTiming()
    /// Gradient sums over micro-batches and ranks (nil for one micro-batch in one process).
    let buckets: GradientBuckets?
    /// Synchronised BatchNorm's sums over ranks (nil unless `options.syncBatchNorm` with several ranks).
    let batchNormReducer: RankBatchNormReducer?

    /// A trainer of a student of `configuration` on `store`, starting fresh in `runDirectory`
    /// or, with `resume`, from the run folder's checkpoint; `excluded` store indices are never trained on, and
    /// `evaluationStore` replaces the held-out split for evaluation. Throws ``DistillError`` when the options,
    /// stores, teacher and student disagree (class counts, view size, too few samples for one batch).
    public init(store: ImageStore, views: ViewSource, targets: TargetSource, configuration: TinyViTConfiguration,
                options: TrainOptions, runDirectory: String, resume: Bool = false,
                communicator: Communicator = SingleProcess(), excluding excluded: Set<Int> = [],
                evaluationStore: ImageStore? = nil) throws {
        guard options.epochs >= 1, options.batchSize >= 2 else {
            throw DistillError(.invalidArgument, "epochs must be ≥ 1 and batch ≥ 2 (BatchNorm needs two images)")
        }
        microBatches = try MicroBatches(globalBatch: options.batchSize, ranks: communicator.size, rank: communicator.rank,
                                        accumulate: options.accumulate)
        self.communicator = communicator
        var config = configuration
        config.dropPathRate = options.dropPath
        try config.validate()
        if store.classCount > 0, store.classCount != config.numClasses {
            throw DistillError(.mismatch, "the store has \(store.classCount) classes, the model \(config.numClasses)", file: store.path)
        }
        self.store = store
        if let evaluationStore {
            guard evaluationStore.classCount == config.numClasses else {
                throw DistillError(.mismatch, "the evaluation store has \(evaluationStore.classCount) classes, the model \(config.numClasses)", file: evaluationStore.path)
            }
            guard store.classNames.isEmpty || evaluationStore.classNames.isEmpty || store.classNames == evaluationStore.classNames else {
                throw DistillError(.mismatch, "the evaluation store names its classes \(evaluationStore.classNames.prefix(3).joined(separator: ", "))…, the training store \(store.classNames.prefix(3).joined(separator: ", "))…", file: evaluationStore.path)
            }
        }
        self.evaluationStore = evaluationStore
        self.views = views
        self.targets = targets
        self.options = options
        self.runDirectory = runDirectory
        size = config.imageSize
        classes = config.numClasses
        split = DataSplit(store: store, heldOutFraction: options.heldOutFraction, validationFraction: options.validationFraction)
        switch views {
        case let .replay(dataset):
            try Trainer.check(dataset, classes: config.numClasses, size: size)
            map = try SampleMap(store: store, keys: dataset.keys.loadAll())
        case .recipe:
            if case .storedSoftLabels = targets {
                throw DistillError(.usage, "stored soft labels need replayed shards, not views drawn from a recipe")
            }
            map = try SampleMap(store: store)
        }
        if case let .onlineTeacher(teacher, name, k) = targets {
            guard teacher.numClasses == config.numClasses else {
                throw DistillError(.mismatch, "the teacher has \(teacher.numClasses) classes, the student \(config.numClasses)", file: name)
            }
            guard teacher.imageSize == size else {
                throw DistillError(.mismatch, "the teacher takes \(teacher.imageSize) px views, the student \(size) px", file: name)
            }
            if let k, !(1...min(config.numClasses, ShardSchema.maxK)).contains(k) {
                throw DistillError(.invalidArgument, "teacher k must be in 1...\(min(config.numClasses, ShardSchema.maxK)), got \(k)")
            }
        }
        planner = try ViewPlanner(source: views, store: store, map: map, split: split, size: size, excluded: excluded)
        if case let .record(window) = options.order { planner.cachedBlocks = window + 2 }
        hard = HardLabels(store: store, map: map, classes: classes, size: size)
        model = try TinyViT(config)
        model.initializeWeights(seed: options.seed)
        if options.layerDecay != 1 { model.setLayerLearningRateDecay(options.layerDecay) }
        optimizer = AdamW(learningRate: options.learningRate, weightDecay: options.weightDecay, maxGradientNorm: options.clip)
        buckets = microBatches.perStep > 1 ? GradientBuckets(parameters: model.parameters) : nil
        batchNormReducer = options.syncBatchNorm && communicator.size > 1 ? RankBatchNormReducer(communicator) : nil
        try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        try planner.checkEpochs(options.epochs, cycle: options.cycleEpochs)
        let firstPlan = try planner.streams(epoch: 0, order: options.order, slicing: microBatches, seed: options.seed)
        stepsPerEpoch = firstPlan.steps
        guard stepsPerEpoch >= 1 else {
            throw DistillError(.invalidArgument, "an epoch has too few training samples for one batch of \(options.batchSize)")
        }
        if resume {
            try loadCheckpoint()
        } else if communicator.rank == 0 {
            try ModelArchitecture.write(config, to: runDirectory + "/config.json")
        }
    }

    private static func check(_ dataset: ShardDataset, classes: Int, size: Int) throws {
        guard dataset.manifest.classes == classes else {
            throw DistillError(.mismatch, "the shards have \(dataset.manifest.classes) classes, the model \(classes)", file: dataset.directory)
        }
        for reader in dataset.shards {
            guard case let .params(h, w) = reader.schema.augmentation else {
                throw DistillError(.mismatch, "records carry no augmentation parameters (kind \(reader.schema.augmentation.name))", file: reader.path)
            }
            guard h == size, w == size else {
                throw DistillError(.mismatch, "parameters are for \(h)x\(w) outputs, the model takes \(size)x\(size)", file: reader.path)
            }
        }
        guard !dataset.epochs.isEmpty else { throw DistillError(.empty, "the dataset has no shards", file: dataset.directory) }
    }

    /// Identifies views and targets in a checkpoint.
    var sourceIdentity: String {
        let exclusion = planner.excluded.isEmpty ? "" : "|excluding \(planner.excluded.count) images, " + String(
            planner.excluded.sorted().reduce(UInt64(0xCBF2_9CE4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x0000_0100_0000_01B3 }, radix: 16)
        return views.identity + "|" + targets.identity + exclusion
    }

    /// Warmup then cosine decay over the run's steps, from the options.
    public var schedule: LearningRateSchedule {
        LearningRateSchedule(base: options.learningRate, minimum: options.minLearningRate,
                             warmupSteps: Int((options.warmupEpochs * Double(stepsPerEpoch)).rounded()),
                             totalSteps: options.epochs * stepsPerEpoch)
    }

    func dropPathSeed(_ step: Int) -> UInt64 { options.seed ^ (0xA5A5_0000_0000_0000 &+ UInt64(step) &* 0x9E37_79B9_7F4A_7C15) }

    /// Drop path of micro-batch `number` (``MicroBatches/number(_:)``) of a step: the step's stream for the
    /// first, so one micro-batch per step draws what it always did.
    func dropPathSeed(_ step: Int, microBatch number: Int) -> UInt64 {
        number == 0 ? dropPathSeed(step) : dropPathSeed(step) ^ (UInt64(number) &* 0xD1B5_4A32_D192_ED03)
    }

    // MARK: One optimiser step

    /// Stage 1: the next batch's views and targets (prepared in the background; an online teacher runs here).
    func prepareBatch() throws -> Batch {
        guard let pipeline else { throw DistillError(.internal, "no batch pipeline") }
        let t0 = Date()
        let batch = try pipeline.next()
        let t1 = Date()
        timing.wait += t1.timeIntervalSince(t0)
        if case let .onlineTeacher(teacher, _, k) = targets {
            try OnlineTargets(teacher: teacher, k: k).fill(images: batch.images, into: batch.targets)
            timing.teacher += Date().timeIntervalSince(t1)
        }
        return batch
    }

    /// Stage 2: forward in training mode, soft-target cross entropy, backward (gradients into the model) of
    /// this rank's micro-batch `micro` of the step.
    func forwardBackward(_ batch: Batch, micro: Int) throws -> Float {
        let t0 = Date()
        let reduced = batchNormReducer?.seconds ?? 0
        defer {
            let inReducer = (batchNormReducer?.seconds ?? 0) - reduced
            timing.compute += Date().timeIntervalSince(t0) - inReducer
            timing.allreduce += inReducer
        }
        return try model.lossAndGradients(images: batch.images, targets: batch.targets, training: true,
                                          generator: SplitMix64(seed: dropPathSeed(step, microBatch: microBatches.number(micro))),
                                          batchNormReducer: batchNormReducer).loss
    }

    /// Stage 3: the scheduled learning rate and one AdamW update.
    func update() -> Float {
        let t0 = Date()
        defer { timing.compute += Date().timeIntervalSince(t0) }
        let lr = schedule.rate(step: step)
        optimizer.learningRate = lr
        optimizer.step(model.parameters)
        step += 1
        return lr
    }

    // MARK: Run

    /// Trains until `options.epochs` (or `stopAfterEpochs` more epochs), checkpointing after each epoch;
    /// evaluates every `evaluateEvery` epochs (0: only after the last). When `stop` is requested (on any
    /// rank), finishes the current step, writes a resumable checkpoint (mid-epoch position included) and returns.
    @discardableResult
    public func run(stopAfterEpochs: Int? = nil, evaluateEvery: Int = 1, stop: StopRequest? = nil,
                    progress: ((TrainProgress) -> Void)? = nil) throws -> TrainSummary {
        let started = Date(), cpuStarted = ProcessClock.cpuSeconds()
        let trainSecondsBefore = trainSeconds
        var evaluationSeconds = 0.0, evaluationCPU = 0.0
        var lastEval: Evaluation?
        var interrupted = false
        timing = StepTiming()
        try checkRanksAgree()
        let lastEpoch = min(options.epochs, stopAfterEpochs.map { completedEpochs + $0 } ?? options.epochs)
        let pipeline = BatchPipeline(planner: planner, hard: hard, targets: targets, slicing: microBatches,
                                     stepsPerEpoch: stepsPerEpoch, start: (completedEpochs, stepInEpoch), endEpoch: lastEpoch,
                                     order: options.order, seed: options.seed)
        self.pipeline = pipeline
        defer { self.pipeline = nil }
        func elapsed() -> Double { trainSecondsBefore + Date().timeIntervalSince(started) - evaluationSeconds }
        epochs: while completedEpochs < lastEpoch {
            let epoch = completedEpochs
            while stepInEpoch < stepsPerEpoch {
                let t0 = Date()
                let (loss, stopAgreed) = try gradientStep(stop: stop)
                let lr = update()
                stepInEpoch += 1
                let ips = Double(options.batchSize) / max(Date().timeIntervalSince(t0), 1e-9)
                rows.append(MetricsRow(epoch: epoch, step: step, loss: loss, learningRate: lr, imagesPerSecond: ips))
                progress?(TrainProgress(epoch: epoch, epochs: options.epochs, stepInEpoch: stepInEpoch, stepsPerEpoch: stepsPerEpoch,
                                        loss: loss, learningRate: lr, imagesPerSecond: ips))
                // One process sees a request made up to now (even from `progress`); ranks act on the one
                // they agreed on at this step's agreement point.
                let stopNow = communicator.size == 1 ? stop?.isRequested == true : stopAgreed
                if stopNow, stepInEpoch < stepsPerEpoch {
                    interrupted = true
                    break epochs
                }
            }
            completedEpochs += 1
            stepInEpoch = 0
            let last = completedEpochs == options.epochs
            synchronizeBuffers()
            if last || (evaluateEvery > 0 && completedEpochs % evaluateEvery == 0) {
                let t0 = Date(), cpu0 = ProcessClock.cpuSeconds()
                let e = try evaluateOnRanks()
                evaluationSeconds += Date().timeIntervalSince(t0)
                evaluationCPU += ProcessClock.cpuSeconds() - cpu0
                lastEval = e
                rows[rows.count - 1].top1 = e.top1
                rows[rows.count - 1].top5 = e.top5
                rows[rows.count - 1].trainSeconds = elapsed()
            }
            trainSeconds = elapsed()
            try checkRanksAgree()  // ranks whose weights drifted apart must not checkpoint
            let stopAgreed = try onRankZero("writing the checkpoint", stop: stop) {
                try saveCheckpoint()
                try writeMetrics()
            }
            if stopAgreed, completedEpochs < lastEpoch { interrupted = true; break }
        }
        if interrupted {
            trainSeconds = elapsed()
            synchronizeBuffers()
            _ = try onRankZero("writing the checkpoint", stop: nil) {
                try saveCheckpoint()
                try writeMetrics()
            }
        }
        if completedEpochs == options.epochs {
            _ = try onRankZero("writing the model", stop: nil) {
                try model.save(to: URL(fileURLWithPath: runDirectory + "/model.safetensors"))
            }
        }
        var summary = TrainSummary(completedEpochs: completedEpochs, steps: step, lastEvaluation: lastEval, rows: rows,
                                   waitSeconds: timing.wait, prepareSeconds: pipeline.prepareSeconds, teacherSeconds: timing.teacher,
                                   computeSeconds: timing.compute, trainSeconds: elapsed() - trainSecondsBefore,
                                   evaluationSeconds: evaluationSeconds,
                                   cpuSeconds: ProcessClock.cpuSeconds() - cpuStarted - evaluationCPU, interrupted: interrupted)
        summary.syncSeconds = timing.sync
        summary.allreduceSeconds = timing.allreduce
        summary.ranks = communicator.size
        summary.accumulate = options.accumulate
        return summary
    }

    /// Where evaluation reads: every image of a separate store (a real test set), or the training store's held-out
    /// (or validation) split.
    var evaluationImages: (store: ImageStore, indices: [Int]) {
        if let evaluationStore { return (evaluationStore, Array(0..<evaluationStore.count)) }
        return (store, split.evaluation)
    }

    /// Top-1 / top-5 on the evaluation images with the evaluation transform.
    public func evaluate() throws -> Evaluation {
        try Trainer.evaluate(model: model, store: evaluationImages.store, indices: evaluationImages.indices, batchSize: options.evalBatchSize)
    }

    // MARK: Metrics

    func writeMetrics() throws {
        try MetricsOutput.csv(rows).write(toFile: runDirectory + "/metrics.csv", atomically: true, encoding: .utf8)
        try MetricsOutput.svg(rows).write(toFile: runDirectory + "/curves.svg", atomically: true, encoding: .utf8)
    }
}

/// Where a run's step time went (this invocation).
struct StepTiming {
    var wait = 0.0
    var teacher = 0.0
    var compute = 0.0
    /// At the per-step agreement point (waiting for the slowest rank).
    var sync = 0.0
    /// In the gradient allreduce and synchronised BatchNorm's sums.
    var allreduce = 0.0
}
