import Foundation
import XCTest

/// A temporary folder removed when the test ends.
final class TemporaryFolder {
    let path: String

    init(_ label: String = "convert") {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("tinyshard-\(label)-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

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
/// and raw record bytes, and the same after dropping keys an earlier rank of the epoch already has.
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

    /// The ranks without records whose key a lower rank of the same epoch holds; and how many went.
    func deduplicated() -> (ranks: [Rank], dropped: Int) {
        var seen: [Int: Set<String>] = [:]
        var dropped = 0
        let ranks = self.ranks.map { rank -> Rank in
            var kept = Rank(epoch: rank.epoch, rank: rank.rank, keys: [], records: [])
            for (key, record) in zip(rank.keys, rank.records) {
                if seen[rank.epoch, default: []].insert(key).inserted {
                    kept.keys.append(key)
                    kept.records.append(record)
                } else {
                    dropped += 1
                }
            }
            return kept
        }
        return (ranks, dropped)
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
