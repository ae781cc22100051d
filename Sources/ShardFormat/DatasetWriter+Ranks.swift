import Foundation

extension DatasetWriter {
    /// Takes in the finished shard of (`epoch`, `rank`) that another writer (another process of a distributed
    /// pass, made with `writesKeyTable: false`) wrote into this folder, so that ``finish()`` lists it.
    ///
    /// Nothing about the shard is taken on trust from whoever wrote it: the file itself must be a shard of this
    /// dataset — its header equal to this writer's schema for that epoch and rank (classes, K, value kind,
    /// augmentation, block size, provenance with the key-table checksum) — every block checksum must hold
    /// (``ShardVerifier`` at checksum depth, which bounds the cost by the file's bytes), and the size and
    /// CRC-32 the manifest records are measured from the bytes on disk.
    @discardableResult
    public func adoptShard(epoch: Int, rank: Int) throws -> ShardFileInfo {
        let name = Self.shardFileName(epoch: epoch, rank: rank)
        let path = directory + "/" + name
        let here = ShardLocation(file: path)
        guard !entries.contains(where: { $0.epoch == epoch && $0.rank == rank }) else {
            throw ShardError(.manifestMismatch, "a second shard for epoch \(epoch), rank \(rank)", at: here)
        }
        let report = ShardVerifier(maxProblems: 1, depth: .checksums, threads: 1).verifyShard(path: path, keys: keys)
        if let problem = report.problems.first {
            throw ShardError(ShardErrorCode(rawValue: problem.code) ?? .io, problem.message,
                             at: ShardLocation(file: problem.file ?? path, block: problem.block, record: problem.record,
                                               sampleID: problem.sampleID, sampleKey: problem.sampleKey))
        }
        let reader = try ShardReader(path: path)
        var expected = baseSchema
        expected.epoch = epoch
        expected.rank = rank
        guard reader.schema == expected else {
            throw ShardError(.manifestMismatch, "the header is not this dataset's for epoch \(epoch), rank \(rank) "
                             + "(\(Self.difference(reader.schema, expected)))", at: here)
        }
        let info = ShardFileInfo(path: path, records: reader.recordCount, bytes: reader.fileSize,
                                 crc32: CRC32.checksum(reader.file.bytes))
        entries.append(.init(file: name, epoch: epoch, rank: rank, records: info.records, bytes: info.bytes,
                             crc32: CRC32.hex(info.crc32)))
        return info
    }

    /// The first header field where `found` and `expected` differ, for the error message.
    private static func difference(_ found: ShardSchema, _ expected: ShardSchema) -> String {
        if found.epoch != expected.epoch || found.rank != expected.rank {
            return "it says epoch \(found.epoch), rank \(found.rank)"
        }
        if found.classes != expected.classes || found.k != expected.k {
            return "classes \(found.classes), k \(found.k); expected \(expected.classes), \(expected.k)"
        }
        for key in Set(found.provenance.keys).union(expected.provenance.keys).sorted()
        where found.provenance[key] != expected.provenance[key] {
            return "provenance \(key) is \(found.provenance[key] ?? "(none)"), expected \(expected.provenance[key] ?? "(none)")"
        }
        return "value kind, temperature, order, augmentation or block size differ"
    }
}
