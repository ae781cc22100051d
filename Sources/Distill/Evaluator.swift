import Augment
import Foundation
import ImageStore
import Tensor
import TinyViT

extension Trainer {
    /// Top-1 / top-5 of `model` (eval mode) on store images `indices` with the evaluation transform
    /// (the whole image resized, no augmentation).
    public static func evaluate(model: TinyViT, store: ImageStore, indices: [Int], batchSize: Int = 64) throws -> Evaluation {
        let (top1, top5, count) = try evaluationCounts(model: model, store: store, indices: indices, batchSize: batchSize)
        guard count > 0 else { return Evaluation(top1: 0, top5: 0, count: 0) }
        return Evaluation(top1: Double(top1) / Double(count), top5: Double(top5) / Double(count), count: count)
    }

    /// Images ranked first, within the first five, and evaluated (labelled) — counts, so that ranks can sum them.
    static func evaluationCounts(model: TinyViT, store: ImageStore, indices: [Int], batchSize: Int = 64) throws
        -> (top1: Int, top5: Int, count: Int) {
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
        return (top1, top5, count)
    }
}
