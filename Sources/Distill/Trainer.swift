import Augment
import Foundation
import ImageStore
import ShardFormat
import Tensor
import TinyViT

/// Where training samples come from.
public enum TrainingSource {
    /// Records of a dataset folder, in shard order; student epoch e reads the dataset's epoch
    /// `epochs[e % epochs.count]`. Each record's stored parameters are replayed; the target is the dense
    /// soft label, or the store's one-hot label when `hardLabels`.
    case shards(ShardDataset, hardLabels: Bool)
    /// Parameters drawn on the fly from (seed, epoch, sample) with hard labels, samples in a seeded
    /// shuffled order: for training a teacher before any shard exists.
    case onTheFly(recipe: AugmentationRecipe, seed: UInt64)
}

public struct TrainOptions: Codable, Sendable, Equatable {
    public var epochs: Int
    public var batchSize: Int
    public var learningRate: Float
    public var minLearningRate: Float
    public var warmupEpochs: Double
    public var weightDecay: Float
    /// Gradient-norm clip; nil for none.
    public var clip: Float?
    public var dropPath: Float
    /// Layer-wise learning-rate decay; 1 for none.
    public var layerDecay: Float
    public var seed: UInt64
    public var heldOutFraction: Double
    public var evalBatchSize: Int

    public init(epochs: Int = 10, batchSize: Int = 32, learningRate: Float = 1e-3, minLearningRate: Float = 1e-5,
                warmupEpochs: Double = 1, weightDecay: Float = 0.05, clip: Float? = 5, dropPath: Float = 0,
                layerDecay: Float = 1, seed: UInt64 = 0, heldOutFraction: Double = 0.2, evalBatchSize: Int = 64) {
        self.epochs = epochs; self.batchSize = batchSize; self.learningRate = learningRate
        self.minLearningRate = minLearningRate; self.warmupEpochs = warmupEpochs; self.weightDecay = weightDecay
        self.clip = clip; self.dropPath = dropPath; self.layerDecay = layerDecay; self.seed = seed
        self.heldOutFraction = heldOutFraction; self.evalBatchSize = evalBatchSize
    }
}

/// One row of the metrics: a training step, with the evaluation filled in on an epoch's last step.
public struct MetricsRow: Codable, Sendable, Equatable {
    public var epoch: Int
    public var step: Int
    public var loss: Float
    public var learningRate: Float
    public var imagesPerSecond: Double
    public var top1: Double?
    public var top5: Double?
}

public struct Evaluation: Sendable, Equatable {
    public var top1: Double
    public var top5: Double
    public var count: Int
}

/// What a run reports when it stops.
public struct TrainSummary: Sendable {
    public var completedEpochs: Int
    public var steps: Int
    public var lastEvaluation: Evaluation?
    public var rows: [MetricsRow]
    /// Seconds spent preparing batches (decode, augment, labels) that the step had to wait for, and in
    /// total on the preparation thread; seconds in forward/backward/update.
    public var waitSeconds: Double
    public var prepareSeconds: Double
    public var computeSeconds: Double
}

/// Progress after each step.
public struct TrainProgress: Sendable {
    public var epoch: Int
    public var epochs: Int
    public var stepInEpoch: Int
    public var stepsPerEpoch: Int
    public var loss: Float
    public var learningRate: Float
    public var imagesPerSecond: Double
}

private struct CheckpointState: Codable {
    var format = "tinyshard-distill-checkpoint"
    var completedEpochs: Int
    var step: Int
    var options: TrainOptions
    var configuration: TinyViTConfiguration
    var source: String
    /// Drop path draws from SplitMix64(seed: dropPathSeed(step)): the generator state is a function of
    /// the position, so the position is the whole RNG state.
    var rngSeed: UInt64
    var rows: [MetricsRow]
}

/// Trains a TinyViT (from scratch or a checkpoint) and writes a run folder:
/// `config.json`, `checkpoint/{model,optimizer}.safetensors` + `checkpoint/state.json` (after every epoch),
/// `model.safetensors` (final), `metrics.csv`, `curves.svg`.
public final class Trainer {
    public let store: ImageStore
    public let source: TrainingSource
    public let options: TrainOptions
    public let runDirectory: String
    public let model: TinyViT
    public let optimizer: AdamW
    public private(set) var completedEpochs = 0
    public private(set) var step = 0
    public private(set) var rows: [MetricsRow] = []
    private let map: SampleMap
    private let split: HeldOutSplit
    private let heldOut: Set<Int>
    private let augmenter: Augmenter
    private let size: Int
    private let classes: Int
    public private(set) var stepsPerEpoch: Int

    public init(store: ImageStore, source: TrainingSource, configuration: TinyViTConfiguration, options: TrainOptions,
                runDirectory: String, resume: Bool = false) throws {
        guard options.epochs >= 1, options.batchSize >= 2 else {
            throw DistillError("[invalid_argument] epochs must be ≥ 1 and batch ≥ 2 (BatchNorm needs two images)")
        }
        var config = configuration
        config.dropPathRate = options.dropPath
        try config.validate()
        if store.classCount > 0, store.classCount != config.numClasses {
            throw DistillError("\(store.path): [mismatch] the store has \(store.classCount) classes, the model \(config.numClasses)")
        }
        self.store = store
        self.source = source
        self.options = options
        self.runDirectory = runDirectory
        size = config.imageSize
        classes = config.numClasses
        augmenter = Augmenter(outputWidth: size, outputHeight: size)
        split = store.split(heldOutFraction: options.heldOutFraction)
        heldOut = Set(split.heldOut)
        switch source {
        case let .shards(dataset, _):
            guard dataset.manifest.classes == config.numClasses else {
                throw DistillError("\(dataset.directory): [mismatch] the shards have \(dataset.manifest.classes) classes, the model \(config.numClasses)")
            }
            for reader in dataset.shards {
                guard case let .params(h, w) = reader.schema.augmentation else {
                    throw DistillError("\(reader.path): [mismatch] records carry no augmentation parameters (kind \(reader.schema.augmentation.name))")
                }
                guard h == size, w == size else {
                    throw DistillError("\(reader.path): [mismatch] parameters are for \(h)x\(w) outputs, the model takes \(size)x\(size)")
                }
            }
            guard !dataset.epochs.isEmpty else { throw DistillError("\(dataset.directory): [empty] the dataset has no shards") }
            map = try SampleMap(store: store, keys: dataset.keys)
        case .onTheFly:
            map = try SampleMap(store: store)
        }
        model = try TinyViT(config)
        model.initializeWeights(seed: options.seed)
        if options.layerDecay != 1 { model.setLayerLearningRateDecay(options.layerDecay) }
        optimizer = AdamW(learningRate: options.learningRate, weightDecay: options.weightDecay, maxGradientNorm: options.clip)
        try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        stepsPerEpoch = 0
        let firstPlan = try plan(epoch: 0)
        stepsPerEpoch = firstPlan.count / options.batchSize
        guard stepsPerEpoch >= 1 else {
            throw DistillError("[invalid_argument] an epoch has \(firstPlan.count) training samples, fewer than one batch of \(options.batchSize)")
        }
        if resume { try loadCheckpoint() } else { try ModelArchitecture.write(config, to: runDirectory + "/config.json") }
    }

    private var sourceName: String {
        switch source {
        case let .shards(dataset, hard): return (hard ? "shards-hard:" : "shards:") + dataset.directory
        case let .onTheFly(_, seed): return "on-the-fly:\(seed)"
        }
    }

    public var schedule: LearningRateSchedule {
        LearningRateSchedule(base: options.learningRate, minimum: options.minLearningRate,
                             warmupSteps: Int((options.warmupEpochs * Double(stepsPerEpoch)).rounded()),
                             totalSteps: options.epochs * stepsPerEpoch)
    }

    // MARK: Plans

    /// One sample of an epoch: where its parameters and label come from.
    private struct Item {
        var storeIndex: Int
        var shard: Int
        var ordinal: Int
    }

    private func shardEpochReaders(_ epoch: Int) -> [ShardReader] {
        guard case let .shards(dataset, _) = source else { return [] }
        let epochs = dataset.epochs
        return dataset.shards(epoch: epochs[epoch % epochs.count]).sorted { $0.schema.rank < $1.schema.rank }
    }

    /// The epoch's samples in reading order, held-out images left out.
    private func plan(epoch: Int) throws -> [Item] {
        switch source {
        case .shards:
            var items: [Item] = []
            for (s, reader) in shardEpochReaders(epoch).enumerated() {
                let cursor = reader.makeCursor()
                for ordinal in 0..<reader.recordCount {
                    let id = Int(try naming(ordinal, reader) { try cursor.sampleID(at: ordinal) })
                    guard id < map.storeIndex.count, map.storeIndex[id] >= 0 else {
                        throw ShardError(.indexOutOfRange, "sample id \(id) is not an image of \(store.path)",
                                         at: ShardLocation(file: reader.path, record: ordinal, sampleID: UInt32(id)))
                    }
                    let index = map.storeIndex[id]
                    if !heldOut.contains(index) { items.append(Item(storeIndex: index, shard: s, ordinal: ordinal)) }
                }
            }
            return items
        case let .onTheFly(_, seed):
            return TeacherPass.epochOrder(trainIndices: split.train, seed: seed, epoch: epoch)
                .map { Item(storeIndex: $0, shard: -1, ordinal: -1) }
        }
    }

    /// Runs `body`, adding the file and record to a ShardError that lacks them.
    private func naming<T>(_ ordinal: Int, _ reader: ShardReader, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as ShardError {
            var location = error.location
            if location.file == nil { location.file = reader.path }
            if location.record == nil { location.record = ordinal }
            throw ShardError(error.code, error.message, at: location)
        }
    }

    // MARK: Batches

    private struct Batch {
        var images: Tensor
        var targets: Tensor
    }

    /// Decodes parameters, replays them on the store's images and builds the targets.
    private func prepare(_ items: ArraySlice<Item>, epoch: Int, cursors: [ShardCursor], sampler: AugmentationSampler?) throws -> Batch {
        let n = items.count
        let plane = 3 * size * size
        let images = Tensor(zeros: [n, 3, size, size])
        let targets = Tensor(zeros: [n, classes])
        for (row, item) in items.enumerated() {
            let parameters: AugmentationParameters
            if let sampler {
                parameters = try TeacherPass.drawParameters(sampler: sampler, store: store, map: map, epoch: epoch, index: item.storeIndex)
            } else {
                let reader = cursors[item.shard].reader
                let record = try naming(item.ordinal, reader) { try cursors[item.shard].record(at: item.ordinal) }
                do {
                    parameters = try record.augmentation.withUnsafeBytes {
                        try AugmentationParameters(code: $0, outputHeight: size, outputWidth: size)
                    }
                } catch let error as ShardError {
                    throw ShardError(error.code, error.message, at: ShardLocation(file: reader.path, record: item.ordinal, sampleID: record.sampleID))
                }
            }
            let out = UnsafeMutableBufferPointer(start: images.pointer + row * plane, count: plane)
            try ImagePreparation.render(parameters, store: store, index: item.storeIndex, map: map, augmenter: augmenter, into: out)
            let target = UnsafeMutableBufferPointer(start: targets.pointer + row * classes, count: classes)
            if case let .shards(_, hard) = source, !hard {
                try naming(item.ordinal, cursors[item.shard].reader) { try cursors[item.shard].dense([item.ordinal], into: target) }
            } else {
                try hardTarget(parameters, index: item.storeIndex, into: target)
            }
        }
        return Batch(images: images, targets: targets)
    }

    /// One-hot of the store label, mixed like the image when the parameters mix (cutmix: by box area).
    private func hardTarget(_ parameters: AugmentationParameters, index: Int, into target: UnsafeMutableBufferPointer<Float>) throws {
        func label(_ i: Int) throws -> Int {
            let l = try store.label(at: i)
            guard (0..<classes).contains(l) else {
                throw DistillError("\(store.path): [no_label] image \(i) (\(try store.key(at: i))) has no label in 0..<\(classes)")
            }
            return l
        }
        let own = try label(index)
        guard let mix = parameters.mix else { target[own] = 1; return }
        var lambda = Float(mix.lambda)
        if mix.mode == .cutmix, let box = mix.box {
            lambda = 1 - Float(Int(box.width) * Int(box.height)) / Float(size * size)
        }
        target[own] += lambda
        target[try label(map.storeIndex[Int(mix.partner)])] += 1 - lambda
    }

    // MARK: Run

    private func dropPathSeed(_ step: Int) -> UInt64 { options.seed ^ (0xA5A5_0000_0000_0000 &+ UInt64(step) &* 0x9E37_79B9_7F4A_7C15) }

    /// Trains until `options.epochs` (or `stopAfterEpochs` more epochs), checkpointing after each epoch.
    @discardableResult
    public func run(stopAfterEpochs: Int? = nil, evaluateEachEpoch: Bool = true,
                    progress: ((TrainProgress) -> Void)? = nil) throws -> TrainSummary {
        var lastEval: Evaluation?
        var wait = 0.0, prepareTime = 0.0, compute = 0.0
        let lastEpoch = min(options.epochs, stopAfterEpochs.map { completedEpochs + $0 } ?? options.epochs)
        let sampler: AugmentationSampler?
        if case let .onTheFly(recipe, seed) = source {
            sampler = try AugmentationSampler(runSeed: seed, recipe: recipe, outputWidth: size, outputHeight: size)
        } else {
            sampler = nil
        }
        let queue = DispatchQueue(label: "tinyshard.distill.prepare")
        while completedEpochs < lastEpoch {
            let epoch = completedEpochs
            let items = try plan(epoch: epoch)
            let cursors = shardEpochReaders(epoch).map { $0.makeCursor(cachedBlocks: 2) }
            let steps = min(stepsPerEpoch, items.count / options.batchSize)
            // Prepare batch b + 1 on a background thread while batch b trains.
            final class Slot: @unchecked Sendable { var result: Result<Batch, Error>?; var seconds = 0.0 }
            func launch(_ b: Int) -> (DispatchGroup, Slot) {
                let group = DispatchGroup(), slot = Slot()
                let slice = items[(b * options.batchSize)..<((b + 1) * options.batchSize)]
                queue.async(group: group) {
                    let t0 = Date()
                    slot.result = Result { try self.prepare(slice, epoch: epoch, cursors: cursors, sampler: sampler) }
                    slot.seconds = Date().timeIntervalSince(t0)
                }
                return (group, slot)
            }
            // Two batches in flight: the serial queue keeps the cursors single-threaded.
            var pending = (0..<min(2, steps)).map(launch)
            var epochLoss = 0.0
            for b in 0..<steps {
                let t0 = Date()
                let (group, slot) = pending.removeFirst()
                group.wait()
                let batch = try slot.result!.get()
                prepareTime += slot.seconds
                if b + 2 < steps { pending.append(launch(b + 2)) }
                let t1 = Date()
                let lr = schedule.rate(step: step)
                optimizer.learningRate = lr
                let (loss, _, _) = try model.lossAndGradients(images: batch.images, targets: batch.targets, training: true,
                                                              generator: SplitMix64(seed: dropPathSeed(step)))
                optimizer.step(model.parameters)
                let t2 = Date()
                wait += t1.timeIntervalSince(t0)
                compute += t2.timeIntervalSince(t1)
                step += 1
                epochLoss += Double(loss)
                let ips = Double(options.batchSize) / max(t2.timeIntervalSince(t0), 1e-9)
                rows.append(MetricsRow(epoch: epoch, step: step, loss: loss, learningRate: lr, imagesPerSecond: ips))
                progress?(TrainProgress(epoch: epoch, epochs: options.epochs, stepInEpoch: b + 1, stepsPerEpoch: steps,
                                        loss: loss, learningRate: lr, imagesPerSecond: ips))
            }
            if evaluateEachEpoch || epoch + 1 == options.epochs {
                let e = try evaluate()
                lastEval = e
                if !rows.isEmpty { rows[rows.count - 1].top1 = e.top1; rows[rows.count - 1].top5 = e.top5 }
            }
            completedEpochs += 1
            try saveCheckpoint()
            try writeMetrics()
        }
        if completedEpochs == options.epochs { try model.save(to: URL(fileURLWithPath: runDirectory + "/model.safetensors")) }
        return TrainSummary(completedEpochs: completedEpochs, steps: step, lastEvaluation: lastEval, rows: rows,
                            waitSeconds: wait, prepareSeconds: prepareTime, computeSeconds: compute)
    }

    /// Top-1 / top-5 on the held-out split with the evaluation transform (plain resize).
    public func evaluate() throws -> Evaluation {
        try Trainer.evaluate(model: model, store: store, indices: split.heldOut, batchSize: options.evalBatchSize)
    }

    public static func evaluate(model: TinyViT, store: ImageStore, indices: [Int], batchSize: Int = 64) throws -> Evaluation {
        let size = model.configuration.imageSize, classes = model.configuration.numClasses
        let augmenter = Augmenter(outputWidth: size, outputHeight: size)
        let plane = 3 * size * size
        var top1 = 0, top5 = 0, count = 0
        var position = 0
        while position < indices.count {
            let batch = Array(indices[position..<min(indices.count, position + max(1, batchSize))])
            position += batch.count
            let images = Tensor(zeros: [batch.count, 3, size, size])
            var labels: [Int] = []
            for (row, index) in batch.enumerated() {
                let image = try store.image(at: index)
                try augmenter.renderNormalized(ImagePreparation.evalView(width: image.width, height: image.height), source: image,
                                               into: UnsafeMutableBufferPointer(start: images.pointer + row * plane, count: plane))
                labels.append(try store.label(at: index))
            }
            let logits = try model.forward(images, context: ForwardContext(training: false, recordsGradients: false))
            for (row, label) in labels.enumerated() where (0..<classes).contains(label) {
                let r = Probabilities.rank(of: label, in: UnsafeBufferPointer(start: logits.pointer + row * classes, count: classes))
                if r == 0 { top1 += 1 }
                if r < 5 { top5 += 1 }
                count += 1
            }
        }
        guard count > 0 else { return Evaluation(top1: 0, top5: 0, count: 0) }
        return Evaluation(top1: Double(top1) / Double(count), top5: Double(top5) / Double(count), count: count)
    }

    // MARK: Checkpoints

    private var checkpointDirectory: String { runDirectory + "/checkpoint" }

    private func saveCheckpoint() throws {
        let temporary = runDirectory + "/checkpoint.partial"
        let fm = FileManager.default
        try? fm.removeItem(atPath: temporary)
        try fm.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        try model.save(to: URL(fileURLWithPath: temporary + "/model.safetensors"))
        try optimizer.stateDict().write(to: URL(fileURLWithPath: temporary + "/optimizer.safetensors"))
        let state = CheckpointState(completedEpochs: completedEpochs, step: step, options: options,
                                    configuration: model.configuration, source: sourceName, rngSeed: dropPathSeed(step), rows: rows)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(state).write(to: URL(fileURLWithPath: temporary + "/state.json"))
        // Swap in the new checkpoint: the previous one stays until the new one is complete.
        let previous = runDirectory + "/checkpoint.previous"
        try? fm.removeItem(atPath: previous)
        if fm.fileExists(atPath: checkpointDirectory) { try fm.moveItem(atPath: checkpointDirectory, toPath: previous) }
        try fm.moveItem(atPath: temporary, toPath: checkpointDirectory)
        try? fm.removeItem(atPath: previous)
    }

    private func loadCheckpoint() throws {
        let path = checkpointDirectory + "/state.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DistillError("\(path): [io] no checkpoint to resume from")
        }
        let state: CheckpointState
        do { state = try JSONDecoder().decode(CheckpointState.self, from: data) } catch {
            throw DistillError("\(path): [bad_checkpoint] \(error)")
        }
        guard state.configuration == model.configuration else {
            throw DistillError("\(path): [mismatch] the checkpoint is of another architecture")
        }
        var saved = state.options, wanted = options
        saved.epochs = 0; wanted.epochs = 0
        guard saved == wanted, state.options.epochs == options.epochs else {
            throw DistillError("\(path): [mismatch] the checkpoint was trained with other options; resume with the same ones")
        }
        guard state.source == sourceName else {
            throw DistillError("\(path): [mismatch] the checkpoint was trained from \(state.source), not \(sourceName)")
        }
        let weights = checkpointDirectory + "/model.safetensors"
        try model.load(contentsOf: URL(fileURLWithPath: weights))
        let optimizerPath = checkpointDirectory + "/optimizer.safetensors"
        try optimizer.load(SafeTensors(contentsOf: URL(fileURLWithPath: optimizerPath)), parameters: model.parameters, source: optimizerPath)
        completedEpochs = state.completedEpochs
        step = state.step
        rows = state.rows
    }

    // MARK: Metrics

    private func writeMetrics() throws {
        try MetricsOutput.csv(rows).write(toFile: runDirectory + "/metrics.csv", atomically: true, encoding: .utf8)
        try MetricsOutput.svg(rows).write(toFile: runDirectory + "/curves.svg", atomically: true, encoding: .utf8)
    }
}
