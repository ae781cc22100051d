import Foundation
import XCTest
@testable import ShardFormat

/// The record-order sampler (Spec/RECORD-ORDER.md): shares, pieces, windows, errors, and the vector other
/// implementations check against (Spec/vectors/record-order.json, written with TINYSHARD_WRITE_VECTORS=1).
final class RecordOrderTests: XCTestCase {
    static let vector = VectorTests.folder + "/sampling/record-order.json"
    /// Three shards of an epoch, with short last blocks and another block size in the middle.
    static let layout = [RecordOrder.Shard(rank: 0, records: 23, recordsPerBlock: 4), RecordOrder.Shard(rank: 2, records: 10, recordsPerBlock: 3),
                         RecordOrder.Shard(rank: 1, records: 17, recordsPerBlock: 4)]

    func testSharesArePiecesOfStoredOrderAndCoverTheEpoch() throws {
        let order = RecordOrder(shards: Self.layout)
        XCTAssertEqual(order.count, 50)
        XCTAssertEqual(order.shards.map(\.rank), [0, 1, 2])
        for world in [1, 2, 3, 7, 8, 50] {
            var seen = [Int](repeating: 0, count: order.count)
            let q = order.share(world: world)
            for rank in 0..<world {
                let plain = try order.items(world: world, rank: rank)
                XCTAssertEqual(plain.count, q)
                // Positions r·q + i, wrapping at the end of the epoch.
                for (i, item) in plain.enumerated() {
                    XCTAssertEqual(item, order.item(atPosition: (rank * q + i) % order.count))
                    seen[(rank * q + i) % order.count] += 1
                }
                for window in [1, 4] {
                    let shuffled = try order.items(world: world, rank: rank, window: window, seed: 9, epoch: 3)
                    XCTAssertEqual(shuffled.count, q)
                    XCTAssertEqual(Set(shuffled.map { [$0.shard, $0.ordinal] }), Set(plain.map { [$0.shard, $0.ordinal] }))
                }
            }
            XCTAssertTrue(seen.allSatisfy { $0 >= 1 }, "every record is read")
            XCTAssertEqual(seen.reduce(0, +), q * world)
        }
        // Pieces never cross a block; a window of one piece keeps that piece's records together.
        for piece in order.pieces(world: 3, rank: 1) {
            let blocks = Set(piece.map { [$0.shard, $0.ordinal / order.shards[$0.shard].recordsPerBlock] })
            XCTAssertEqual(blocks.count, 1)
        }
        // Another training epoch or seed shuffles differently; the same ones the same.
        let a = try order.items(world: 2, rank: 0, window: 2, seed: 1, epoch: 0)
        XCTAssertEqual(a, try order.items(world: 2, rank: 0, window: 2, seed: 1, epoch: 0))
        XCTAssertNotEqual(a, try order.items(world: 2, rank: 0, window: 2, seed: 1, epoch: 1))
        XCTAssertNotEqual(a, try order.items(world: 2, rank: 0, window: 2, seed: 2, epoch: 0))
    }

    func testWorldsThatCannotBeCutAreRefusedNamingBothNumbers() {
        let order = RecordOrder(shards: Self.layout)
        for (world, rank) in [(0, 0), (2, 2), (2, -1), (51, 0)] {
            let error = shardError(try order.items(world: world, rank: rank))
            XCTAssertEqual(error?.code, .invalidArgument)
            XCTAssertTrue(error?.message.contains(String(world)) ?? false, error?.message ?? "")
        }
        XCTAssertEqual(shardError(try order.items(world: 2, rank: 0, window: -1))?.code, .invalidArgument)
    }

    struct Case: Codable, Equatable {
        var world: Int
        var rank: Int
        var window: Int
        var seed: UInt64
        var epoch: UInt64
        /// [shard rank, ordinal] per record, in reading order.
        var order: [[Int]]
    }

    struct File: Codable, Equatable {
        var description: String
        var shards: [[String: Int]]
        var cases: [Case]
    }

    func testTheVector() throws {
        let order = RecordOrder(shards: Self.layout)
        var cases: [Case] = []
        for world in [1, 2, 3, 8] {
            for rank in Set([0, 1, world - 1]).sorted() where rank < world {
                for window in [0, 1, 4] {
                    for (seed, epoch) in [(0, 0), (12345, 7)] as [(UInt64, UInt64)] where window > 0 || seed == 0 {
                        let items = try order.items(world: world, rank: rank, window: window, seed: seed, epoch: epoch)
                        cases.append(Case(world: world, rank: rank, window: window, seed: seed, epoch: epoch,
                                          order: items.map { [order.shards[$0.shard].rank, $0.ordinal] }))
                    }
                }
            }
        }
        let file = File(description: """
            Spec/RECORD-ORDER.md: an epoch of three shards (rank 0: 23 records in blocks of 4; rank 1: 17 in blocks of 4; \
            rank 2: 10 in blocks of 3), and for each (world, rank, window, seed, training epoch) the (shard rank, ordinal) \
            of every record the rank reads, in order.
            """, shards: Self.layout.map { ["rank": $0.rank, "records": $0.records, "records_per_block": $0.recordsPerBlock] },
            cases: cases)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        if ProcessInfo.processInfo.environment["TINYSHARD_WRITE_VECTORS"] == "1" {
            try FileManager.default.createDirectory(atPath: VectorTests.folder + "/sampling", withIntermediateDirectories: true)
            try encoder.encode(file).write(to: URL(fileURLWithPath: Self.vector))
        }
        let stored = try JSONDecoder().decode(File.self, from: Data(contentsOf: URL(fileURLWithPath: Self.vector)))
        XCTAssertEqual(stored, file)
    }
}
