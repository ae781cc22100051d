extension ShardSchema {
    /// Entries per block (R·K) the default block size aims at.
    static let defaultEntriesPerBlock = 2_048

    /// The default records per block for K entries per record: the largest power of two R with
    /// R·K ≤ 2,048 (K = 100 → 16, K = 10 → 128, K = 5 → 256, K = 1 → 2,048).
    ///
    /// A block is what a reader decodes to return one record, so smaller blocks make random access
    /// cheaper, while zlib needs enough bytes per section to pay off. Measured on official-layout teacher
    /// data (docs/measured-design.md, 2026-12-06): at K = 100, R = 16 is 5% larger than R = 128 (293.0 vs
    /// 278.4 bytes/record) and reads random rows 6× faster in Swift and 2.7–3.9× in Python; at K = 10,
    /// R = 128 is 4.5% larger than R = 1,024 and reads random rows 4.5× faster. Reading in record order
    /// decodes each block once whatever R is, so it barely changes. Keeping R·K constant keeps the work of
    /// one random read about the same for every K.
    ///
    /// A K below 1 counts as 1.
    public static func defaultRecordsPerBlock(k: Int) -> Int {
        let k = max(k, 1)
        var records = 1
        while records * 2 * k <= defaultEntriesPerBlock { records *= 2 }
        return records
    }
}
