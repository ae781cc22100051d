/// A fixed-size set of sample ids, one bit each: which keys an epoch already holds.
struct SampleSet {
    private var words: [UInt64]

    init(capacity: Int) { words = [UInt64](repeating: 0, count: (capacity + 63) / 64) }

    /// Inserts `id`; false when it was already there.
    mutating func insert(_ id: UInt32) -> Bool {
        let word = Int(id >> 6)
        let bit = UInt64(1) << UInt64(id & 63)
        if words[word] & bit != 0 { return false }
        words[word] |= bit
        return true
    }
}
