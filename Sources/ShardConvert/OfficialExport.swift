import Foundation
import ShardFormat

/// What ``OfficialExporter`` wrote.
public struct OfficialExportSummary: Sendable, Equatable {
    /// The folder written.
    public var directory: String
    /// K of the dataset (the `logits_top{K}` in the folder names).
    public var k: Int
    /// The epochs written, ascending.
    public var epochs: [Int]
    /// (epoch, rank) pairs written, one keys and one values file each.
    public var ranks: Int
    /// Records written over all files.
    public var records: Int
    /// Bytes written over all files.
    public var bytes: Int
}

/// Writes a dataset back in the official TinyViT layout (``OfficialLayout``): per shard, the keys of its
/// records in order and their records (seed, class indices and float16 values, bit for bit). For a
/// dataset that ``OfficialImporter`` made from files of the official writer, the files are byte-identical
/// to the input, every rank's padded copies included (given keys files that end in a newline, as that
/// writer makes them; a key repeated within one rank's file, which it never writes, was dropped).
public enum OfficialExporter {
    /// Writes the dataset at `path` into `output` in the official layout; throws ``ConversionError`` for a dataset
    /// whose augmentation kind is not `seed` and `ShardError` for a damaged one.
    public static func export(dataset path: String, to output: String, progress: ProgressHandler? = nil) throws
        -> OfficialExportSummary
    {
        let dataset = try ShardDataset(directory: path)
        // Every record is named, in the shards' order: one decode of the whole table beats a page per key.
        let keys = try dataset.keys.loadAll()
        let k = dataset.manifest.k
        for shard in dataset.shards {
            let schema = shard.schema
            guard schema.augmentation == .seed else {
                throw ConversionError("invalid-argument",
                                      "the official layout stores an int32 seed per record; this shard's augmentation kind is \(schema.augmentation.name)",
                                      file: shard.path)
            }
            guard schema.valueKind == .probability else {
                throw ConversionError("invalid-argument", "the official layout stores probabilities; this shard stores logits",
                                      file: shard.path)
            }
        }
        let folder = try OutputFolder.empty(output)
        // Epoch folders this run made; a failure removes them with everything in them.
        var made: [String] = []
        do {
            let total = dataset.manifest.shards.reduce(0) { $0 + $1.records }
            var throttle = ProgressThrottle(progress, total: total)
            var done = 0
            var bytes = 0
            for shard in dataset.shards.sorted(by: { ($0.schema.epoch, $0.schema.rank) < ($1.schema.epoch, $1.schema.rank) }) {
                let epoch = shard.schema.epoch
                let rank = shard.schema.rank
                let epochFolder = OfficialLayout.epochFolderName(k: k, epoch: epoch)
                if !made.contains(epochFolder) {
                    try createFolder(folder.file(epochFolder))
                    made.append(epochFolder)
                }
                let stage = "epoch \(epoch) rank \(rank)"
                let keysFile = try OutputFile(path: folder.file(epochFolder + "/" + OfficialLayout.keysFileName(rank: rank)))
                let valuesFile = try OutputFile(path: folder.file(epochFolder + "/" + OfficialLayout.valuesFileName(rank: rank)))
                var record = [UInt8](repeating: 0, count: OfficialLayout.recordSize(k: k))
                let cursor = shard.makeCursor()
                for ordinal in 0..<shard.recordCount {
                    let stored = try cursor.record(at: ordinal)
                    guard Int(stored.sampleID) < keys.count else {
                        throw ConversionError(ShardErrorCode.manifestMismatch.rawValue,
                                              "sample id \(stored.sampleID) is not below the key table's \(keys.count) keys",
                                              file: shard.path, record: ordinal)
                    }
                    let key = keys.key(Int(stored.sampleID))
                    try keysFile.write(KeyLines.encoded(CollectionOfOne(key)))
                    try encode(stored, k: k, into: &record, file: shard.path, ordinal: ordinal, key: key)
                    try valuesFile.write(record)
                    throttle.report(stage: stage, done: done + ordinal + 1)
                }
                try keysFile.close()
                try valuesFile.close()
                bytes += (InputFile.size(of: keysFile.path) ?? 0) + (InputFile.size(of: valuesFile.path) ?? 0)
                done += shard.recordCount
                throttle.report(stage: stage, done: done, force: true)
            }
            return OfficialExportSummary(directory: output, k: k, epochs: dataset.epochs, ranks: dataset.shards.count,
                                         records: done, bytes: bytes)
        } catch {
            folder.clean(removing: made)
            throw error
        }
    }

    /// One record in the official byte layout.
    private static func encode(_ record: ShardRecord, k: Int, into bytes: inout [UInt8], file: String, ordinal: Int,
                               key: String) throws {
        guard record.augmentation.count == 4 else {
            throw ConversionError("invalid-argument", "record has no 4-byte seed", file: file, record: ordinal, key: key)
        }
        for b in 0..<4 { bytes[b] = record.augmentation[b] }
        for j in 0..<k {
            let index = record.indices[j]
            guard index >= 0, index <= Int32(Int16.max) else {
                throw ConversionError("invalid-argument", "class index \(index) does not fit the official int16",
                                      file: file, record: ordinal, key: key)
            }
            let value = record.values[j].bitPattern
            bytes[4 + 2 * j] = UInt8(truncatingIfNeeded: index)
            bytes[5 + 2 * j] = UInt8(truncatingIfNeeded: index >> 8)
            bytes[4 + 2 * k + 2 * j] = UInt8(truncatingIfNeeded: value)
            bytes[5 + 2 * k + 2 * j] = UInt8(truncatingIfNeeded: value >> 8)
        }
    }

    private static func createFolder(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        } catch {
            throw ConversionError.io("cannot create the folder: \(error.localizedDescription)", file: path)
        }
    }
}
