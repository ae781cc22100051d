import Foundation

/// A dataset folder opened for reading: manifest, key table and every shard, memory-mapped.
///
/// Opening checks that each shard's header agrees with the manifest (cheap); ``ShardVerifier`` checks
/// every byte. Immutable and thread-safe like ``ShardReader``: open it once and share it between data
/// loader threads, each with its own ``ShardCursor``.
public final class ShardDataset: @unchecked Sendable {
    public let directory: String
    public let manifest: DatasetManifest
    public let keys: KeyTable
    /// Shards in manifest order.
    public let shards: [ShardReader]

    /// Opens the dataset folder `directory` (manifest, key table, every shard memory-mapped).
    /// - Throws: ``ShardError`` naming the file: the manifest or key table missing or damaged, a shard
    ///   that does not open, or a shard that disagrees with the manifest (`.manifestMismatch`).
    public init(directory: String) throws {
        self.directory = directory
        let manifest = try DatasetManifest.read(directory: directory)
        let keys = try KeyTable.read(path: directory + "/" + manifest.keys.file)
        self.manifest = manifest
        self.keys = keys
        guard keys.count == manifest.keys.count else {
            throw ShardError(.manifestMismatch, "manifest says \(manifest.keys.count) keys, the table holds \(keys.count)",
                             at: ShardLocation(file: directory + "/" + manifest.keys.file))
        }
        shards = try manifest.shards.map { entry in
            let reader = try ShardReader(path: directory + "/" + entry.file)
            if let mismatch = Self.mismatch(reader, entry, manifest) {
                throw ShardError(.manifestMismatch, mismatch, at: ShardLocation(file: reader.path))
            }
            return reader
        }
    }

    /// How a shard's header disagrees with its manifest entry, or nil.
    static func mismatch(_ reader: ShardReader, _ entry: DatasetManifest.ShardEntry, _ manifest: DatasetManifest) -> String? {
        let schema = reader.schema
        if schema.classes != manifest.classes || schema.k != manifest.k {
            return "header has classes \(schema.classes), k \(schema.k); manifest has \(manifest.classes), \(manifest.k)"
        }
        if schema.epoch != entry.epoch || schema.rank != entry.rank {
            return "header has epoch \(schema.epoch), rank \(schema.rank); manifest has \(entry.epoch), \(entry.rank)"
        }
        if reader.recordCount != entry.records { return "shard holds \(reader.recordCount) records; manifest says \(entry.records)" }
        if reader.fileSize != entry.bytes { return "shard is \(reader.fileSize) bytes; manifest says \(entry.bytes)" }
        if schema.provenance["dataset_checksum"] != manifest.keys.crc32 {
            return "provenance dataset_checksum \(schema.provenance["dataset_checksum"] ?? "(none)") is not the key table's \(manifest.keys.crc32)"
        }
        return nil
    }

    /// The epochs the manifest lists, ascending.
    public var epochs: [Int] { Array(Set(manifest.shards.map(\.epoch))).sorted() }

    /// The shards of one epoch, one per rank, in manifest order.
    public func shards(epoch: Int) -> [ShardReader] { shards.filter { $0.schema.epoch == epoch } }

    /// The shard and ordinal holding (epoch, sample id); with several ranks, the lowest rank's record.
    /// nil when no shard of that epoch holds it. The first lookup in a shard builds its sample table
    /// (one pass over its sample-id sections); later ones are O(1). Thread-safe.
    public func locate(epoch: Int, sampleID: UInt32) throws -> (shard: ShardReader, ordinal: Int)? {
        for shard in shards(epoch: epoch).sorted(by: { $0.schema.rank < $1.schema.rank }) {
            if let ordinal = try shard.ordinal(ofSample: sampleID) { return (shard, ordinal) }
        }
        return nil
    }

    /// The shard and ordinal holding (epoch, key), through the key table; nil for an unknown key or when no
    /// shard of that epoch holds the image.
    public func locate(epoch: Int, key: String) throws -> (shard: ShardReader, ordinal: Int)? {
        guard let id = keys.id(of: key) else { return nil }
        return try locate(epoch: epoch, sampleID: id)
    }
}

/// Writes a dataset folder: the key table first, then shards, then the manifest (last, atomically), so
/// a folder with a manifest is a finished dataset.
///
/// Several processes (ranks) can write one dataset: one writer writes the key table and, at the end, the
/// manifest; the others are made with `writesKeyTable: false` (they stamp the same key-table checksum into
/// their shards without writing the file) and only write shards. The manifest writer then takes their
/// shards in with ``adoptShard(epoch:rank:)``, which reads each file itself (DatasetWriter+Ranks.swift).
public final class DatasetWriter {
    public let directory: String
    public let keys: KeyTable
    /// The schema every shard shares; epoch and rank are set per shard.
    public let baseSchema: ShardSchema
    let keysEntry: DatasetManifest.FileEntry
    var entries: [DatasetManifest.ShardEntry] = []
    private var compressionLevel: Int

    public init(directory: String, keys: KeyTable, schema: ShardSchema, compressionLevel: Int = ShardWriter.defaultCompressionLevel,
                writesKeyTable: Bool = true) throws {
        self.directory = directory
        self.keys = keys
        self.compressionLevel = compressionLevel
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ShardError(.io, "cannot create the dataset folder: \(error.localizedDescription)", at: ShardLocation(file: directory))
        }
        let written: (bytes: Int, crc32: UInt32)
        if writesKeyTable {
            written = try keys.write(to: directory + "/" + DatasetManifest.keysFileName)
        } else {
            let encoded = keys.encoded()
            written = (encoded.count, CRC32.checksum(encoded))
        }
        keysEntry = .init(file: DatasetManifest.keysFileName, count: keys.count, bytes: written.bytes, crc32: CRC32.hex(written.crc32))
        var schema = schema
        schema.provenance["dataset_checksum"] = keysEntry.crc32
        baseSchema = schema
    }

    public static func shardFileName(epoch: Int, rank: Int) -> String {
        String(format: "epoch%04d-rank%03d.tshard", epoch, rank)
    }

    /// A writer for the shard of (epoch, rank); hand it back to ``finish(_:)`` when its records are in.
    public func shardWriter(epoch: Int, rank: Int) throws -> ShardWriter {
        var schema = baseSchema
        schema.epoch = epoch
        schema.rank = rank
        return try ShardWriter(path: directory + "/" + Self.shardFileName(epoch: epoch, rank: rank), schema: schema,
                               compressionLevel: compressionLevel)
    }

    /// Finishes a shard writer and records the shard for the manifest.
    @discardableResult
    public func finish(_ writer: ShardWriter) throws -> ShardFileInfo {
        let info = try writer.finish()
        entries.append(.init(file: String(info.path.split(separator: "/").last!), epoch: writer.schema.epoch,
                             rank: writer.schema.rank, records: info.records, bytes: info.bytes, crc32: CRC32.hex(info.crc32)))
        return info
    }

    /// Writes the manifest. Call after every shard is finished.
    public func finish() throws -> DatasetManifest {
        let manifest = DatasetManifest(classes: baseSchema.classes, k: baseSchema.k, keys: keysEntry,
                                       shards: entries.sorted { ($0.epoch, $0.rank) < ($1.epoch, $1.rank) })
        try manifest.write(directory: directory)
        return manifest
    }
}
