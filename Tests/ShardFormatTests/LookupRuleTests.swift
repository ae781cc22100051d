import Foundation
import XCTest
@testable import ShardFormat

/// Spec/FORMAT.md 2: which record a lookup returns when several ranks of an epoch hold a sample (the padding of
/// a distributed sampler), with and without a reading rank; and the dataset vector that pins it
/// (Spec/vectors/datasets/padded-ranks, written with TINYSHARD_WRITE_VECTORS=1).
final class LookupRuleTests: XCTestCase {
    static let datasets = VectorTests.folder + "/datasets"
    static let name = "padded-ranks"
    static let keys = (0..<10).map { String(format: "img%02d", $0) }
    static let ranks = 3
    static let epochs = 2

    /// Ranks and positions as PyTorch's DistributedSampler deals them: the epoch's order padded to a multiple of
    /// the ranks with its first items, rank r taking positions r, r + W, … (so two samples sit in two ranks).
    static func share(epoch: Int, rank: Int) -> [UInt32] {
        var rng = SplitMix64(seed: 100 + UInt64(epoch))
        var order = Array(0..<UInt32(keys.count))
        for i in stride(from: order.count - 1, to: 0, by: -1) {  // Fisher–Yates on our own generator: stable forever
            order.swapAt(i, Int(rng.next() % UInt64(i + 1)))
        }
        let padded = order + order.prefix((ranks - keys.count % ranks) % ranks)
        return stride(from: rank, to: padded.count, by: ranks).map { padded[$0] }
    }

    static func write(_ root: String) throws {
        let schema = ShardSchema(classes: 8, k: 2, augmentation: .seed, recordsPerBlock: 2, provenance: ["teacher": "lookup-rule"])
        let writer = try DatasetWriter(directory: root, keys: try KeyTable(sorting: keys), schema: schema)
        for epoch in 0..<epochs {
            for rank in 0..<ranks {
                let shard = try writer.shardWriter(epoch: epoch, rank: rank)
                for sample in share(epoch: epoch, rank: rank) {
                    // The seed tells the copies apart: epoch · 1000 + rank · 100 + sample.
                    let seed = Int32(epoch * 1000 + rank * 100 + Int(sample))
                    try shard.append(sampleID: sample, indices: [Int32(rank), Int32(3 + epoch)], values: [Float16(0.5), Float16(0.25)],
                                     augmentation: withUnsafeBytes(of: seed.littleEndian) { Array($0) })
                }
                try writer.finish(shard)
            }
        }
        _ = try writer.finish()
    }

    /// The rule in its plainest form: ranks in ascending ((rank − r) mod n, rank), the first holder wins.
    static func expected(epoch: Int, sample: UInt32, readerRank: Int?) -> Int? {
        let order = (0..<ranks).sorted { a, b in
            guard let r = readerRank else { return a < b }
            return (((a - r) % ranks + ranks) % ranks, a) < ((((b - r) % ranks + ranks) % ranks), b)
        }
        return order.first { share(epoch: epoch, rank: $0).contains(sample) }
    }

    struct Lookup: Codable, Equatable {
        var epoch: Int
        var key: String
        /// The reading rank; null for a lookup without one.
        var reader_rank: Int?
        var shard_rank: Int
        var ordinal: Int
        var seed: Int32

        enum CodingKeys: String, CodingKey { case epoch, key, reader_rank, shard_rank, ordinal, seed }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(epoch, forKey: .epoch)
            try c.encode(key, forKey: .key)
            try c.encode(reader_rank, forKey: .reader_rank)  // null, not absent
            try c.encode(shard_rank, forKey: .shard_rank)
            try c.encode(ordinal, forKey: .ordinal)
            try c.encode(seed, forKey: .seed)
        }
    }

    struct LookupFile: Codable {
        var description: String
        var dataset: String
        var lookups: [Lookup]
    }

    func lookups(_ dataset: ShardDataset) throws -> [Lookup] {
        var out: [Lookup] = []
        for epoch in 0..<Self.epochs {
            for readerRank in [nil, 0, 1, 2, 4] as [Int?] {
                for key in Self.keys {
                    let found = try XCTUnwrap(try dataset.locate(epoch: epoch, key: key, rank: readerRank))
                    let seed = try XCTUnwrap(try found.shard.record(at: found.ordinal).seed)
                    out.append(Lookup(epoch: epoch, key: key, reader_rank: readerRank, shard_rank: found.shard.schema.rank,
                                      ordinal: found.ordinal, seed: seed))
                }
            }
        }
        return out
    }

    func testTheRuleAndItsVector() throws {
        let directory = try TemporaryDirectory("lookup")
        let root = directory.file(Self.name)
        try Self.write(root)
        let dataset = try ShardDataset(directory: root)
        let found = try lookups(dataset)
        var copies = 0
        for lookup in found {
            let sample = UInt32(Self.keys.firstIndex(of: lookup.key)!)
            XCTAssertEqual(lookup.shard_rank, Self.expected(epoch: lookup.epoch, sample: sample, readerRank: lookup.reader_rank), "\(lookup)")
            XCTAssertEqual(Int(lookup.seed), lookup.epoch * 1000 + lookup.shard_rank * 100 + Int(sample))
            if (0..<Self.ranks).filter({ Self.share(epoch: lookup.epoch, rank: $0).contains(sample) }).count > 1 { copies += 1 }
        }
        XCTAssertGreaterThan(copies, 0, "the padding must put some sample in two ranks")
        // Rank 1 reading a sample that ranks 0 and 1 both hold gets its own copy; without a rank, rank 0's.
        let both = (0..<UInt32(Self.keys.count)).first { Self.share(epoch: 0, rank: 0).contains($0) && Self.share(epoch: 0, rank: 1).contains($0) }
        if let both {
            XCTAssertEqual(try dataset.locate(epoch: 0, sampleID: both, rank: 1)?.shard.schema.rank, 1)
            XCTAssertEqual(try dataset.locate(epoch: 0, sampleID: both)?.shard.schema.rank, 0)
        }

        let file = LookupFile(description: """
            Spec/FORMAT.md 2: a dataset of 10 keys, 3 ranks and 2 epochs whose epochs were dealt as PyTorch's \
            DistributedSampler deals them (padded to 12 with the first items), so two samples per epoch sit in two \
            ranks with different records (seed = epoch·1000 + rank·100 + sample). Each lookup gives the (shard rank, \
            ordinal) and seed a reader must return for (epoch, key), with a reading rank (own rank first, then the \
            next ranks cyclically; rank 4 reads as rank 1 does, 4 mod 3) or without one (lowest rank).
            """, dataset: Self.name, lookups: found)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json = try encoder.encode(file)
        if ProcessInfo.processInfo.environment["TINYSHARD_WRITE_VECTORS"] == "1" {
            let target = Self.datasets + "/" + Self.name
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.createDirectory(atPath: Self.datasets, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: root, toPath: target)
            try json.write(to: URL(fileURLWithPath: Self.datasets + "/" + Self.name + ".json"))
        }
        // The stored vector answers the same (its bytes are what other implementations test against).
        let stored = try JSONDecoder().decode(LookupFile.self, from: Data(contentsOf: URL(fileURLWithPath: Self.datasets + "/" + Self.name + ".json")))
        XCTAssertEqual(try lookups(try ShardDataset(directory: Self.datasets + "/" + Self.name)), stored.lookups)
        XCTAssertEqual(stored.lookups, found)
        XCTAssertTrue(ShardVerifier().verifyDataset(directory: Self.datasets + "/" + Self.name).isClean)
    }
}
