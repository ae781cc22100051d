import ShardFormat

/// One pass over a shard in stored order, a training batch of records at a time, through one cursor into
/// reused buffers: the sequential-decode measurement of both the tables (main.swift) and `--paired`.
final class SequentialPasses {
    let cursor: ShardCursor
    let records: Int
    let batch: Int
    let classes: Int
    let k: Int
    private var rows: [Float]
    private var indices: [Int32]
    private var values: [Float]

    init(_ shard: ShardReader, batch: Int) {
        cursor = shard.makeCursor()
        records = shard.recordCount
        self.batch = batch
        classes = shard.schema.classes
        k = shard.schema.k
        rows = [Float](repeating: 0, count: batch * classes)
        indices = [Int32](repeating: 0, count: batch * k)
        values = [Float](repeating: 0, count: batch * k)
    }

    /// Dense rows of every record; returns the sum of each batch's last value (a check that both builds
    /// decoded the same numbers).
    @discardableResult
    func dense() throws -> Double {
        var checksum = 0.0
        var start = 0
        while start < records {
            let count = min(batch, records - start)
            try rows.withUnsafeMutableBufferPointer {
                try cursor.dense(start..<(start + count), into: UnsafeMutableBufferPointer(rebasing: $0[0..<(count * classes)]))
            }
            checksum += Double(rows[count * classes - 1])
            start += count
        }
        return checksum
    }

    /// Sparse indices and values of every record; returns a checksum like ``dense()``.
    @discardableResult
    func sparse() throws -> Double {
        var checksum = 0.0
        var start = 0
        while start < records {
            let count = min(batch, records - start)
            try indices.withUnsafeMutableBufferPointer { i in
                try values.withUnsafeMutableBufferPointer { v in
                    try cursor.sparse(start..<(start + count), indices: UnsafeMutableBufferPointer(rebasing: i[0..<(count * k)]),
                                      values: UnsafeMutableBufferPointer(rebasing: v[0..<(count * k)]))
                }
            }
            checksum += Double(values[count * k - 1])
            start += count
        }
        return checksum
    }
}
