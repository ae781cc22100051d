import Augment
import Foundation
import ImageStore
import ShardFormat
import Tensor

/// What a run's targets are, for the views of its ``ViewSource``.
public enum TargetSource {
    /// One-hot store labels, mixed like the image when the view mixes (cutmix: by box area).
    case hardLabels
    /// The dense soft label of each replayed record (Spec/FORMAT.md section 7); with `top`, of its first `top`
    /// stored entries only (K chosen after the pass). Needs ``ViewSource/replay(_:)``.
    case storedSoftLabels(top: Int? = nil)
    /// A teacher in eval mode on exactly the student's view: its softmax, or with `k` its top-K rebuilt
    /// as a stored record's dense label is (float16 values, section 7 residual) — what storage changes.
    case onlineTeacher(any TeacherModel, name: String, k: Int?)

    var identity: String {
        switch self {
        case .hardLabels: return "hard"
        case let .storedSoftLabels(top): return "stored" + (top.map { ":k\($0)" } ?? "")
        case let .onlineTeacher(_, name, k): return "online:\(name)" + (k.map { ":k\($0)" } ?? "")
        }
    }
}

/// Fills one-hot (possibly mixed) targets from the store's labels.
struct HardLabels {
    let store: ImageStore
    let map: SampleMap
    let classes: Int
    let size: Int

    func fill(_ parameters: AugmentationParameters, index: Int, into target: UnsafeMutableBufferPointer<Float>) throws {
        func label(_ i: Int) throws -> Int {
            let l = try store.label(at: i)
            guard (0..<classes).contains(l) else {
                throw DistillError(.noLabel, "image \(i) (\(try store.key(at: i))) has no label in 0..<\(classes)", file: store.path)
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
}

/// The online teacher's targets for a batch of normalised views.
struct OnlineTargets {
    let teacher: any TeacherModel
    let k: Int?

    func fill(images: Tensor, into targets: Tensor) throws {
        let n = images.shape[0], classes = teacher.numClasses
        let logits = try teacher.logits(images)
        guard logits.shape == [n, classes], targets.shape == [n, classes] else {
            throw DistillError(.teacher, "the teacher returned logits of shape \(logits.shape) for \(n) images of \(classes) classes")
        }
        let probabilities = Probabilities.softmax(logits.buffer, classes: classes)
        try probabilities.withUnsafeBufferPointer { p in
            for row in 0..<n {
                let out = UnsafeMutableBufferPointer(start: targets.pointer + row * classes, count: classes)
                let probs = UnsafeBufferPointer(rebasing: p[(row * classes)..<((row + 1) * classes)])
                if let k {
                    let top = Probabilities.topK(probs, k: k)
                    try DenseSoftLabel.fill(indices: top.indices, values: top.values.map { Float16($0) }, into: out)
                } else {
                    _ = out.update(fromContentsOf: probs)
                }
            }
        }
    }
}
