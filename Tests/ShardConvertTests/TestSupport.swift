import Foundation
@_exported import TestSupport      // TemporaryFolder
import XCTest

/// The shared reference fixtures: `<package root>/../shared/fixtures`.
enum SharedFixtures {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let root = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures").standardizedFileURL.path

    /// The folder of an official-layout fixture set, or an XCTSkip saying where it was looked for.
    static func official(_ name: String) throws -> String {
        let path = root + "/official_logits/" + name
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("shared fixture \(path) is absent (the shared/ folder is not next to this package); skipping")
        }
        return path
    }
}

/// An official-layout folder parsed independently of the converter: per (epoch, rank), the key lines
/// and raw record bytes.
struct OfficialFixture {
    struct Rank {
        var epoch: Int
        var rank: Int
        var keys: [String]
        var records: [[UInt8]]
    }

    let k: Int
    let ranks: [Rank]

    init(path: String) throws {
        var k = 0
        var ranks: [Rank] = []
        let manager = FileManager.default
        for folder in try manager.contentsOfDirectory(atPath: path).sorted() where folder.hasPrefix("logits_top") {
            let parts = folder.dropFirst("logits_top".count).components(separatedBy: "_epoch")
            k = Int(parts[0])!
            let epoch = Int(parts[1])!
            let names = try manager.contentsOfDirectory(atPath: path + "/" + folder)
            let rankNumbers = names.filter { $0.hasSuffix("-keys.txt") }
                .map { Int($0.dropFirst(4).dropLast("-keys.txt".count))! }.sorted()
            for rank in rankNumbers {
                let text = try String(contentsOfFile: "\(path)/\(folder)/rank\(rank)-keys.txt", encoding: .utf8)
                let keys = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
                let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(path)/\(folder)/rank\(rank)-values.bin")))
                let size = 4 + 4 * k
                let records = stride(from: 0, to: bytes.count, by: size).map { Array(bytes[$0..<($0 + size)]) }
                ranks.append(Rank(epoch: epoch, rank: rank, keys: keys, records: records))
            }
        }
        self.k = k
        self.ranks = ranks.sorted { ($0.epoch, $0.rank) < ($1.epoch, $1.rank) }
    }

    /// Per epoch, the keys found in more than one rank, and how many records beyond a key's first rank
    /// hold them.
    func keysInSeveralRanks() -> (keys: [Int: Set<String>], records: Int) {
        var seen: [Int: Set<String>] = [:]
        var shared: [Int: Set<String>] = [:]
        var records = 0
        for rank in ranks {
            for key in rank.keys {
                if seen[rank.epoch, default: []].insert(key).inserted { continue }
                shared[rank.epoch, default: []].insert(key)
                records += 1
            }
        }
        return (shared, records)
    }

    var recordCount: Int { ranks.reduce(0) { $0 + $1.records.count } }
}

/// Writes a small official-layout folder for error tests.
enum OfficialWriter {
    static func record(seed: Int32, indices: [Int16], values: [Float16]) -> [UInt8] {
        var bytes = withUnsafeBytes(of: seed.littleEndian, Array.init)
        for index in indices { bytes += withUnsafeBytes(of: index.littleEndian, Array.init) }
        for value in values { bytes += withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init) }
        return bytes
    }

    /// `ranks[r]` = keys of rank r; records are valid (descending values, indices 0..<K shifted by row).
    static func write(to folder: String, k: Int, epoch: Int, ranks: [[String]]) throws {
        let path = folder + "/logits_top\(k)_epoch\(epoch)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (rank, keys) in ranks.enumerated() {
            var values: [UInt8] = []
            for (row, _) in keys.enumerated() {
                let indices = (0..<k).map { Int16(($0 * 7 + row) % 50) }
                let probabilities = (0..<k).map { Float16(0.5 / Double($0 + 1) / 3) }
                values += record(seed: Int32(row * 1000 + rank), indices: indices, values: probabilities)
            }
            try Data(keys.map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: "\(path)/rank\(rank)-keys.txt"))
            try Data(values).write(to: URL(fileURLWithPath: "\(path)/rank\(rank)-values.bin"))
        }
    }
}

/// A distributed teacher pass written the way the official TinyViT code writes it, rule by rule:
///
/// - PyTorch's DistributedSampler pads an epoch's permutation of the N images to a multiple of the world
///   size W by repeating its first items, and rank r takes positions r, r + W, r + 2W, ...;
/// - each rank's writer (`_Writer` in TinyViT's data/augmentation/manager.py) keeps a dict of the keys it
///   wrote and silently skips a key it already has; otherwise it appends `key + "\n"` to
///   `rank{r}-keys.txt` and the value bytes to `rank{r}-values.bin`, in arrival order;
/// - a value is `int32 seed | K × int16 class index | K × float16 probability`, little-endian, the
///   probabilities descending (torch.topk), in the folder `logits_top{K}_epoch{E}`.
///
/// Every (epoch, rank, image) gets its own random seed, classes and probabilities, as a teacher run on a
/// freshly augmented image would, so a padded key carries other values in its second rank.
struct OfficialPassWriter {
    var images: Int
    var worldSize: Int
    var epochs: Int
    var k: Int
    var classes: Int
    var seed: UInt64

    /// Image i's key: ImageNet-style paths (long, sharing their first 16+ bytes within a class), with a
    /// few short and non-ASCII ones, so that key order is tested past any fixed-length prefix.
    func key(_ image: Int) -> String {
        switch image % 50 {
        case 7: return "k\(image)"
        case 13: return "train/é\(image % 3)/ß-\(image).JPEG"
        default:
            let wnid = "n" + String(1_440_764 + image % 17).leftPadded(to: 8)
            return "train/\(wnid)/\(wnid)_\(image * 37 % 10_007).JPEG"
        }
    }

    /// The positions each rank takes in an epoch of this permutation (DistributedSampler's padding and
    /// striding).
    func shares(of permutation: [Int]) -> [[Int]] {
        let total = (permutation.count + worldSize - 1) / worldSize * worldSize
        let padded = permutation + permutation.prefix(total - permutation.count)
        return (0..<worldSize).map { rank in stride(from: rank, to: total, by: worldSize).map { padded[$0] } }
    }

    /// Writes the folders; returns, per epoch, the images the padding put into a second rank.
    @discardableResult
    func write(to folder: String) throws -> [[Int]] {
        var rng = SeededRandom(seed: seed)
        var padded: [[Int]] = []
        for epoch in 0..<epochs {
            let permutation = Array(0..<images).shuffled(using: &rng)
            let total = (images + worldSize - 1) / worldSize * worldSize
            padded.append(Array(permutation.prefix(total - images)))
            let path = folder + "/logits_top\(k)_epoch\(epoch)"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            for (rank, share) in shares(of: permutation).enumerated() {
                var written = Set<String>()  // the writer's dict of keys
                var keys: [UInt8] = []
                var values: [UInt8] = []
                for image in share {
                    let key = key(image)
                    guard written.insert(key).inserted else { continue }
                    keys += Array((key + "\n").utf8)
                    values += record(using: &rng)
                }
                try Data(keys).write(to: URL(fileURLWithPath: "\(path)/rank\(rank)-keys.txt"))
                try Data(values).write(to: URL(fileURLWithPath: "\(path)/rank\(rank)-values.bin"))
            }
        }
        return padded
    }

    /// One value: a random seed, K distinct classes in random order, K descending probabilities (sum < 1).
    private func record(using rng: inout SeededRandom) -> [UInt8] {
        let seed = Int32(truncatingIfNeeded: rng.next())
        var chosen = Set<Int16>()
        var indices: [Int16] = []
        while indices.count < k {
            let index = Int16(Int(rng.next() % UInt64(classes)))
            if chosen.insert(index).inserted { indices.append(index) }
        }
        let weights = (0..<k).map { _ in Double(rng.next() >> 11) * 0x1p-53 }
        let total = weights.reduce(0, +) + 0.05
        let values = weights.map { Float16($0 / total) }.sorted(by: >)
        return OfficialWriter.record(seed: seed, indices: indices, values: values)
    }
}

/// SplitMix64, so that a test's official pass is the same on every run.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

/// Every file under a folder (relative paths) with its bytes.
func filesByPath(_ folder: String) throws -> [String: Data] {
    var files: [String: Data] = [:]
    for case let name as String in FileManager.default.enumerator(atPath: folder)! {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder + "/" + name, isDirectory: &isFolder), !isFolder.boolValue {
            files[name] = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + name))
        }
    }
    return files
}
