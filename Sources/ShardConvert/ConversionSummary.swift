/// What a conversion wrote.
public struct ConversionSummary: Sendable, Equatable {
    /// The dataset folder written.
    public var directory: String
    /// C, the number of classes.
    public var classes: Int
    /// K, the entries stored per record.
    public var k: Int
    /// The epochs written, ascending.
    public var epochs: [Int]
    /// Shard files written.
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
    /// Bytes of the shards written.
    public var shardBytes: Int
    /// Bytes of the key table written.
    public var keyTableBytes: Int

    /// A summary with every count given.
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
