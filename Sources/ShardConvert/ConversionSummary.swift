/// What a conversion wrote.
public struct ConversionSummary: Sendable, Equatable {
    public var directory: String
    public var classes: Int
    public var k: Int
    public var epochs: [Int]
    public var shards: Int
    /// Keys in the dataset's key table.
    public var keys: Int
    /// Records read from the source.
    public var recordsRead: Int
    /// Records in the dataset (read minus dropped duplicates).
    public var recordsWritten: Int
    /// Records dropped because their key repeats an earlier line of the same keys file: a shard holds a
    /// sample once (the official writer never writes such a repeat).
    public var duplicatesDropped: Int
    /// Records kept whose key an earlier rank of the same epoch also holds (the distributed sampler pads
    /// an epoch by repeating its first samples in other ranks); each rank's shard keeps its own record.
    public var keysInSeveralRanks: Int
    /// Bytes of the source's record data (and keys files, for the official layout).
    public var sourceBytes: Int
    public var shardBytes: Int
    public var keyTableBytes: Int

    public init(directory: String, classes: Int, k: Int, epochs: [Int], shards: Int, keys: Int, recordsRead: Int,
                recordsWritten: Int, duplicatesDropped: Int, keysInSeveralRanks: Int = 0, sourceBytes: Int, shardBytes: Int,
                keyTableBytes: Int) {
        self.directory = directory
        self.classes = classes
        self.k = k
        self.epochs = epochs
        self.shards = shards
        self.keys = keys
        self.recordsRead = recordsRead
        self.recordsWritten = recordsWritten
        self.duplicatesDropped = duplicatesDropped
        self.keysInSeveralRanks = keysInSeveralRanks
        self.sourceBytes = sourceBytes
        self.shardBytes = shardBytes
        self.keyTableBytes = keyTableBytes
    }

    /// Shards plus the key table, per record written.
    public var bytesPerRecord: Double {
        recordsWritten == 0 ? 0 : Double(shardBytes + keyTableBytes) / Double(recordsWritten)
    }
}
