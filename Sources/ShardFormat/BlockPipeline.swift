import Foundation

/// Encodes a shard's blocks, on the caller's thread or on up to `threads` worker threads, and appends
/// each to the file as soon as it and every earlier block are encoded.
///
/// Blocks are independent, so the file holds exactly the bytes one thread writes, in block order, and
/// what a crash loses is only the blocks not yet encoded: the partial file keeps every complete block
/// for `tinyshard recover`, as with one thread. Memory stays bounded: at most 2 × threads blocks are
/// between ``submit(_:)`` and the file, and ``submit(_:)`` waits for room.
///
/// All state is guarded by `condition`; the file is written only under it (or, in ``ShardWriter``, before
/// the first block and after ``drain()``).
final class BlockPipeline: @unchecked Sendable {
    private let schema: ShardSchema
    private let output: AtomicFileOutput
    private let condition = NSCondition()
    /// Blocks waiting for an encoder, oldest first.
    private var queue: [(number: Int, records: BlockRecords)] = []
    /// Encoded blocks waiting for an earlier one.
    private var encoded: [Int: [UInt8]] = [:]
    private var submitted = 0
    private var written = 0
    private var workers = 0
    private var idleEncoders: [BlockEncoder] = []
    private var spareRecords: [BlockRecords] = []
    private var failure: Error?
    private var stopped = false
    private var blockExtents: [BlockExtent] = []
    private var threadLimit: Int

    /// - Parameter existingBlocks: blocks already in `output` (a resumed shard's kept prefix): the next
    ///   block submitted is block `existingBlocks.count`, with ordinals numbered on from there.
    init(schema: ShardSchema, output: AtomicFileOutput, threads: Int, existingBlocks: [BlockExtent] = []) {
        self.schema = schema
        self.output = output
        threadLimit = max(1, threads)
        blockExtents = existingBlocks
        submitted = existingBlocks.count
        written = existingBlocks.count
    }

    /// Encoding threads for blocks submitted from now on; 1 encodes on the submitting thread.
    var threads: Int {
        get { condition.withLock { threadLimit } }
        set { condition.withLock { threadLimit = max(1, newValue) } }
    }

    /// Empty columns for the next block (a finished block's storage when one is free).
    func freshRecords() -> BlockRecords {
        condition.withLock { spareRecords.popLast() } ?? BlockRecords(schema: schema)
    }

    /// Hands over a block. With one thread it is encoded and written before this returns; with more it
    /// is queued, and this waits only while too many blocks are unwritten. Throws the first write error
    /// (of this block or an earlier one).
    func submit(_ records: BlockRecords) throws {
        condition.lock()
        defer { condition.unlock() }
        try throwFailure()
        let number = submitted
        submitted += 1
        if threadLimit == 1 {
            while written < number && failure == nil { condition.wait() }  // blocks queued while threads > 1
            try throwFailure()
            let encoder = idleEncoders.popLast() ?? BlockEncoder(schema: schema)
            condition.unlock()
            let bytes = encoder.encode(records, firstOrdinal: number * schema.recordsPerBlock)
            condition.lock()
            finished(number, bytes, encoder, records)
            try throwFailure()
            return
        }
        queue.append((number, records))
        if workers < threadLimit {
            workers += 1
            DispatchQueue.global().async { self.work() }
        }
        while submitted - written > 2 * threadLimit && failure == nil { condition.wait() }
        try throwFailure()
    }

    /// Waits until every submitted block is in the file; returns the blocks' places, in order.
    func drain() throws -> [BlockExtent] {
        condition.lock()
        defer { condition.unlock() }
        while written < submitted && failure == nil { condition.wait() }
        try throwFailure()
        return blockExtents
    }

    /// Drops queued blocks and waits for the workers to stop, so that nothing writes to the file after
    /// this returns (the writer is about to delete it).
    func stop() {
        condition.lock()
        defer { condition.unlock() }
        stopped = true
        queue.removeAll()
        while workers > 0 { condition.wait() }
    }

    private func throwFailure() throws {
        if let failure { throw failure }
    }

    /// A worker: encodes queued blocks until the queue is empty.
    private func work() {
        condition.lock()
        while !stopped, !queue.isEmpty {
            let (number, records) = queue.removeFirst()
            let encoder = idleEncoders.popLast() ?? BlockEncoder(schema: schema)
            condition.unlock()
            let bytes = encoder.encode(records, firstOrdinal: number * schema.recordsPerBlock)
            condition.lock()
            finished(number, bytes, encoder, records)
        }
        workers -= 1
        condition.broadcast()
        condition.unlock()
    }

    /// Under the lock: takes an encoded block back and writes every block that is now next in order.
    private func finished(_ number: Int, _ bytes: [UInt8], _ encoder: BlockEncoder, _ records: BlockRecords) {
        idleEncoders.append(encoder)
        var spare = records
        spare.removeAll()
        spareRecords.append(spare)
        encoded[number] = bytes
        while let next = encoded.removeValue(forKey: written) {
            if failure == nil && !stopped {
                do {
                    let offset = output.size
                    try formatIO { try output.write(next) }
                    blockExtents.append(BlockExtent(offset: offset, length: next.count))
                } catch {
                    failure = error
                }
            }
            written += 1
        }
        condition.broadcast()
    }
}
