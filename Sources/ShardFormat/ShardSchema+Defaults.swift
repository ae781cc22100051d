extension ShardSchema {
    /// Entries per block (R·K) the default block size aims at.
    static let defaultEntriesPerBlock = 16_384

    /// The default records per block for K entries per record: the largest power of two R with
    /// R·K ≤ 16,384 (K = 100 → 128, K = 10 → 1024, K = 5 → 2048, K = 1 → 16,384).
    ///
    /// A block is what a reader decodes to return one record, so smaller blocks make random access
    /// cheaper, while zlib needs enough bytes per section to pay off. Measured with this writer on
    /// official-layout teacher data (Tools/scale/make_official.py, 10^6 records): at K = 100 (C = 21,841),
    /// R = 128 is 0.55% larger than R = 1024 (283.2 vs 281.7 bytes/record) and a random read decodes 8x
    /// fewer entries; at K = 10 (C = 1,000 and 21,841), R = 1024 is within 0.4% of R = 2048, while
    /// R = 128 would be 4–6% larger.
    /// Keeping R·K near 16,384 keeps the work of one random read about the same for every K.
    ///
    /// A K below 1 counts as 1.
    public static func defaultRecordsPerBlock(k: Int) -> Int {
        let k = max(k, 1)
        var records = 1
        while records * 2 * k <= defaultEntriesPerBlock { records *= 2 }
        return records
    }
}
