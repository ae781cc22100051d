import Foundation
import XCTest
@testable import ShardFormat

/// Seeded random shards (K, C, records_per_block, value kind, sorted, augmentation, record count) are
/// written and read back through every read path; the file is also decoded by the test's own reference
/// decoder, and the verifier must find nothing.
final class RoundTripPropertyTests: XCTestCase {
    struct Shape: CustomStringConvertible {
        var schema: ShardSchema
        var count: Int
        var description: String {
            "K=\(schema.k) C=\(schema.classes) R=\(schema.recordsPerBlock) \(schema.valueKind) sorted=\(schema.sorted) \(schema.augmentation) N=\(count)"
        }
    }

    static func randomShape(_ rng: inout SplitMix64) -> Shape {
        let k: Int
        switch Int.random(in: 0..<10, using: &rng) {
        case 0: k = 1
        case 1: k = 20
        case 2: k = 21
        case 3: k = 256
        case 4, 5: k = Int.random(in: 1...256, using: &rng)
        default: k = Int.random(in: 1...24, using: &rng)
        }
        let candidates = [k, 256, 257, 65536, 65537, 1 << 20, Int.random(in: k...(1 << 20), using: &rng),
                          Int.random(in: k...max(k, 600), using: &rng)].filter { $0 >= k }
        let classes = candidates.randomElement(using: &rng)!
        let r = rng.chance(0.3) ? Int.random(in: 1...4, using: &rng) : Int.random(in: 1...300, using: &rng)
        let augmentation: AugmentationKind
        switch Int.random(in: 0..<3, using: &rng) {
        case 0: augmentation = .none
        case 1: augmentation = .seed
        default: augmentation = .params(outputHeight: Int.random(in: 1...512, using: &rng), outputWidth: Int.random(in: 1...512, using: &rng))
        }
        let schema = ShardSchema(
            classes: classes, k: k, valueKind: rng.chance(0.7) ? .probability : .logit,
            temperature: [1, 2.5, 0.1].randomElement(using: &rng)!, sorted: Bool.random(using: &rng),
            augmentation: augmentation, epoch: Int.random(in: 0...5, using: &rng), rank: Int.random(in: 0...7, using: &rng),
            recordsPerBlock: r, provenance: ["teacher": "test", "dataset_checksum": "0badf00d"])
        // Record counts: empty, exactly on a block boundary, one past it, or random; kept small enough
        // (≤ ~5000 entries) for a debug build.
        let limit = max(1, 5000 / k)
        let blocks = Int.random(in: 1...3, using: &rng)
        let count: Int
        switch Int.random(in: 0..<5, using: &rng) {
        case 0: count = 0
        case 1: count = min(blocks * r, max(r, limit))
        case 2: count = min(blocks * r + 1, limit)
        default: count = Int.random(in: 1...limit, using: &rng)
        }
        return Shape(schema: schema, count: count)
    }

    /// Fixed shapes that must always be covered, whatever the RNG draws.
    static let fixedShapes: [Shape] = [
        Shape(schema: ShardSchema(classes: 10, k: 3, recordsPerBlock: 2), count: 0),
        Shape(schema: ShardSchema(classes: 1, k: 1, recordsPerBlock: 1), count: 1),
        Shape(schema: ShardSchema(classes: 256, k: 20, augmentation: .seed, recordsPerBlock: 5), count: 10),
        Shape(schema: ShardSchema(classes: 257, k: 21, sorted: false, recordsPerBlock: 7), count: 15),
        Shape(schema: ShardSchema(classes: 65536, k: 256, valueKind: .logit, sorted: false, recordsPerBlock: 3), count: 6),
        Shape(schema: ShardSchema(classes: 65537, k: 5, augmentation: .params(outputHeight: 224, outputWidth: 224), recordsPerBlock: 300), count: 300),
        Shape(schema: ShardSchema(classes: 1 << 20, k: 10, recordsPerBlock: 64), count: 129),
        Shape(schema: ShardSchema(classes: 256, k: 256, sorted: false, recordsPerBlock: 4), count: 9),
        Shape(schema: ShardSchema(classes: 1 << 24, k: 2, valueKind: .logit, recordsPerBlock: 65_536), count: 3),
    ]

    func testRandomShardsRoundTripThroughEveryReadPath() throws {
        var rng = SplitMix64(seed: 0x7153_4841_5244)
        let directory = try TemporaryDirectory("roundtrip")
        var shapes = Self.fixedShapes
        for _ in 0..<40 { shapes.append(Self.randomShape(&rng)) }
        for (trial, shape) in shapes.enumerated() {
            let records = RecordGenerator.records(schema: shape.schema, count: shape.count, using: &rng)
            try checkRoundTrip(shape.schema, records, path: directory.file("t\(trial).tshard"), trial: "trial \(trial) [\(shape)]", rng: &rng)
        }
    }

    /// Sample ids with all four byte planes non-zero, far above the record count (the reader's sample
    /// table must not grow with the largest id). Kept below 2^26: the writer's and verifier's duplicate
    /// check costs one bit per possible id.
    func testLargeSampleIDsRoundTrip() throws {
        var rng = SplitMix64(seed: 99)
        let directory = try TemporaryDirectory("bigids")
        let schema = ShardSchema(classes: 1000, k: 4, augmentation: .seed, recordsPerBlock: 3)
        var records = RecordGenerator.records(schema: schema, count: 7, using: &rng)
        records[2].sampleID = 0x03FE_DCBA
        records[5].sampleID = 0x0300_0001
        try checkRoundTrip(schema, records, path: directory.file("big.tshard"), trial: "large ids", rng: &rng)
    }

    /// K = 1: no later values, an empty-looking order section (L = 0), a single index per record.
    func testKEqualsOneShards() throws {
        var rng = SplitMix64(seed: 1)
        let directory = try TemporaryDirectory("k1")
        for (n, schema) in [ShardSchema(classes: 1, k: 1, recordsPerBlock: 5),
                            ShardSchema(classes: 70_000, k: 1, valueKind: .logit, sorted: false, augmentation: .seed, recordsPerBlock: 64)].enumerated() {
            let records = RecordGenerator.records(schema: schema, count: 200, using: &rng)
            try checkRoundTrip(schema, records, path: directory.file("k1-\(n).tshard"), trial: "K = 1 (\(n))", rng: &rng)
            XCTAssertEqual(try ShardFileModel(try readBytes(directory.file("k1-\(n).tshard"))).blocks[0].sections[4].decodedLength, 0)
        }
    }

    func checkRoundTrip(_ schema: ShardSchema, _ records: [TestRecord], path: String, trial: String,
                        rng: inout SplitMix64) throws {
        let info = try writeShard(path, schema, records)
        let bytes = try readBytes(path)
        XCTAssertEqual(info.records, records.count, trial)
        XCTAssertEqual(info.bytes, bytes.count, trial)
        XCTAssertEqual(info.crc32, referenceCRC32(bytes), trial)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".partial"), trial)

        // The test's own decoder agrees (layout, checksums, section lengths, transforms).
        let reference = try ReferenceShard(bytes)
        XCTAssertEqual(reference.records, records, "\(trial): reference decoder")
        let model = try ShardFileModel(bytes)
        XCTAssertEqual(model.serialized(), bytes, "\(trial): re-serializing the parsed file changes it")
        for block in model.blocks {
            for section in block.sections {
                XCTAssertTrue(section.codec == 0 || section.stored.count < Int(section.decodedLength),
                              "\(trial): zlib chosen although it is not smaller")
            }
        }

        let reader = try ShardReader(path: path)
        XCTAssertEqual(reader.schema, schema, trial)
        XCTAssertEqual(reader.recordCount, records.count, trial)
        XCTAssertEqual(reader.blockCount, (records.count + schema.recordsPerBlock - 1) / schema.recordsPerBlock, trial)
        XCTAssertEqual(reader.fileSize, bytes.count, trial)

        // Every record, in stored order, by ordinal.
        let cursor = reader.makeCursor()
        for (ordinal, expected) in records.enumerated() {
            XCTAssertEqual(TestRecord(try cursor.record(at: ordinal)), expected, "\(trial): record \(ordinal)")
            XCTAssertEqual(try cursor.sampleID(at: ordinal), expected.sampleID, trial)
        }
        assertShardError(.invalidArgument, try cursor.record(at: records.count), trial)
        assertShardError(.invalidArgument, try cursor.record(at: -1), trial)

        // forEachRecord: every record once, in order.
        var seen = 0
        try reader.forEachRecord { ordinal, record in
            XCTAssertEqual(ordinal, seen, trial)
            XCTAssertEqual(TestRecord(record), records[ordinal], "\(trial): forEachRecord \(ordinal)")
            seen += 1
        }
        XCTAssertEqual(seen, records.count, trial)

        // Lookup by sample id, hits and misses.
        for (ordinal, record) in records.enumerated() {
            XCTAssertEqual(try reader.ordinal(ofSample: record.sampleID), ordinal, "\(trial): lookup \(record.sampleID)")
        }
        let present = Set(records.map(\.sampleID))
        for _ in 0..<20 {
            let id = UInt32.random(in: 0..<(1 << 21), using: &rng)
            if !present.contains(id) { XCTAssertNil(try reader.ordinal(ofSample: id), trial) }
        }
        XCTAssertNil(try reader.ordinal(ofSample: UInt32.max), trial)

        guard !records.isEmpty else {
            XCTAssertTrue(ShardVerifier().verifyShard(path: path).isClean, trial)
            return
        }
        let k = schema.k
        // Sparse, in a shuffled order with repeats (crossing blocks both ways).
        var ordinals = (0..<records.count).shuffled(using: &rng)
        ordinals += (0..<min(5, records.count)).map { _ in Int.random(in: 0..<records.count, using: &rng) }
        var indices = [Int32](repeating: -1, count: ordinals.count * k)
        var values = [Float](repeating: .nan, count: ordinals.count * k)
        try indices.withUnsafeMutableBufferPointer { i in
            try values.withUnsafeMutableBufferPointer { v in try cursor.sparse(ordinals, indices: i, values: v) }
        }
        for (row, ordinal) in ordinals.enumerated() {
            let expected = records[ordinal]
            XCTAssertEqual(Array(indices[(row * k)..<((row + 1) * k)]), expected.indices, "\(trial): sparse row \(row)")
            XCTAssertEqual(values[(row * k)..<((row + 1) * k)].map(\.bitPattern), expected.values.map { Float($0).bitPattern },
                           "\(trial): sparse values row \(row)")
        }
        assertShardError(.invalidArgument, try indices.withUnsafeMutableBufferPointer { i in
            try values.withUnsafeMutableBufferPointer { v in try cursor.sparse([0], indices: i, values: v) }
        })

        // Dense: a few rows (C can be 2^24: rows are capped at 2^21 floats), checked element by element.
        let classes = schema.classes
        let rows = min(records.count, 3, (1 << 21) / classes)
        let denseOrdinals = (0..<rows).map { _ in Int.random(in: 0..<records.count, using: &rng) }
        var dense = [Float](repeating: .nan, count: rows * classes)
        if schema.valueKind == .logit {
            assertShardError(.notProbability, try dense.withUnsafeMutableBufferPointer { try cursor.dense(denseOrdinals, into: $0) }, trial)
        } else if rows > 0 {
            try dense.withUnsafeMutableBufferPointer { try cursor.dense(denseOrdinals, into: $0) }
            for (row, ordinal) in denseOrdinals.enumerated() {
                let record = records[ordinal]
                let base = row * classes
                for j in 0..<k {
                    XCTAssertEqual(dense[base + Int(record.indices[j])].bitPattern, Float(record.values[j]).bitPattern,
                                   "\(trial): dense row \(row), entry \(j)")
                }
                // Every other class holds the residual (K = C: there is none).
                let fillBits = expectedResidual(record.valueBits, classes: classes)?.bitPattern ?? 0
                let inTopK = Set(record.indices.map(Int.init))
                var wrong = 0
                var firstWrong = -1
                dense.withUnsafeBufferPointer { buffer in
                    for c in 0..<classes where buffer[base + c].bitPattern != fillBits && !inTopK.contains(c) {
                        wrong += 1
                        if firstWrong < 0 { firstWrong = c }
                    }
                }
                XCTAssertEqual(wrong, 0, "\(trial): dense row \(row) (ordinal \(ordinal)) differs first at class \(firstWrong)")
            }
            assertShardError(.invalidArgument, try dense.withUnsafeMutableBufferPointer { try cursor.dense(denseOrdinals + [0], into: $0) })
        }

        let report = ShardVerifier().verifyShard(path: path)
        XCTAssertTrue(report.isClean, "\(trial): \(report.problems)")
        XCTAssertEqual(report.records, records.count, trial)
    }

    /// A record with exactly R records per block: no partial last block, and block b starts at b·R.
    func testBlockBoundaries() throws {
        let directory = try TemporaryDirectory("boundary")
        var rng = SplitMix64(seed: 5)
        for r in [1, 2, 3, 8] {
            for count in [r - 1, r, r + 1, 2 * r, 2 * r + 1] where count >= 0 {
                let schema = ShardSchema(classes: 50, k: 4, recordsPerBlock: r)
                let records = RecordGenerator.records(schema: schema, count: count, using: &rng)
                let path = directory.file("r\(r)-n\(count).tshard")
                try writeShard(path, schema, records)
                let model = try ShardFileModel(try readBytes(path))
                XCTAssertEqual(model.blocks.map(\.count), (0..<model.blocks.count).map { UInt32(min(r, count - $0 * r)) })
                XCTAssertEqual(model.blocks.map(\.firstOrdinal), (0..<model.blocks.count).map { UInt64($0 * r) })
                XCTAssertEqual(model.blocks.count, (count + r - 1) / r)
                let reader = try ShardReader(path: path)
                for b in 0..<reader.blockCount { XCTAssertEqual(reader.ordinals(ofBlock: b), (b * r)..<min(b * r + r, count)) }
                XCTAssertEqual(try (0..<count).map { TestRecord(try reader.record(at: $0)) }, records)
            }
        }
    }

    /// ShardRecord.seed reads a `seed` code as a little-endian int32; other code sizes have none.
    func testSeedAccessorReadsLittleEndianInt32() {
        XCTAssertEqual(ShardRecord(sampleID: 0, augmentation: [0xFF, 0xFF, 0xFF, 0xFF], indices: [], values: []).seed, -1)
        XCTAssertEqual(ShardRecord(sampleID: 0, augmentation: [0, 0, 0, 0x80], indices: [], values: []).seed, Int32.min)
        XCTAssertEqual(ShardRecord(sampleID: 0, augmentation: [0x78, 0x56, 0x34, 0x12], indices: [], values: []).seed, 0x1234_5678)
        XCTAssertNil(ShardRecord(sampleID: 0, augmentation: [], indices: [], values: []).seed)
        XCTAssertNil(ShardRecord(sampleID: 0, augmentation: [UInt8](repeating: 0, count: 80), indices: [], values: []).seed)
    }

    /// Records given as float32 are rounded to float16 to nearest, ties to even.
    func testFloat32ValuesAreRoundedToNearestEven() throws {
        let directory = try TemporaryDirectory("round")
        let path = directory.file("round.tshard")
        let schema = ShardSchema(classes: 10, k: 3, valueKind: .logit, sorted: false, recordsPerBlock: 4)
        let writer = try ShardWriter(path: path, schema: schema)
        // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even gives 1. 1 + 3·2^-11 ties up to 1 + 2^-9.
        try writer.append(sampleID: 0, indices: [0, 1, 2], values: [Float(1 + 0x1p-11), Float(1 + 3 * 0x1p-11), 0.1])
        try writer.finish()
        let record = try ShardReader(path: path).record(at: 0)
        XCTAssertEqual(record.values.map(\.bitPattern), [0x3C00, 0x3C02, 0x2E66])
    }
}
