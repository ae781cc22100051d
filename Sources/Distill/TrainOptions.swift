import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The hyper-parameters of one training run (checkpointed: a resume must use the same ones).
public struct TrainOptions: Codable, Sendable, Equatable {
    /// Epochs to train.
    public var epochs: Int
    /// Images per optimiser step over all ranks (the global batch).
    public var batchSize: Int
    /// Peak learning rate of AdamW, after warmup.
    public var learningRate: Float
    /// The learning rate the cosine schedule decays to.
    public var minLearningRate: Float
    /// Epochs of linear warmup (fractions allowed; converted to steps).
    public var warmupEpochs: Double
    /// AdamW's decoupled weight decay.
    public var weightDecay: Float
    /// Gradient-norm clip; nil for none.
    public var clip: Float?
    /// Stochastic depth (drop path) rate of the student, 0 for none (TinyViT's `drop_path_rate`).
    public var dropPath: Float
    /// Layer-wise learning-rate decay; 1 for none.
    public var layerDecay: Float
    /// The run's seed: the student's initialisation, the epoch orders and the drop-path draws derive from it.
    public var seed: UInt64
    /// The held-out split (by key hash, ``DataSplit``): never trained on, never used to choose anything.
    public var heldOutFraction: Double
    /// > 0: evaluate on this validation part of the training split instead of the held-out split (and
    /// train without it) — for choosing hyper-parameters.
    public var validationFraction: Double
    /// Images per evaluation forward.
    public var evalBatchSize: Int
    /// Micro-batches per optimiser step in each process: `batchSize` is always the global batch of one step,
    /// split into ranks × accumulate micro-batches of equal size, in order (``MicroBatches``); gradients
    /// are averaged over all of them (the mean over the global batch), then clipped once and applied once.
    public var accumulate: Int
    /// With several ranks: BatchNorm normalises with statistics over the whole global batch (PyTorch's
    /// `SyncBatchNorm`) instead of each rank's micro-batch (DDP's default).
    public var syncBatchNorm: Bool
    /// The order a run reads each epoch's samples in (Spec/RECORD-ORDER.md by default).
    public var order: SampleOrder
    /// Train for more epochs than the dataset stores by reading its epochs again in order (epoch e reads
    /// stored epoch e mod S); without it, such a run is refused naming the stored count.
    public var cycleEpochs: Bool

    /// Options with the CLI's defaults.
    public init(epochs: Int = 10, batchSize: Int = 32, learningRate: Float = 1e-3, minLearningRate: Float = 1e-5,
                warmupEpochs: Double = 1, weightDecay: Float = 0.05, clip: Float? = 5, dropPath: Float = 0,
                layerDecay: Float = 1, seed: UInt64 = 0, heldOutFraction: Double = 0.2, validationFraction: Double = 0,
                evalBatchSize: Int = 64, accumulate: Int = 1, syncBatchNorm: Bool = false,
                order: SampleOrder = .record(window: 0), cycleEpochs: Bool = false) {
        self.epochs = epochs; self.batchSize = batchSize; self.learningRate = learningRate
        self.minLearningRate = minLearningRate; self.warmupEpochs = warmupEpochs; self.weightDecay = weightDecay
        self.clip = clip; self.dropPath = dropPath; self.layerDecay = layerDecay; self.seed = seed
        self.heldOutFraction = heldOutFraction; self.validationFraction = validationFraction; self.evalBatchSize = evalBatchSize
        self.accumulate = accumulate; self.syncBatchNorm = syncBatchNorm
        self.order = order; self.cycleEpochs = cycleEpochs
    }

    private enum CodingKeys: String, CodingKey {
        case epochs, batchSize, learningRate, minLearningRate, warmupEpochs, weightDecay, clip, dropPath, layerDecay, seed
        case heldOutFraction, validationFraction, evalBatchSize, accumulate, syncBatchNorm, order, cycleEpochs
    }

    /// Checkpoints written before `accumulate`, `syncBatchNorm`, `order` and `cycleEpochs` existed resume as
    /// 1, false, stored order and false (what those runs did in one process).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(epochs: try c.decode(Int.self, forKey: .epochs), batchSize: try c.decode(Int.self, forKey: .batchSize),
                  learningRate: try c.decode(Float.self, forKey: .learningRate),
                  minLearningRate: try c.decode(Float.self, forKey: .minLearningRate),
                  warmupEpochs: try c.decode(Double.self, forKey: .warmupEpochs),
                  weightDecay: try c.decode(Float.self, forKey: .weightDecay), clip: try c.decodeIfPresent(Float.self, forKey: .clip),
                  dropPath: try c.decode(Float.self, forKey: .dropPath), layerDecay: try c.decode(Float.self, forKey: .layerDecay),
                  seed: try c.decode(UInt64.self, forKey: .seed), heldOutFraction: try c.decode(Double.self, forKey: .heldOutFraction),
                  validationFraction: try c.decode(Double.self, forKey: .validationFraction),
                  evalBatchSize: try c.decode(Int.self, forKey: .evalBatchSize),
                  accumulate: try c.decodeIfPresent(Int.self, forKey: .accumulate) ?? 1,
                  syncBatchNorm: try c.decodeIfPresent(Bool.self, forKey: .syncBatchNorm) ?? false,
                  order: try c.decodeIfPresent(SampleOrder.self, forKey: .order) ?? .record(window: 0),
                  cycleEpochs: try c.decodeIfPresent(Bool.self, forKey: .cycleEpochs) ?? false)
    }
}

/// One row of the metrics: a training step, with the evaluation filled in on an evaluated epoch's last step.
public struct MetricsRow: Codable, Sendable, Equatable {
    /// The epoch the step belongs to (0-based).
    public var epoch: Int
    /// The optimiser step, counted over the whole run.
    public var step: Int
    /// The step's training loss (the mean of its micro-batches' mean losses).
    public var loss: Float
    /// The learning rate the step used.
    public var learningRate: Float
    /// Training throughput of the step, images per second over all ranks.
    public var imagesPerSecond: Double
    /// Top-1 accuracy on the evaluation split, 0...1, on evaluated rows.
    public var top1: Double?
    /// Top-5 accuracy on the evaluation split, 0...1, on evaluated rows.
    public var top5: Double?
    /// Training wall seconds up to this evaluation (evaluation time excluded), on evaluated rows.
    public var trainSeconds: Double?
}

/// Accuracy on an evaluation split.
public struct Evaluation: Sendable, Equatable {
    /// Fraction of images whose label is the top prediction, 0...1.
    public var top1: Double
    /// Fraction of images whose label is among the top 5 predictions, 0...1.
    public var top5: Double
    /// Images evaluated.
    public var count: Int
}

/// What a run reports when it stops.
public struct TrainSummary: Sendable {
    /// Epochs finished, over all invocations.
    public var completedEpochs: Int
    /// Optimiser steps done, over all invocations.
    public var steps: Int
    /// The last evaluation, if any epoch was evaluated.
    public var lastEvaluation: Evaluation?
    /// Every metrics row, over all invocations.
    public var rows: [MetricsRow]
    /// Seconds the steps waited for a prepared batch; seconds spent preparing on the background thread
    /// (decode, augment, stored labels); seconds in the online teacher's forward; seconds in the student's
    /// forward/backward/update. All of this invocation only.
    public var waitSeconds: Double
    /// Seconds preparing batches on the background thread (see ``waitSeconds``).
    public var prepareSeconds: Double
    /// Seconds in the online teacher's forward (see ``waitSeconds``).
    public var teacherSeconds: Double
    /// Seconds in the student's forward, backward and update (see ``waitSeconds``).
    public var computeSeconds: Double
    /// Seconds at the per-step agreement point (a tiny allreduce: waiting there is waiting for the slowest
    /// rank) and in the gradient allreduce (plus synchronised BatchNorm's sums); 0 for one process.
    public var syncSeconds: Double = 0
    /// Seconds in the gradient allreduce and synchronised BatchNorm's sums (see ``syncSeconds``).
    public var allreduceSeconds: Double = 0
    /// Processes (ranks) and micro-batches per rank of the run.
    public var ranks: Int = 1
    /// Micro-batches per rank per step.
    public var accumulate: Int = 1
    /// Wall seconds of training in this invocation, evaluation excluded; seconds evaluating.
    public var trainSeconds: Double
    /// Wall seconds evaluating (see ``trainSeconds``).
    public var evaluationSeconds: Double
    /// Process CPU seconds (all threads) of this invocation, evaluations excluded.
    public var cpuSeconds: Double
    /// True when a stop request ended the run early (a resumable checkpoint was written).
    public var interrupted: Bool

    /// Step time: waiting for data, the online teacher, the student's compute, agreement and allreduce.
    public var stepSeconds: Double { waitSeconds + teacherSeconds + computeSeconds + syncSeconds + allreduceSeconds }

    /// The online teacher's share of step time (0 without one).
    public var teacherShare: Double {
        let busy = stepSeconds
        return busy > 0 ? teacherSeconds / busy : 0
    }
}

/// Progress after each step.
public struct TrainProgress: Sendable {
    /// The current epoch (0-based).
    public var epoch: Int
    /// Epochs the run trains for.
    public var epochs: Int
    /// Steps done in the current epoch.
    public var stepInEpoch: Int
    /// Optimiser steps per epoch.
    public var stepsPerEpoch: Int
    /// The step's loss.
    public var loss: Float
    /// The step's learning rate.
    public var learningRate: Float
    /// Images per second of the step, over all ranks.
    public var imagesPerSecond: Double
}

/// A request to stop after the current step (set from a signal handler's queue, read by the loop).
public final class StopRequest: @unchecked Sendable {
    private let lock = NSLock()
    private var requested = false
    /// No stop requested yet.
    public init() {}
    /// Asks the run to stop after its current step (thread-safe; callable from a signal-handling queue).
    public func request() { lock.lock(); requested = true; lock.unlock() }
    /// True once ``request()`` was called.
    public var isRequested: Bool { lock.lock(); defer { lock.unlock() }; return requested }
}

#if canImport(Glibc)
private let RUSAGE_SELF_WHO = __rusage_who_t(RUSAGE_SELF.rawValue)
#else
private let RUSAGE_SELF_WHO = RUSAGE_SELF
#endif

/// CPU time of this process.
enum ProcessClock {
    /// User + system CPU seconds of all threads so far.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF_WHO, &usage) == 0 else { return 0 }
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}
