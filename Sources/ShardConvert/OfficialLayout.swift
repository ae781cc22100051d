import Foundation

/// The folder layout the official TinyViT code (microsoft/Cream, TinyViT `save_logits.py`) writes its
/// teacher's sparse logits in:
///
///     DIR/logits_top{K}_epoch{E}/rank{r}-keys.txt    one key per line
///     DIR/logits_top{K}_epoch{E}/rank{r}-values.bin  records, little-endian:
///                                                    int32 seed | K × int16 class index | K × float16 probability
///
/// Probabilities are sorted descending (as `torch.topk` returns them).
public enum OfficialLayout {
    /// `logits_top{K}_epoch{E}`: one epoch's folder.
    public static func epochFolderName(k: Int, epoch: Int) -> String { "logits_top\(k)_epoch\(epoch)" }
    /// `rank{R}-keys.txt`: one key per line, in record order.
    public static func keysFileName(rank: Int) -> String { "rank\(rank)-keys.txt" }
    /// `rank{R}-values.bin`: the rank's records, one after another.
    public static func valuesFileName(rank: Int) -> String { "rank\(rank)-values.bin" }

    /// Bytes of one record: 4 + 2K + 2K.
    public static func recordSize(k: Int) -> Int { 4 + 4 * k }

    /// (K, epoch) of a folder named `logits_top{K}_epoch{E}`, or nil.
    static func parseEpochFolder(_ name: String) -> (k: Int, epoch: Int)? {
        guard let rest = name.dropPrefix("logits_top"), let split = rest.range(of: "_epoch"),
              let k = Int(digits: rest[..<split.lowerBound]), let epoch = Int(digits: rest[split.upperBound...])
        else { return nil }
        return (k, epoch)
    }

    /// (rank, is the keys file) of `rank{r}-keys.txt` or `rank{r}-values.bin`, or nil.
    static func parseRankFile(_ name: String) -> (rank: Int, isKeys: Bool)? {
        guard let rest = name.dropPrefix("rank"), let dash = rest.firstIndex(of: "-"),
              let rank = Int(digits: rest[..<dash])
        else { return nil }
        switch rest[rest.index(after: dash)...] {
        case "keys.txt": return (rank, true)
        case "values.bin": return (rank, false)
        default: return nil
        }
    }
}

/// One rank's pair of files in an epoch folder.
public struct OfficialRankFiles: Sendable, Equatable {
    /// The rank in the file names.
    public var rank: Int
    /// Path of `rank{R}-keys.txt`.
    public var keysPath: String
    /// Path of `rank{R}-values.bin`.
    public var valuesPath: String
}

/// One `logits_top{K}_epoch{E}` folder.
public struct OfficialEpochFolder: Sendable, Equatable {
    /// E, from the folder name.
    public var epoch: Int
    /// The folder's path.
    public var path: String
    /// Ascending by rank.
    public var ranks: [OfficialRankFiles]
}

/// The epochs, ranks and K found in an official-layout folder.
public struct OfficialSource: Sendable, Equatable {
    /// The folder that holds the epoch folders.
    public var directory: String
    /// K, the same in every epoch folder's name.
    public var k: Int
    /// Ascending by epoch.
    public var epochs: [OfficialEpochFolder]

    /// Finds the epoch folders and rank files. Throws when there are none, when K differs between
    /// folders, when an epoch appears twice, or when a rank lacks its keys or values file.
    public static func discover(_ directory: String) throws -> OfficialSource {
        let manager = FileManager.default
        var isFolder: ObjCBool = false
        guard manager.fileExists(atPath: directory, isDirectory: &isFolder) else {
            throw ConversionError.io("no such folder", file: directory)
        }
        guard isFolder.boolValue else { throw ConversionError.io("not a folder", file: directory) }
        let names: [String]
        do {
            names = try manager.contentsOfDirectory(atPath: directory).sorted()
        } catch {
            throw ConversionError.io("cannot list the folder: \(error.localizedDescription)", file: directory)
        }
        var k: Int?
        var kFolder = ""
        var epochs: [OfficialEpochFolder] = []
        for name in names {
            guard let (folderK, epoch) = OfficialLayout.parseEpochFolder(name) else { continue }
            let path = directory + "/" + name
            guard manager.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue else { continue }
            if let k, k != folderK {
                throw ConversionError.layout("K = \(folderK) here but K = \(k) in \(kFolder); all epochs must share K", file: path)
            }
            k = folderK
            kFolder = name
            if let other = epochs.first(where: { $0.epoch == epoch }) {
                throw ConversionError.layout("epoch \(epoch) appears twice (also \(other.path))", file: path)
            }
            epochs.append(OfficialEpochFolder(epoch: epoch, path: path, ranks: try ranks(in: path)))
        }
        guard let k, !epochs.isEmpty else {
            throw ConversionError.layout("no logits_top{K}_epoch{E} folders here", file: directory)
        }
        guard k >= 1 else { throw ConversionError.layout("K must be at least 1", file: directory + "/" + kFolder) }
        return OfficialSource(directory: directory, k: k, epochs: epochs.sorted { $0.epoch < $1.epoch })
    }

    private static func ranks(in folder: String) throws -> [OfficialRankFiles] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder)
        } catch {
            throw ConversionError.io("cannot list the folder: \(error.localizedDescription)", file: folder)
        }
        var keys = Set<Int>()
        var values = Set<Int>()
        for name in names {
            guard let (rank, isKeys) = OfficialLayout.parseRankFile(name) else { continue }
            if isKeys { keys.insert(rank) } else { values.insert(rank) }
        }
        for rank in keys.symmetricDifference(values).sorted() {
            let missing = keys.contains(rank) ? OfficialLayout.valuesFileName(rank: rank) : OfficialLayout.keysFileName(rank: rank)
            throw ConversionError.layout("missing; rank \(rank) needs both a keys and a values file", file: folder + "/" + missing)
        }
        guard !keys.isEmpty else { throw ConversionError.layout("no rank{r}-keys.txt / rank{r}-values.bin files", file: folder) }
        return keys.sorted().map {
            OfficialRankFiles(rank: $0, keysPath: folder + "/" + OfficialLayout.keysFileName(rank: $0),
                              valuesPath: folder + "/" + OfficialLayout.valuesFileName(rank: $0))
        }
    }
}

extension String {
    func dropPrefix(_ prefix: String) -> Substring? { hasPrefix(prefix) ? self[index(startIndex, offsetBy: prefix.count)...] : nil }
}

extension Int {
    /// A plain non-negative decimal number (ASCII digits only, no sign), or nil.
    init?(digits: Substring) {
        guard !digits.isEmpty, digits.count <= 9, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        self.init(digits)
    }
}
