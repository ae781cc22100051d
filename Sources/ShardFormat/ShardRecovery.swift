/// What `recover` kept and lost.
public struct RecoveryReport: Sendable {
    /// The damaged shard that was read.
    public var source: String
    /// The new shard written.
    public var output: String
    /// Blocks that passed every check and were copied.
    public var blocksRecovered = 0
    /// Records in those blocks.
    public var recordsRecovered = 0
    /// Records the source's footer promised, when it had a valid one.
    public var recordsExpected: Int?
    /// Records known lost: between recovered blocks, and (with a footer) after the last one.
    public var recordsKnownLost = 0
    /// Byte ranges skipped as damaged or incomplete, with why.
    public var damaged: [(offset: Int, length: Int, reason: String)] = []
}

/// Salvages every intact block of an incomplete or damaged shard into a new, valid shard.
public enum ShardRecovery {
    /// Reads `source` (header must be intact), writes every block that passes all checks to `output`,
    /// with the same schema, and reports what was lost. Records keep their sample ids and order.
    public static func recover(source: String, output: String) throws -> RecoveryReport {
        let file = try MappedFile.format(path: source)
        file.adviseSequential()
        let (schema, blocksStart): (ShardSchema, Int)
        do {
            (schema, blocksStart) = try ShardFileLayout.readHeader(file.bytes)
        } catch let error as ShardError {
            throw error.located(ShardLocation(file: source))
        }
        var report = RecoveryReport(source: source, output: output)
        var end = file.bytes.count
        if let (blocks, records) = try? ShardFileLayout.readIndex(file.bytes, schema: schema, blocksStart: blocksStart) {
            report.recordsExpected = records
            end = blocks.last.map { $0.offset + $0.length } ?? blocksStart
        }
        let writer = try ShardWriter(path: output, schema: schema)
        var nextOrdinal = 0
        let scanner = BlockScanner(file: file.bytes, schema: schema, blocksStart: blocksStart, end: end)
        do {
            try scanner.scan(found: { found in
                let block = found.block
                report.recordsKnownLost += max(0, block.firstOrdinal - nextOrdinal)
                nextOrdinal = block.firstOrdinal + block.count
                let k = schema.k
                let a = schema.augmentation.codeSize
                var indices = [Int32](repeating: 0, count: k)
                var bits = [UInt16](repeating: 0, count: k)
                for i in 0..<block.count {
                    block.decodeRanks(ofRecord: i)
                    for j in 0..<k {
                        indices[j] = block.sortedIndices[i * k + Int(block.ranks[i * k + j])]
                        bits[j] = block.valueBits[i * k + j]
                    }
                    try writer.append(sampleID: block.sampleIDs[i], indices: indices, valueBits: bits,
                                      augmentation: Array(block.augmentation[(i * a)..<((i + 1) * a)]))
                }
                report.blocksRecovered += 1
                report.recordsRecovered += block.count
            }, skipped: { skipped in
                report.damaged.append((skipped.offset, skipped.length, skipped.reason.description))
            })
            try writer.finish()
        } catch {
            writer.discard()
            throw error
        }
        if let expected = report.recordsExpected { report.recordsKnownLost += max(0, expected - nextOrdinal) }
        return report
    }
}
