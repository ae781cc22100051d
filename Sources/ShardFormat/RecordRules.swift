/// The per-record rules of Spec/FORMAT.md section 2, shared by the writer (which refuses such records)
/// and the reader and verifier (which report them).
enum RecordRules {
    /// Largest sum of K float16-rounded probabilities of a true distribution: each value's round-to-
    /// nearest-even error is at most 2^-11 relative (normal range) or 2^-25 absolute (subnormal range).
    static func probabilitySumBound(k: Int) -> Double { 1 + 0x1p-11 + Double(k) * 0x1p-25 }

    /// Checks one record's float16 values (bit patterns, stored order); nil when they are valid. Every
    /// `bad-value` rule is checked over the whole record before `not-sorted` (Spec §1.4), so that
    /// [0.25, 0.5, NaN] is `bad-value` in every implementation.
    static func checkValues(_ bits: UnsafeBufferPointer<UInt16>, schema: ShardSchema) -> ShardError? {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: bits.count) { values in
            FormatKernels.widen(bits, into: values)
            return checkValues(UnsafeBufferPointer(values), schema: schema)
        }
    }

    /// The same check on the values widened to float32 (exact, so every comparison and the sum are
    /// those of the float16 values; widening a whole block at once is what makes decode fast).
    static func checkValues(_ values: UnsafeBufferPointer<Float>, schema: ShardSchema) -> ShardError? {
        var sum = 0.0
        for j in 0..<values.count {
            let value = values[j]
            guard value.isFinite else {
                return ShardError(.badValue, "value \(j) is \(value.isNaN ? "NaN" : "infinite")")
            }
            if schema.valueKind == .probability {
                guard value >= 0, value <= 1 else {
                    return ShardError(.badValue, "value \(j) = \(Float16(value)) is not a probability in [0, 1]")
                }
                sum += Double(value)
            }
        }
        if schema.valueKind == .probability && sum > probabilitySumBound(k: values.count) {
            return ShardError(.badValue, "probabilities sum to \(sum), more than 1 + float16 rounding allows")
        }
        if schema.sorted {
            for j in 1..<max(values.count, 1) where values[j] > values[j - 1] {
                return ShardError(.notSorted, "value \(j) = \(Float16(values[j])) is larger than value \(j - 1) = \(Float16(values[j - 1])) in a sorted shard")
            }
        }
        return nil
    }
}

/// The dense soft-label residual of Spec/FORMAT.md section 7: what every class outside the top-K gets.
@inline(__always)
func softLabelResidual(_ values: UnsafeBufferPointer<Float>, classes: Int) -> Float {
    let k = values.count
    guard classes > k else { return 0 }
    var sum = 0.0
    for j in 0..<k { sum += Double(values[j]) }
    return Float(max(0, 1 - sum) / Double(classes - k))
}
