import Foundation
import ShardFormat

/// What a PATH argument names: a shard file or a dataset folder (one with a manifest).
enum InputPath {
    case shard(String)
    case dataset(String)

    /// Fails with exit code 2 when the path does not exist, cannot be read, or is a folder without a
    /// manifest.
    static func classify(_ path: String) throws -> InputPath {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw CLIFailure(file: path, code: "io", "no such file or folder")
        }
        if isFolder.boolValue {
            guard FileManager.default.fileExists(atPath: path + "/" + DatasetManifest.fileName) else {
                throw CLIFailure(file: path, code: "io", "not a dataset folder (no \(DatasetManifest.fileName)) and not a shard file")
            }
            return .dataset(path)
        }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw CLIFailure(file: path, code: "io", "cannot read the file")
        }
        return .shard(path)
    }

    /// The key table of the dataset a shard file sits in, when its folder's manifest lists the shard
    /// (or, for `NAME.partial`, NAME) and the key table's checksum matches the manifest; else nil.
    static func siblingKeys(ofShard path: String) -> MappedKeyTable? {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        var name = url.lastPathComponent
        if name.hasSuffix(".partial") { name = String(name.dropLast(".partial".count)) }
        guard let manifest = try? DatasetManifest.read(directory: folder), manifest.shards.contains(where: { $0.file == name }),
              let bytes = FileManager.default.contents(atPath: folder + "/" + manifest.keys.file),
              CRC32.hex(CRC32.checksum([UInt8](bytes))) == manifest.keys.crc32
        else { return nil }
        return try? MappedKeyTable(path: folder + "/" + manifest.keys.file)
    }
}
