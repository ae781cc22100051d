import Augment
import Distill
import Foundation
import ImageStore
import ShardFormat
import Tensor
import TinyViT

/// A student's class correlation on the teacher's stored views (Spec/ANALYZE.md 4): its softmax on each record
/// the teacher's correlation used (every `stride`-th, replayed from the record's parameters), summed densely,
/// and how closely its correlations follow the teacher's (Pearson over the class pairs i < j).
public enum StudentCorrelation {
    /// - Throws: `DistillError` naming the shard whose records carry no parameters, or the model's mismatch.
    public static func similarity(model: TinyViT, store: ImageStore, analysis: PassAnalysis, teacher result: AnalysisResult,
                                  batch: Int = 64, progress: ((Int, Int) -> Void)? = nil) throws -> Double {
        let dataset = analysis.dataset
        let size = model.configuration.imageSize
        guard model.configuration.numClasses == dataset.manifest.classes else {
            throw DistillError(.mismatch, "the student has \(model.configuration.numClasses) classes, the shards \(dataset.manifest.classes)")
        }
        for shard in dataset.shards {
            guard case let .params(h, w) = shard.schema.augmentation, h == size, w == size else {
                throw DistillError(.mismatch, "records carry no replayable \(size)x\(size) views (augmentation \(shard.schema.augmentation)); a student's correlation needs them", file: shard.path)
            }
        }
        let map = try SampleMap(store: store, keys: dataset.keys.loadAll())
        let augmenter = Augmenter(outputWidth: size, outputHeight: size)
        let selected = result.correlationClasses, width = selected.count, classes = dataset.manifest.classes
        var sums = [Double](repeating: 0, count: width), products = [Double](repeating: 0, count: width * width), used = 0
        var pending: [ShardRecord] = []
        func flush() throws {
            guard !pending.isEmpty else { return }
            let plane = 3 * size * size
            let images = Tensor(zeros: [pending.count, 3, size, size])
            for (row, record) in pending.enumerated() {
                let parameters = try record.augmentation.withUnsafeBytes { try AugmentationParameters(code: $0, outputHeight: size, outputWidth: size) }
                try ImagePreparation.render(parameters, store: store, index: map.storeIndex[Int(record.sampleID)], map: map, augmenter: augmenter,
                                            into: UnsafeMutableBufferPointer(start: images.pointer + row * plane, count: plane))
            }
            let logits = try model.forward(images, context: ForwardContext(training: false, recordsGradients: false))
            let probabilities = Probabilities.softmax(UnsafeBufferPointer(rebasing: logits.buffer[0..<(pending.count * classes)]), classes: classes)
            for row in 0..<pending.count {
                let x = selected.map { Double(probabilities[row * classes + $0]) }
                for i in 0..<width {
                    sums[i] += x[i]
                    for j in 0..<width { products[i * width + j] += x[i] * x[j] }
                }
            }
            used += pending.count
            progress?(used, result.correlationRecords)
            pending.removeAll(keepingCapacity: true)
        }
        var position = 0
        for epoch in dataset.epochs {
            for shard in dataset.shards(epoch: epoch).sorted(by: { $0.schema.rank < $1.schema.rank }) {
                let cursor = shard.makeCursor()
                for ordinal in 0..<shard.recordCount {
                    if position % result.correlationStride == 0 {
                        pending.append(try cursor.record(at: ordinal))
                        if pending.count == batch { try flush() }
                    }
                    position += 1
                }
            }
        }
        try flush()
        let student = pearson(sums: sums, products: products, count: used)
        return pairCorrelation(result.matrix, student, width: width)
    }

    /// Pearson correlations from dense sums.
    static func pearson(sums: [Double], products: [Double], count: Int) -> [Double] {
        let width = sums.count, n = Double(max(count, 1))
        let variance = (0..<width).map { products[$0 * width + $0] - sums[$0] * sums[$0] / n }
        var out = [Double](repeating: 0, count: width * width)
        for i in 0..<width {
            for j in 0..<width where variance[i] > 0 && variance[j] > 0 {
                out[i * width + j] = (products[i * width + j] - sums[i] * sums[j] / n) / (variance[i] * variance[j]).squareRoot()
            }
        }
        return out
    }

    /// The Pearson correlation of two matrices' entries above the diagonal.
    static func pairCorrelation(_ a: [Double], _ b: [Double], width: Int) -> Double {
        var x: [Double] = [], y: [Double] = []
        for i in 0..<width {
            for j in (i + 1)..<max(i + 1, width) {
                x.append(a[i * width + j])
                y.append(b[i * width + j])
            }
        }
        let n = Double(max(x.count, 1))
        let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for (u, v) in zip(x, y) {
            sxy += (u - mx) * (v - my)
            sxx += (u - mx) * (u - mx)
            syy += (v - my) * (v - my)
        }
        return sxx > 0 && syy > 0 ? sxy / (sxx * syy).squareRoot() : 0
    }
}
