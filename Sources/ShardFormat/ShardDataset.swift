import Foundation

/// A dataset folder opened for reading: manifest, key table and every shard, memory-mapped.
///
/// Opening reads the manifest, the key table's head and each shard's header, footer and index, and checks
/// that they agree with the manifest (cheap: nothing that grows with the keys or records is read);
/// ``ShardVerifier`` checks every byte. Immutable and thread-safe like ``ShardReader``: open it once and
/// share it between data loader threads, each with its own ``ShardCursor``.
public final class ShardDataset: @unchecked Sendable {
    /// The dataset folder, as given.
    public let directory: String
    /// The checked `manifest.json`.
    public let manifest: DatasetManifest
    /// The key table, mapped: sample id ↔ key.
    public let keys: MappedKeyTable
    /// Shards in manifest order.
    public let shards: [ShardReader]
    private let tableLock = NSLock()
    private var tables: [(epoch: Int, order: [Int], table: EpochTable)] = []
    /// Lookup tables kept (each 6 bytes per key): the epoch being read and the one before it.
    private static let cachedTables = 2

    /// Opens the dataset folder `directory` (manifest, key table and every shard memory-mapped).
    /// - Throws: ``ShardError`` naming the file: the manifest or key table missing or damaged, a shard
    ///   that does not open, or a file that disagrees with the manifest (`.manifestMismatch`).
    public init(directory: String) throws {
        self.directory = directory
        let manifest = try DatasetManifest.read(directory: directory)
        let keysPath = directory + "/" + manifest.keys.file
        let keys = try MappedKeyTable(path: keysPath)
        self.manifest = manifest
        self.keys = keys
        guard keys.count == manifest.keys.count, keys.fileSize == manifest.keys.bytes else {
            throw ShardError(.manifestMismatch, "manifest says \(manifest.keys.count) keys in \(manifest.keys.bytes) bytes; "
                             + "the table holds \(keys.count) keys in \(keys.fileSize) bytes", at: ShardLocation(file: keysPath))
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

    /// The shards of `epoch` in the order a lookup searches them (Spec/FORMAT.md 2): with a reading `rank`,
    /// ascending ((shard rank − rank) mod n, shard rank) — the official TinyViT reader's order, own rank
    /// first, then the following ranks cyclically; without one, ascending rank.
    public func searchOrder(epoch: Int, rank: Int? = nil) -> [ShardReader] {
        let epochShards = shards(epoch: epoch)
        let n = epochShards.count
        func priority(_ shard: ShardReader) -> (Int, Int) {
            let own = shard.schema.rank
            guard let rank else { return (0, own) }
            return (((own - rank) % n + n) % n, own)
        }
        return epochShards.sorted { priority($0) < priority($1) }
    }

    /// The shard and ordinal holding (epoch, sample id), by the search order of ``searchOrder(epoch:rank:)``;
    /// nil when no shard of that epoch holds it.
    ///
    /// The first lookup in an epoch (for one search order) builds a table of the epoch from its shards'
    /// sample-id sections (6 bytes per key; ~0.3 s for an ImageNet-21k epoch); later ones are O(1). The
    /// record itself is checked when it is read. Thread-safe.
    public func locate(epoch: Int, sampleID: UInt32, rank: Int? = nil) throws -> (shard: ShardReader, ordinal: Int)? {
        try table(epoch: epoch, rank: rank).locate(sampleID)
    }

    /// The shard and ordinal holding (epoch, key), through the key table; nil for an unknown key or when no
    /// shard of that epoch holds the image.
    public func locate(epoch: Int, key: String, rank: Int? = nil) throws -> (shard: ShardReader, ordinal: Int)? {
        guard let id = try keys.id(of: key) else { return nil }
        return try locate(epoch: epoch, sampleID: id, rank: rank)
    }

    private func table(epoch: Int, rank: Int?) throws -> EpochTable {
        let ordered = searchOrder(epoch: epoch, rank: rank)
        let order = ordered.map { $0.schema.rank }
        tableLock.lock()
        defer { tableLock.unlock() }
        if let hit = tables.firstIndex(where: { $0.epoch == epoch && $0.order == order }) {
            let entry = tables.remove(at: hit)
            tables.append(entry)
            return entry.table
        }
        let table = try EpochTable(shards: ordered, keyCount: keys.count)
        if tables.count >= Self.cachedTables { tables.removeFirst() }
        tables.append((epoch, order, table))
        return table
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
    /// The dataset folder being written.
    public let directory: String
    /// The key table, written when the writer was created.
    public let keys: KeyTable
    /// The schema every shard shares; epoch and rank are set per shard.
    public let baseSchema: ShardSchema
    let keysEntry: DatasetManifest.FileEntry
    var entries: [DatasetManifest.ShardEntry] = []
    /// The zlib level of the shards this writer makes.
    public let compressionLevel: Int

    /// Creates the dataset folder `directory` (if needed) and, unless `writesKeyTable` is false, writes the
    /// key table into it.
    /// - Parameters:
    ///   - directory: the dataset folder.
    ///   - keys: every sample's key; sample ids are positions in it.
    ///   - schema: the schema every shard shares (its epoch and rank are replaced per shard).
    ///   - compressionLevel: zlib level 1...9 of the shards' sections.
    ///   - writesKeyTable: false for the other ranks of a distributed pass (rank 0 writes the table).
    ///   - keyTableVersion: 2 (Spec/FORMAT.md 5.2), or 1 for readers of revision 1.1.
    public init(directory: String, keys: KeyTable, schema: ShardSchema, compressionLevel: Int = ShardWriter.defaultCompressionLevel,
                writesKeyTable: Bool = true, keyTableVersion: Int = KeyTable.defaultVersion) throws {
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
            written = try keys.write(to: directory + "/" + DatasetManifest.keysFileName, version: keyTableVersion)
        } else {
            let encoded = try keys.encoded(version: keyTableVersion)
            written = (encoded.count, CRC32.checksum(encoded))
        }
        keysEntry = .init(file: DatasetManifest.keysFileName, count: keys.count, bytes: written.bytes, crc32: CRC32.hex(written.crc32))
        var schema = schema
        schema.provenance["dataset_checksum"] = keysEntry.crc32
        baseSchema = schema
    }

    /// The key table's manifest entry (its size and CRC-32 are those of the bytes this writer writes).
    public var keysFileEntry: DatasetManifest.FileEntry { keysEntry }

    /// Whether the shard of (epoch, rank) is already listed for the manifest.
    public func holds(epoch: Int, rank: Int) -> Bool { entries.contains { $0.epoch == epoch && $0.rank == rank } }

    /// The file name of the shard of (epoch, rank): `epoch0003-rank001.tshard`.
    public static func shardFileName(epoch: Int, rank: Int) -> String {
        String(format: "epoch%04d-rank%03d.tshard", epoch, rank)
    }

    /// The header of the shard of (epoch, rank).
    public func shardSchema(epoch: Int, rank: Int) -> ShardSchema {
        var schema = baseSchema
        schema.epoch = epoch
        schema.rank = rank
        return schema
    }

    /// A writer for the shard of (epoch, rank); hand it back to ``finish(_:)`` when its records are in.
    public func shardWriter(epoch: Int, rank: Int) throws -> ShardWriter {
        try ShardWriter(path: directory + "/" + Self.shardFileName(epoch: epoch, rank: rank), schema: shardSchema(epoch: epoch, rank: rank),
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
