import Foundation
import Interchange

/// `manifest.json` (Spec/FORMAT.md section 6): the dataset's files with their sizes and checksums.
public struct DatasetManifest: Codable, Sendable, Equatable {
    /// The manifest's name inside a dataset folder; written last, so its presence means the dataset is complete.
    public static let fileName = "manifest.json"
    /// The key table's name inside a dataset folder.
    public static let keysFileName = "keys.tsk"

    /// The key table's entry: `{"file", "count", "bytes", "crc32"}`.
    public struct FileEntry: Codable, Sendable, Equatable {
        /// The file's name, relative to the dataset folder.
        public var file: String
        /// The number of keys the table holds (M).
        public var count: Int
        /// The file's size in bytes.
        public var bytes: Int
        /// The file's CRC-32 as 8 lowercase hex digits.
        public var crc32: String
    }

    /// One shard's entry; readers compare it with the shard's header and footer.
    public struct ShardEntry: Codable, Sendable, Equatable {
        /// The shard's file name, relative to the dataset folder (`epochEEEE-rankRRR.tshard`).
        public var file: String
        /// The epoch the shard's records belong to (equals its header's).
        public var epoch: Int
        /// The rank that wrote the shard (equals its header's).
        public var rank: Int
        /// N, the shard's record count (equals its footer's).
        public var records: Int
        /// The shard's size in bytes.
        public var bytes: Int
        /// The shard's CRC-32 as 8 lowercase hex digits.
        public var crc32: String
    }

    /// Always `tinyshard-dataset`.
    public var format = "tinyshard-dataset"
    /// The manifest version, 1.
    public var version = 1
    /// C, the number of classes every shard shares.
    public var classes: Int
    /// K, the entries per record every shard shares.
    public var k: Int
    /// The key table that names every sample id.
    public var keys: FileEntry
    /// Every shard of the dataset, any epoch and rank.
    public var shards: [ShardEntry]

    /// Largest manifest.json read (Spec §6): about 400,000 shard entries; keeps a hostile file's cost bounded.
    public static let maxBytes = 64 << 20

    /// Reads and checks `directory/manifest.json`; throws ``ShardError`` (`io` when missing, `manifest-mismatch` when
    /// larger than ``maxBytes`` or outside the spec's grammar and rules).
    public static func read(directory: String) throws -> DatasetManifest {
        let path = directory + "/" + fileName
        let location = ShardLocation(file: path)
        let file = try MappedFile.format(path: path)
        guard file.bytes.count <= maxBytes else {
            throw ShardError(.manifestMismatch, "manifest is \(file.bytes.count) bytes, more than \(maxBytes)", at: location)
        }
        do {
            return try parse(file.bytes)
        } catch let error as ShardError {
            throw error.located(location)
        }
    }

    /// Parses manifest bytes by the spec's JSON grammar and §6's rules, in the spec's order: grammar,
    /// `format`, `version` (`unsupported-version`), then every field (`manifest-mismatch`).
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws -> DatasetManifest {
        func fail(_ message: String) -> ShardError { ShardError(.manifestMismatch, message) }
        let document: JSONDocument
        do {
            document = try StrictJSON.parse(bytes)
        } catch let error as JSONSyntaxError {
            throw fail("manifest is not JSON of the spec's grammar: \(error)")
        }
        let root = try JSONFields(document.root, fail: { fail("manifest: " + $0) })
        guard root.optional("format")?.string == "tinyshard-dataset" else { throw fail("manifest format must be \"tinyshard-dataset\"") }
        guard let version = root.optional("version"), version.isIntegerToken, version.integer == 1 else {
            throw ShardError(.unsupportedVersion, "manifest version \(root.optional("version").map { String($0.tokenText) } ?? "(missing)") is not 1")
        }
        let classes = try root.integer("classes", in: 1...ShardSchema.maxClasses)
        let k = try root.integer("k", in: 1...min(classes, ShardSchema.maxK))
        let keysFields = try root.object("keys")
        let keysFile = try fileName(keysFields)
        let keysCRC = try crc(keysFields)
        let keysBytes = try keysFields.integer("bytes", in: 0...Int.max)
        let keys = FileEntry(file: keysFile, count: try keysFields.integer("count", in: 0...Int(UInt32.max)), bytes: keysBytes, crc32: keysCRC)
        var names: Set<[UInt8]> = [Array(keysFile.utf8)]  // byte-wise: Swift String equality is Unicode equivalence
        var slots = Set<Int>()  // epoch << 32 | rank
        var shards: [ShardEntry] = []
        for (i, item) in try root.array("shards").enumerated() {
            let entry = try JSONFields(item, path: "shards[\(i)]", fail: { fail("manifest: " + $0) })
            let name = try fileName(entry)
            let crc = try crc(entry)
            let bytes = try entry.integer("bytes", in: 0...Int.max)
            let shard = ShardEntry(file: name, epoch: try entry.integer("epoch", in: 0...Int(Int32.max)),
                                   rank: try entry.integer("rank", in: 0...Int(Int32.max)),
                                   records: try entry.integer("records", in: 0...Int.max), bytes: bytes, crc32: crc)
            guard names.insert(Array(name.utf8)).inserted, slots.insert(shard.epoch << 32 | shard.rank).inserted else {
                throw fail("shards[\(i)] repeats a file name or an (epoch, rank) pair")
            }
            shards.append(shard)
        }
        return DatasetManifest(classes: classes, k: k, keys: keys, shards: shards)
    }

    /// A plain file name inside the dataset folder: not empty, `.` or `..`, without `/`, `\\` or NUL.
    private static func fileName(_ fields: JSONFields) throws -> String {
        let name = try fields.string("file")
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, name != ".", name != "..", !bytes.contains(0x2F), !bytes.contains(0x5C), !bytes.contains(0) else {
            throw fields.error("'\(fields.path.isEmpty ? "" : fields.path + ".")file' must be a plain file name inside the dataset folder, got \"\(name)\"")
        }
        return name
    }

    private static func crc(_ fields: JSONFields) throws -> String {
        let crc = try fields.string("crc32")
        let bytes = Array(crc.utf8)
        guard bytes.count == 8, bytes.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            throw fields.error("'\(fields.path.isEmpty ? "" : fields.path + ".")crc32' must be 8 lowercase hex digits, got \"\(crc)\"")
        }
        return crc
    }

    func write(directory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let output = try formatIO { try AtomicFileOutput(path: directory + "/" + Self.fileName) }
        do {
            let bytes = [UInt8](try encoder.encode(self)) + [0x0A]
            try formatIO {
                try output.write(bytes)
                try output.commit()
            }
        } catch {
            output.discard()
            throw error
        }
    }
}
