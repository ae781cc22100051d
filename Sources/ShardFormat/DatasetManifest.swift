import Foundation

/// `manifest.json` (Spec/FORMAT.md section 6): the dataset's files with their sizes and checksums.
public struct DatasetManifest: Codable, Sendable, Equatable {
    public static let fileName = "manifest.json"
    public static let keysFileName = "keys.tsk"

    public struct FileEntry: Codable, Sendable, Equatable {
        public var file: String
        public var count: Int
        public var bytes: Int
        public var crc32: String
    }

    public struct ShardEntry: Codable, Sendable, Equatable {
        public var file: String
        public var epoch: Int
        public var rank: Int
        public var records: Int
        public var bytes: Int
        public var crc32: String
    }

    public var format = "tinyshard-dataset"
    public var version = 1
    public var classes: Int
    public var k: Int
    public var keys: FileEntry
    public var shards: [ShardEntry]

    public static func read(directory: String) throws -> DatasetManifest {
        let path = directory + "/" + fileName
        let location = ShardLocation(file: path)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ShardError(.io, "cannot read the manifest", at: location)
        }
        let manifest: DatasetManifest
        do {
            manifest = try JSONDecoder().decode(DatasetManifest.self, from: data)
        } catch {
            throw ShardError(.manifestMismatch, "manifest is not valid JSON of the expected shape (\(error))", at: location)
        }
        guard manifest.format == "tinyshard-dataset", manifest.version == 1 else {
            throw ShardError(.unsupportedVersion, "manifest format '\(manifest.format)' version \(manifest.version) is not tinyshard-dataset 1", at: location)
        }
        for name in [manifest.keys.file] + manifest.shards.map(\.file) where name.contains("/") || name.hasPrefix(".") {
            throw ShardError(.manifestMismatch, "file name '\(name)' must be a plain name inside the dataset folder", at: location)
        }
        return manifest
    }

    func write(directory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let output = try AtomicFileOutput(path: directory + "/" + Self.fileName)
        do {
            try output.write([UInt8](try encoder.encode(self)) + [0x0A])
            try output.commit()
        } catch {
            output.discard()
            throw error
        }
    }
}
