import Augment
import Foundation
import ImageStore
import ShardFormat
import Tensor
import TinyViT

// # Distill: the teacher pass and student training
//
// - ``TeacherPass`` draws augmentation parameters (``RecipeViews``: an ``AugmentationSampler`` whose mix
//   partners are training images only), applies them (``Augmenter``, normalised float CHW), runs a
//   TinyViT teacher in eval mode, keeps the softmax's top-K and writes one shard per epoch
//   (``DatasetWriter``), records in a seeded shuffled order so a student reading a shard front to back
//   sees a shuffled epoch. The recipe's name and SHA-256 go into the shards' provenance.
// - ``Trainer`` composes a ``ViewSource`` (replay stored parameters | draw them from a recipe — the
//   same views for the pass's recipe and seed) with a ``TargetSource`` (hard labels | stored soft labels
//   | an online teacher, optionally cut to its top-K exactly as a stored record). One optimiser step is
//   prepare batch → forward/backward → update. Batches are prepared on a background thread, continuing
//   across epochs; soft-target cross entropy, AdamW with TinyViT's groups, warmup + cosine per step,
//   evaluation on the held-out (or validation) split (``DataSplit``), a checkpoint per epoch and on a
//   stop request (mid-epoch), bit-exact resume, metrics CSV and an SVG plot.
// - Past one process: both take a ``Communicator`` (``SingleProcess`` by default; DistillMPI's over MPI).
//   The pass deals each epoch to ranks as a DistributedSampler (``DistributedShare``); the trainer cuts the
//   epoch into ranks × `accumulate` micro-batch streams (``EpochStreams``, ``MicroBatches``), sums gradients in buckets
//   (``GradientBuckets``) and agrees with the other ranks after every step on failures and stop requests
//   (``AgreedFailure``), so that one rank's error or signal stops all of them cleanly.
// - Resumable passes (Spec/PASS.md): ``TeacherPassFolder`` (pass.json, the checks before writing),
//   ``RankShard`` (a rank's shard of an epoch, continued from a crash or a stop).
// - The main job, its reports and the analyses live in the Reports target, on top of this one.
//
// Sample ids are the dataset key table's ids; the image store's keys are strictly ascending, so the
// key table (sorted the same way) maps id i to store image i — checked, not assumed (``SampleMap``).

/// Model configurations by name ("5m", "11m", "21m") or from a JSON file (timm's keys).
public enum ModelArchitecture {
    public static func configuration(_ spec: String, numClasses: Int? = nil) throws -> TinyViTConfiguration {
        var config: TinyViTConfiguration
        if let named = TinyViTConfiguration.named(spec) {
            config = named
        } else {
            guard let data = FileManager.default.contents(atPath: spec) else {
                throw DistillError(.io, "not a named architecture (5m, 11m, 21m) nor a readable JSON file", file: spec)
            }
            do { config = try TinyViTConfiguration(json: data) } catch { throw DistillError(.badConfig, "\(error)", file: spec) }
        }
        if let numClasses { config.numClasses = numClasses }
        do { try config.validate() } catch { throw DistillError(.badConfig, "\(error)", file: spec) }
        return config
    }

    public static func write(_ config: TinyViTConfiguration, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(config).write(to: URL(fileURLWithPath: path))
    }
}

/// Maps sample ids (key-table ids) to image-store indices and back.
public struct SampleMap: Sendable {
    public let keys: KeyTable
    /// storeIndex[sampleID]
    public let storeIndex: [Int]
    /// sampleID[storeIndex]
    public let sampleID: [UInt32]

    public init(store: ImageStore, keys: KeyTable? = nil) throws {
        let storeKeys = store.keys()
        let table = try keys ?? KeyTable(sorting: storeKeys)
        guard table.count == storeKeys.count else {
            throw DistillError(.mismatch, "the store holds \(storeKeys.count) images, the key table \(table.count) keys", file: store.path)
        }
        var toStore = [Int](repeating: -1, count: table.count)
        var toSample = [UInt32](repeating: 0, count: storeKeys.count)
        for (i, key) in storeKeys.enumerated() {
            guard let id = table.id(of: key) else {
                throw DistillError(.mismatch, "image key \(key) is not in the dataset's key table", file: store.path)
            }
            toStore[Int(id)] = i
            toSample[i] = id
        }
        self.keys = table
        storeIndex = toStore
        sampleID = toSample
    }
}

/// Row-wise helpers on logits.
public enum Probabilities {
    /// Softmax of each row of `logits` (N × C), in double precision accumulation.
    public static func softmax(_ logits: UnsafeBufferPointer<Float>, classes: Int) -> [Float] {
        var out = [Float](repeating: 0, count: logits.count)
        let rows = logits.count / classes
        for r in 0..<rows {
            let row = UnsafeBufferPointer(rebasing: logits[(r * classes)..<((r + 1) * classes)])
            let m = row.max() ?? 0
            var sum = 0.0
            for j in 0..<classes { let e = exp(Double(row[j] - m)); out[r * classes + j] = Float(e); sum += e }
            for j in 0..<classes { out[r * classes + j] = Float(Double(out[r * classes + j]) / sum) }
        }
        return out
    }

    /// The k largest values of `row`, descending; ties go to the lower class index.
    public static func topK(_ row: UnsafeBufferPointer<Float>, k: Int) -> (indices: [Int32], values: [Float]) {
        let order = (0..<row.count).sorted { a, b in row[a] != row[b] ? row[a] > row[b] : a < b }
        let top = order.prefix(k)
        return (top.map { Int32($0) }, top.map { row[$0] })
    }

    /// Ranks of the true class among each row (0 = top-1), for top-1 / top-5 accuracy.
    public static func rank(of label: Int, in row: UnsafeBufferPointer<Float>) -> Int {
        var rank = 0
        for j in 0..<row.count where j != label {
            if row[j] > row[label] || (row[j] == row[label] && j < label) { rank += 1 }
        }
        return rank
    }
}

/// Image preparation shared by the teacher pass, training and evaluation.
public enum ImagePreparation {
    /// The evaluation transform: the whole image resized to `size` (bicubic), no augmentation.
    public static func evalView(width: Int, height: Int) -> AugmentationView {
        AugmentationView(sourceWidth: UInt16(width), sourceHeight: UInt16(height),
                         crop: PixelBox(x: 0, y: 0, width: UInt16(width), height: UInt16(height)))
    }

    /// Renders `parameters` for store image `index` (and its partner, when mixed) as normalised CHW floats.
    public static func render(_ parameters: AugmentationParameters, store: ImageStore, index: Int, map: SampleMap,
                              augmenter: Augmenter, into output: UnsafeMutableBufferPointer<Float>) throws {
        let image = try store.image(at: index)
        var partner: RGBImage?
        if let mix = parameters.mix {
            guard Int(mix.partner) < map.storeIndex.count else {
                throw DistillError(.mismatch, "mix partner \(mix.partner) is not a sample of the store", file: store.path)
            }
            partner = try store.image(at: map.storeIndex[Int(mix.partner)])
        }
        try augmenter.renderNormalized(parameters, source: image, partner: partner, into: output)
    }
}

/// A seeded permutation (Fisher–Yates on SplitMix64), for epoch orders.
public func seededPermutation(_ count: Int, seed: UInt64) -> [Int] {
    var order = Array(0..<count)
    var rng = SplitMix64(seed: seed)
    if count > 1 {
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = Int(rng.next() % UInt64(i + 1))
            order.swapAt(i, j)
        }
    }
    return order
}
