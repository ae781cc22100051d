/// The records of one block in column form, as the writer collects them.
///
/// Appending only copies: the writer has checked the record already, and everything the format does
/// to a block (sorting indices, gaps, order numbers, value deltas, byte planes, zlib) happens later in
/// ``BlockEncoder``, possibly on another thread. So the thread that appends stays cheap.
struct BlockRecords {
    let k: Int
    let codeSize: Int
    private(set) var count = 0
    private(set) var sampleIDs: [UInt32] = []
    private(set) var augmentation: [UInt8] = []
    /// K class indices per record, in stored order (each already known to be in 0..<C).
    private(set) var indices: [Int32] = []
    /// K float16 bit patterns per record, in stored order.
    private(set) var valueBits: [UInt16] = []

    init(schema: ShardSchema) {
        k = schema.k
        codeSize = schema.augmentation.codeSize
        let records = schema.recordsPerBlock
        sampleIDs.reserveCapacity(records)
        augmentation.reserveCapacity(records * codeSize)
        indices.reserveCapacity(records * k)
        valueBits.reserveCapacity(records * k)
    }

    /// Adds a record that already passed the writer's checks.
    mutating func append(sampleID: UInt32, augmentationCode: UnsafeRawBufferPointer,
                         indices: UnsafeBufferPointer<Int32>, valueBits: UnsafeBufferPointer<UInt16>) {
        sampleIDs.append(sampleID)
        augmentation.append(contentsOf: augmentationCode)
        self.indices.append(contentsOf: indices)
        self.valueBits.append(contentsOf: valueBits)
        count += 1
    }

    /// Empties the columns, keeping their storage for the next block.
    mutating func removeAll() {
        count = 0
        sampleIDs.removeAll(keepingCapacity: true)
        augmentation.removeAll(keepingCapacity: true)
        indices.removeAll(keepingCapacity: true)
        valueBits.removeAll(keepingCapacity: true)
    }
}
