#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ShardConvert

/// A stand-in teacher with the shape of a real one (as `make_official_logits.py` of the shared fixtures
/// draws it): logits = 2.5·N(0, 1), plus a boost of 4–9 on the image's true class, plus 1–4 on a block
/// of 2–40 neighbouring classes (class ids sorted by WordNet id put related classes side by side).
/// A mixed image (mixup/cutmix) gets each image's boost weighted by its share λ.
public struct SyntheticTeacher: Sendable {
    /// C, the number of classes.
    public let classes: Int
    /// K, the entries returned per image.
    public let k: Int
    private var logits: [Float]
    private var indices: [Int32]
    private var probabilities: [Double]

    /// A teacher of `classes` classes giving its top `k` (1 ≤ k ≤ classes; traps otherwise).
    public init(classes: Int, k: Int) {
        precondition(classes >= 1 && k >= 1 && k <= classes)
        self.classes = classes
        self.k = k
        logits = [Float](repeating: 0, count: classes)
        indices = [Int32](repeating: 0, count: k)
        probabilities = [Double](repeating: 0, count: k)
    }

    /// The teacher's top-K (class indices, largest probability first, and float16 probability bits)
    /// for an image of `trueClass` mixed with share `lambda` with one of `partnerClass`.
    public mutating func predict(trueClass: Int, partnerClass: Int, lambda: Double, using random: inout SeededGenerator)
        -> (indices: [Int32], valueBits: [UInt16])
    {
        for c in 0..<classes { logits[c] = Float(2.5 * random.normal()) }
        boost(trueClass, weight: lambda, using: &random)
        if lambda < 1 { boost(partnerClass, weight: 1 - lambda, using: &random) }
        logits.withUnsafeBufferPointer { row in
            indices.withUnsafeMutableBufferPointer { TopK.select(row, into: $0) }
            indices.withUnsafeBufferPointer { selected in
                probabilities.withUnsafeMutableBufferPointer { TopK.softmax(row, temperature: 1, at: selected, into: $0) }
            }
        }
        return (indices, probabilities.map { Float16($0).bitPattern })
    }

    private mutating func boost(_ trueClass: Int, weight: Double, using random: inout SeededGenerator) {
        logits[trueClass] += Float(weight * random.uniform(4, 9))
        let low = max(0, trueClass - random.integer(1...29))
        let high = min(classes, low + random.integer(2...39))
        let neighbours = Float(weight * random.uniform(1, 4))
        for c in low..<high { logits[c] += neighbours }
    }
}
