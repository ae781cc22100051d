/// Spec/FORMAT.md section 7 for a top-K that is not (yet) in a shard — an online teacher's, so that
/// training with the teacher in the loop and `--teacher-k K` gets exactly the row a stored record
/// would give: the K float16 values in place, every other class the residual computed by the same
/// `softLabelResidual` the reader's block decode uses.
public enum DenseSoftLabel {
    /// Fills `row` (one float per class) from `indices` and float16 `values` in stored order (sorted
    /// shards store them descending). Throws `invalid-argument` for mismatched counts, an index
    /// outside the row or a repeated index.
    public static func fill(indices: [Int32], values: [Float16], into row: UnsafeMutableBufferPointer<Float>) throws {
        let k = values.count, classes = row.count
        guard indices.count == k, k >= 1, k <= classes else {
            throw ShardError(.invalidArgument, "a top-K needs 1...\(classes) indices and as many values, got \(indices.count) and \(k)")
        }
        var wide = [Float](repeating: 0, count: k)
        values.map(\.bitPattern).withUnsafeBufferPointer { bits in wide.withUnsafeMutableBufferPointer { FormatKernels.widen(bits, into: $0) } }
        let residual = wide.withUnsafeBufferPointer { softLabelResidual($0, classes: classes) }
        FormatKernels.fill(row, with: residual)
        var seen = Set<Int32>()
        for j in 0..<k {
            let index = indices[j]
            guard index >= 0, Int(index) < classes, seen.insert(index).inserted else {
                throw ShardError(.invalidArgument, "top-K index \(index) is repeated or outside 0..<\(classes)")
            }
            row[Int(index)] = wide[j]
        }
    }
}
