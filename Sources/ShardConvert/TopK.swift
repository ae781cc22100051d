#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Top-K selection over one row of teacher outputs.
public enum TopK {
    /// The K largest entries of `row`, largest first; equal values in ascending class order. Writes the
    /// class indices into `indices` (K long). `row` must hold no NaN.
    public static func select(_ row: UnsafeBufferPointer<Float>, into indices: UnsafeMutableBufferPointer<Int32>) {
        let k = indices.count
        precondition(k >= 1 && k <= row.count)
        // Insertion into a short sorted list: O(C) for typical rows, O(C·K) at worst.
        var count = 0
        for c in 0..<row.count {
            let value = row[c]
            if count == k && value <= row[Int(indices[k - 1])] { continue }
            // After every entry with a value >= this one (earlier classes win ties).
            var position = min(count, k - 1)
            while position > 0 && row[Int(indices[position - 1])] < value {
                indices[position] = indices[position - 1]
                position -= 1
            }
            indices[position] = Int32(c)
            if count < k { count += 1 }
        }
    }

    /// softmax(row / temperature) at `indices`, computed in float64 (max subtracted first):
    /// p_c = exp((z_c − max) / T) / Σ_c' exp((z_c' − max) / T), the sum in class order.
    public static func softmax(_ row: UnsafeBufferPointer<Float>, temperature: Double, at indices: UnsafeBufferPointer<Int32>,
                               into values: UnsafeMutableBufferPointer<Double>) {
        var maximum = -Double.infinity
        for c in 0..<row.count { maximum = max(maximum, Double(row[c])) }
        var sum = 0.0
        for c in 0..<row.count { sum += exp((Double(row[c]) - maximum) / temperature) }
        for j in 0..<indices.count { values[j] = exp((Double(row[Int(indices[j])]) - maximum) / temperature) / sum }
    }
}
