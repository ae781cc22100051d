import Distill
import Foundation

/// The first pass of ``PassAnalysis`` (Spec/ANALYZE.md 1–3): agreement with the labels per epoch, class and
/// image, the mass-by-k histograms, and how often each class is the teacher's top 1.
struct FirstPass {
    static let bins = 4096
    let classes: Int
    let k: Int
    let n: Int
    let labels: [Int32]?
    let epochs: [Int]
    /// Per epoch (in `epochs` order): records, top-1, top-n.
    var perEpoch: [[Int]]
    /// Per label class: records, top-1, top-n.
    var perClass: [[Int]]
    /// Per sample id: records, top-1 records, records whose label is outside the top n.
    var imageRecords: [UInt32], imageTop1: [UInt32], imageMisses: [UInt32]
    var topOneCounts: [Int]
    /// K × bins counts of mass_r(k); sums of mass and residual per k.
    var histogram: [UInt64]
    var massSum: [Double], residualSum: [Double]
    var records = 0

    init(classes: Int, k: Int, keys: Int, epochs: [Int], labels: [Int32]?) {
        self.classes = classes
        self.k = k
        n = min(5, k)
        self.labels = labels
        self.epochs = epochs
        perEpoch = Array(repeating: [0, 0, 0], count: epochs.count)
        perClass = Array(repeating: [0, 0, 0], count: labels == nil ? 0 : classes)
        let images = labels == nil ? 0 : keys
        imageRecords = [UInt32](repeating: 0, count: images)
        imageTop1 = imageRecords
        imageMisses = imageRecords
        topOneCounts = [Int](repeating: 0, count: classes)
        histogram = [UInt64](repeating: 0, count: k * Self.bins)
        massSum = [Double](repeating: 0, count: k)
        residualSum = massSum
    }

    mutating func add(epoch: Int, ids: [UInt32], indices: UnsafeBufferPointer<Int32>, values: UnsafeBufferPointer<Float>) throws {
        let e = epochs.firstIndex(of: epoch)!
        for (i, id) in ids.enumerated() {
            let base = i * k
            var mass = 0.0
            for j in 0..<k {
                mass += Double(values[base + j])
                histogram[j * Self.bins + min(Self.bins - 1, Int(mass * Double(Self.bins)))] += 1
                massSum[j] += mass
                if j + 1 < classes { residualSum[j] += max(0, 1 - mass) / Double(classes - j - 1) }
            }
            topOneCounts[Int(indices[base])] += 1
            records += 1
            guard let labels else { continue }
            let label = labels[Int(id)]
            guard label >= 0 else { throw DistillError(.noLabel, "sample \(id) has no label in the image store") }
            let top1 = indices[base] == label
            var topN = false
            for j in 0..<n where indices[base + j] == label { topN = true }
            perEpoch[e][0] += 1; perClass[Int(label)][0] += 1; imageRecords[Int(id)] += 1
            if top1 { perEpoch[e][1] += 1; perClass[Int(label)][1] += 1; imageTop1[Int(id)] += 1 }
            if topN { perEpoch[e][2] += 1; perClass[Int(label)][2] += 1 } else { imageMisses[Int(id)] += 1 }
        }
        if labels == nil { perEpoch[e][0] += ids.count }
    }

    /// Sample ids of the hard images (Spec/ANALYZE.md 2), not yet in report order.
    func hardImages(share: Double) -> [UInt32] {
        (0..<imageRecords.count).compactMap { id in
            imageRecords[id] > 0 && Double(imageMisses[id]) / Double(imageRecords[id]) >= share ? UInt32(id) : nil
        }
    }

    /// The classes of the correlation matrix: all of them, or the `limit` most frequent top-1 classes, ascending.
    func correlationClasses(limit: Int) -> [Int] {
        guard classes > limit else { return Array(0..<classes) }
        return (0..<classes).sorted { (topOneCounts[$0], -$0) > (topOneCounts[$1], -$1) }.prefix(limit).sorted()
    }

    /// The p-th percentile of mass_r(k) from the histogram (Spec/ANALYZE.md 3).
    func percentile(_ p: Double, k j: Int) -> Double {
        let rank = max(1, Int((p / 100 * Double(records)).rounded(.up)))
        var seen: UInt64 = 0
        for bin in 0..<Self.bins {
            seen += histogram[j * Self.bins + bin]
            if seen >= UInt64(rank) { return Double(bin + 1) / Double(Self.bins) }
        }
        return 1
    }
}

/// The second pass (Spec/ANALYZE.md 2 and 4): the correlation sums over every `stride`-th record, and the mean
/// values of the hard images' three candidate classes.
struct SecondPass {
    let classes: Int
    let k: Int
    /// The correlation's classes, ascending, and each class's position among them (-1: not in it).
    let selected: [Int]
    let position: [Int32]
    let stride: Int
    var used = 0
    var sumR = 0.0, sumR2 = 0.0
    /// Over selected classes: Σ d_i, Σ r·d_i, and Σ d_i d_j (row-major, selected × selected).
    var sumD: [Double], sumRD: [Double], sumDD: [Double]
    /// Hard images: slot by sample id (-1: not hard), three candidate classes and their value sums per slot.
    let hardSlot: [Int32]
    let hard: [UInt32]
    var candidates: [Int32], candidateSums: [Double]

    init(classes: Int, k: Int, selected: [Int], stride: Int, hard: [UInt32], keys: Int) {
        self.classes = classes
        self.k = k
        self.selected = selected
        var position = [Int32](repeating: -1, count: classes)
        for (i, c) in selected.enumerated() { position[c] = Int32(i) }
        self.position = position
        self.stride = stride
        sumD = [Double](repeating: 0, count: selected.count)
        sumRD = sumD
        sumDD = [Double](repeating: 0, count: selected.count * selected.count)
        var slots = [Int32](repeating: -1, count: hard.isEmpty ? 0 : keys)
        for (slot, id) in hard.enumerated() { slots[Int(id)] = Int32(slot) }
        hardSlot = slots
        self.hard = hard
        candidates = [Int32](repeating: -1, count: 3 * hard.count)
        candidateSums = [Double](repeating: 0, count: 3 * hard.count)
    }

    mutating func add(position start: Int, ids: [UInt32], indices: UnsafeBufferPointer<Int32>, values: UnsafeBufferPointer<Float>) {
        let width = selected.count
        for (i, id) in ids.enumerated() {
            let base = i * k
            if !hardSlot.isEmpty, hardSlot[Int(id)] >= 0 {
                let slot = Int(hardSlot[Int(id)])
                if candidates[3 * slot] < 0 {
                    for c in 0..<min(3, k) { candidates[3 * slot + c] = indices[base + c] }
                }
                for c in 0..<3 {
                    for j in 0..<k where indices[base + j] == candidates[3 * slot + c] { candidateSums[3 * slot + c] += Double(values[base + j]) }
                }
            }
            guard (start + i) % stride == 0 else { continue }
            used += 1
            var sum = 0.0
            for j in 0..<k { sum += Double(values[base + j]) }
            let r = k < classes ? Double(Float(max(0, 1 - sum) / Double(classes - k))) : 0
            sumR += r
            sumR2 += r * r
            for a in 0..<k {
                let pa = Int(position[Int(indices[base + a])])
                guard pa >= 0 else { continue }
                let da = Double(values[base + a]) - r
                sumD[pa] += da
                sumRD[pa] += r * da
                for b in 0..<k {
                    let pb = Int(position[Int(indices[base + b])])
                    if pb >= 0 { sumDD[pa * width + pb] += da * (Double(values[base + b]) - r) }
                }
            }
        }
    }

    /// Pearson correlations of the selected classes (Spec/ANALYZE.md 4), row-major.
    func correlation() -> [Double] {
        let width = selected.count, n = Double(used)
        guard used > 0 else { return [Double](repeating: 0, count: width * width) }
        let s = (0..<width).map { sumR + sumD[$0] }
        func product(_ i: Int, _ j: Int) -> Double { sumR2 + sumRD[i] + sumRD[j] + sumDD[i * width + j] }
        let variance = (0..<width).map { product($0, $0) - s[$0] * s[$0] / n }
        var out = [Double](repeating: 0, count: width * width)
        for i in 0..<width {
            for j in 0..<width where variance[i] > 0 && variance[j] > 0 {
                out[i * width + j] = (product(i, j) - s[i] * s[j] / n) / (variance[i] * variance[j]).squareRoot()
            }
        }
        return out
    }
}
