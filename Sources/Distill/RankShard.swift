import Foundation
import ShardFormat

/// One rank's shard of one epoch of a teacher pass (Spec/PASS.md): finished already (kept as it is), or
/// written from where an interrupted run left it — the salvaged blocks of its `.partial` and the records of
/// its tail — so that the finished file is the one an uninterrupted pass writes.
final class RankShard {
    let path: String
    private let schema: ShardSchema
    private let order: [Int]
    private let plan: TeacherPass.Plan
    private let dataset: DatasetWriter
    private var writer: ShardWriter?
    /// Records in the shard so far (kept or appended).
    private(set) var records: Int
    /// The records appended since the last complete block: what a stop writes as the tail.
    private var unfinishedBlock: [ShardRecord] = []

    init(epoch: Int, rank: Int, order: [Int], plan: TeacherPass.Plan, writer dataset: DatasetWriter, resume: Bool) throws {
        self.order = order
        self.plan = plan
        self.dataset = dataset
        schema = dataset.shardSchema(epoch: epoch, rank: rank)
        path = dataset.directory + "/" + DatasetWriter.shardFileName(epoch: epoch, rank: rank)
        if resume, FileManager.default.fileExists(atPath: path) {
            try TeacherPassFolder.checkFinished(path: path, schema: schema)
            records = order.count
            return
        }
        let expected: (Int) -> UInt32? = { [plan, order] ordinal in ordinal < order.count ? plan.map.sampleID[order[ordinal]] : nil }
        let prefix = resume ? try PartialShardPrefix.scan(path: AtomicFileOutput.temporaryPath(for: path), schema: schema,
                                                          expectedSampleID: expected) : .empty
        let shard = try ShardWriter(continuing: prefix, path: path, schema: schema, compressionLevel: dataset.compressionLevel)
        writer = shard
        records = prefix.records
        if resume, let tail = ShardTail.read(shardPath: path, schema: schema, firstOrdinal: prefix.records, expectedSampleID: expected) {
            for record in tail { try append(record, to: shard) }
        }
        try? FileManager.default.removeItem(atPath: ShardTail.path(forShard: path))
    }

    /// Whether the batch of `count` records from position `start` holds a record the shard lacks.
    func needs(batchAt start: Int, count: Int) -> Bool { writer != nil && start + count > records }

    /// Appends the records of the batch that starts at `batchStart` that the shard lacks (a resumed shard
    /// already holds the first ones); returns how many.
    func append(_ batch: [ShardRecord], batchStart: Int) throws -> Int {
        guard let writer else { return 0 }
        let skip = records - batchStart
        for record in batch.dropFirst(skip) { try append(record, to: writer) }
        return batch.count - skip
    }

    private func append(_ record: ShardRecord, to writer: ShardWriter) throws {
        try writer.append(sampleID: record.sampleID, indices: record.indices, values: record.values, augmentation: record.augmentation)
        records += 1
        unfinishedBlock.append(record)
        if records % schema.recordsPerBlock == 0 { unfinishedBlock.removeAll(keepingCapacity: true) }
    }

    /// Stops after the batch in hand: the complete blocks are in `.partial` (made durable), the rest goes to
    /// the tail (Spec/PASS.md 4).
    func stop() throws {
        guard let writer else { return }
        try writer.sync()
        guard !unfinishedBlock.isEmpty else { return }
        try ShardTail.write(unfinishedBlock, firstOrdinal: records - unfinishedBlock.count, schema: schema, shardPath: path)
    }

    /// Finishes the shard (index, footer, rename) and lists it for the manifest.
    func finish() throws {
        guard let writer else { return }
        guard records == order.count else {
            throw DistillError(.internal, "the shard holds \(records) of its \(order.count) records at the end of the epoch", file: path)
        }
        try dataset.finish(writer)
        self.writer = nil
    }
}
