import Foundation

/// What a resumed pass keeps of an unfinished shard (Spec/PASS.md 5.4): the longest run of blocks, right
/// after the header, in which block b is complete, holds R records from ordinal b·R, passes every rule of
/// Spec/FORMAT.md 1.4 and holds the sample ids the pass's order puts there. A torn last block (a crash, a full
/// disk) ends the run; so does a block that fails a check.
public struct PartialShardPrefix: Sendable {
    /// The blocks kept, in file order.
    let blocks: [BlockExtent]
    /// Records kept: blocks × R.
    public let records: Int
    /// Bytes of the file to keep: the header and the kept blocks.
    public let keptBytes: Int
    /// The sample ids of the kept records, in order.
    let sampleIDs: [UInt32]

    /// Nothing kept: the file is absent, or its header is torn (the writer died before the header was whole).
    public static let empty = PartialShardPrefix(blocks: [], records: 0, keptBytes: 0, sampleIDs: [])

    /// Scans `path` (a `.partial` file) against the pass's `schema` and order.
    /// - Parameter path: the `.partial` file; a missing file gives an empty prefix.
    /// - Parameter schema: the schema the pass writes that shard with; the file's header must equal it.
    /// - Parameter expectedSampleID: the sample id the pass's order puts at an ordinal (nil past its end).
    /// - Throws: ``ShardError`` `.manifestMismatch` naming the file when its header is whole but not the
    ///   pass's (the folder belongs to another pass); `io` when it cannot be read.
    public static func scan(path: String, schema: ShardSchema, expectedSampleID: (Int) -> UInt32?) throws -> PartialShardPrefix {
        guard FileManager.default.fileExists(atPath: path) else { return .empty }
        let file = try MappedFile.format(path: path)
        guard let (found, blocksStart) = try? ShardFileLayout.readHeader(file.bytes) else { return .empty }
        guard found == schema else {
            throw ShardError(.manifestMismatch, "the unfinished shard's header is not this pass's "
                             + "(epoch \(found.epoch), rank \(found.rank), k \(found.k), block size \(found.recordsPerBlock), "
                             + "provenance \(found.provenance == schema.provenance ? "equal" : "different"))",
                             at: ShardLocation(file: path))
        }
        let r = schema.recordsPerBlock
        var blocks: [BlockExtent] = []
        var ids: [UInt32] = []
        var offset = blocksStart
        let decoder = DecodedBlock(schema: schema)
        while file.bytes.count - offset >= BlockLayout.headerSize {
            let rest = UnsafeRawBufferPointer(rebasing: file.bytes[offset...])
            guard let header = try? BlockHeader(rest), header.count == r, header.payloadLength <= rest.count - BlockLayout.headerSize
            else { break }
            let length = BlockLayout.headerSize + header.payloadLength
            let b = blocks.count
            do {
                try decoder.decode(UnsafeRawBufferPointer(rebasing: rest[0..<length]), index: b, expectedCount: r, expectedFirst: b * r)
            } catch {
                break
            }
            guard decoder.firstRecordProblem() == nil,
                  (0..<r).allSatisfy({ expectedSampleID(b * r + $0) == decoder.sampleIDs[$0] }) else { break }
            ids.append(contentsOf: decoder.sampleIDs[0..<r])
            blocks.append(BlockExtent(offset: offset, length: length))
            offset += length
        }
        return PartialShardPrefix(blocks: blocks, records: blocks.count * r, keptBytes: offset, sampleIDs: ids)
    }
}

/// The tail a pass stopped by a signal leaves (Spec/PASS.md 4): the records of the block it had not completed,
/// as a complete shard whose provenance says where they go.
public enum ShardTail {
    /// The provenance key whose value is the ordinal, in the complete shard, of the tail's first record.
    public static let provenanceKey = "tail_first_ordinal"

    /// Where the tail of the shard at `path` is kept: `path + ".tail"`.
    public static func path(forShard path: String) -> String { path + ".tail" }

    /// Writes `records` (fewer than R, from ordinal `firstOrdinal`) as the tail of the shard at `shardPath`:
    /// temporary name, fsync, rename.
    public static func write(_ records: [ShardRecord], firstOrdinal: Int, schema: ShardSchema, shardPath: String) throws {
        var tailSchema = schema
        tailSchema.provenance[provenanceKey] = String(firstOrdinal)
        let writer = try ShardWriter(path: path(forShard: shardPath), schema: tailSchema)
        do {
            for record in records {
                try writer.append(sampleID: record.sampleID, indices: record.indices, values: record.values,
                                  augmentation: record.augmentation)
            }
            try writer.finish()
        } catch {
            writer.discard()
            throw error
        }
    }

    /// The tail's records when it continues a shard of `schema` at `firstOrdinal` with the pass's order;
    /// else nil (no tail, or one that does not fit: it is ignored, and its records are computed again).
    public static func read(shardPath: String, schema: ShardSchema, firstOrdinal: Int,
                            expectedSampleID: (Int) -> UInt32?) -> [ShardRecord]? {
        let tailPath = path(forShard: shardPath)
        guard FileManager.default.fileExists(atPath: tailPath), let reader = try? ShardReader(path: tailPath) else { return nil }
        var found = reader.schema
        guard found.provenance.removeValue(forKey: provenanceKey) == String(firstOrdinal), found == schema,
              reader.recordCount < schema.recordsPerBlock else { return nil }
        var records: [ShardRecord] = []
        let cursor = reader.makeCursor()
        for ordinal in 0..<reader.recordCount {
            guard let record = try? cursor.record(at: ordinal), expectedSampleID(firstOrdinal + ordinal) == record.sampleID else { return nil }
            records.append(record)
        }
        return records
    }
}
