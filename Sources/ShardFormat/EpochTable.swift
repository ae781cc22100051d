/// Sample id → (shard, ordinal) over one epoch's shards, searched in one order (Spec/FORMAT.md 2): the
/// first shard in `shards` that holds a sample wins.
///
/// Built from the shards' sample-id sections only (``BlockSampleIDs``), in one pass; memory is 6 bytes per
/// key of the dataset (85 MB at ImageNet-21k's 14.2 M keys) plus one bit per key for the duplicate check.
final class EpochTable: @unchecked Sendable {
    /// The epoch's shards in search order.
    let shards: [ShardReader]
    /// 1 + the position in `shards` of the shard holding each sample id; 0 when none does.
    private let holder: [UInt16]
    private let ordinal: [UInt32]

    init(shards: [ShardReader], keyCount: Int) throws {
        guard shards.count < Int(UInt16.max) else {
            throw ShardError(.invalidArgument, "an epoch of \(shards.count) shards is more than a lookup table holds (65,534)")
        }
        self.shards = shards
        var holder = [UInt16](repeating: 0, count: keyCount)
        var ordinal = [UInt32](repeating: 0, count: keyCount)
        var inShard = [UInt64](repeating: 0, count: (keyCount + 63) / 64)
        var reader = BlockSampleIDs()
        var ids: [UInt32] = []
        for (position, shard) in shards.enumerated() {
            guard shard.recordCount <= Int(UInt32.max) else {
                throw ShardError(.invalidArgument, "\(shard.recordCount) records are more than a lookup table holds (2^32 − 1)",
                                 at: ShardLocation(file: shard.path))
            }
            if position > 0 { inShard.withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }
            var released = 0
            for b in 0..<shard.blockCount {
                if b % 256 == 0 {  // the id sections touch a page or two of every block: keep memory to the table
                    let here = shard.blocks[b].offset
                    shard.file.releasePages(released..<here)
                    released = here
                }
                try reader.read(shard, block: b, into: &ids)
                let first = b * shard.schema.recordsPerBlock
                for (i, id) in ids.enumerated() {
                    let at = first + i
                    guard Int(id) < keyCount else {
                        throw ShardError(.manifestMismatch, "sample id \(id) is not below the key table's \(keyCount) keys",
                                         at: ShardLocation(file: shard.path, block: b, record: at, sampleID: id))
                    }
                    let word = Int(id >> 6), bit = UInt64(1) << UInt64(id & 63)
                    guard inShard[word] & bit == 0 else {
                        throw ShardError(.duplicateSample, "sample \(id) appears twice in this shard",
                                         at: ShardLocation(file: shard.path, block: b, record: at, sampleID: id))
                    }
                    inShard[word] |= bit
                    if holder[Int(id)] == 0 {
                        holder[Int(id)] = UInt16(position + 1)
                        ordinal[Int(id)] = UInt32(at)
                    }
                }
            }
        }
        self.holder = holder
        self.ordinal = ordinal
    }

    /// The shard and ordinal of `sampleID`, or nil when no shard of the epoch holds it.
    func locate(_ sampleID: UInt32) -> (shard: ShardReader, ordinal: Int)? {
        guard Int(sampleID) < holder.count, holder[Int(sampleID)] > 0 else { return nil }
        return (shards[Int(holder[Int(sampleID)]) - 1], Int(ordinal[Int(sampleID)]))
    }
}
