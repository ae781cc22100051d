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
    /// Records dropped because their key was already written for the same epoch (a lower rank's copy).
    public var duplicatesDropped: Int
    /// Bytes of the source's record data (and keys files, for the official layout).
    public var sourceBytes: Int
    public var shardBytes: Int
    public var keyTableBytes: Int

    public init(directory: String, classes: Int, k: Int, epochs: [Int], shards: Int, keys: Int, recordsRead: Int,
                recordsWritten: Int, duplicatesDropped: Int, sourceBytes: Int, shardBytes: Int, keyTableBytes: Int) {
        self.directory = directory
        self.classes = classes
        self.k = k
        self.epochs = epochs
        self.shards = shards
        self.keys = keys
        self.recordsRead = recordsRead
        self.recordsWritten = recordsWritten
        self.duplicatesDropped = duplicatesDropped
        self.sourceBytes = sourceBytes
        self.shardBytes = shardBytes
        self.keyTableBytes = keyTableBytes
    }

    /// Shards plus the key table, per record written.
    public var bytesPerRecord: Double {
        recordsWritten == 0 ? 0 : Double(shardBytes + keyTableBytes) / Double(recordsWritten)
    }
}
