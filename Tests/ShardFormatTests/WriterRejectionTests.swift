import Foundation
import XCTest
@testable import ShardFormat

/// The writer refuses records that break Spec section 2 (and schema mismatches) with the right error
/// code, and a refused record changes nothing: the writer goes on and the file holds only the accepted
/// records.
final class WriterRejectionTests: XCTestCase {
    var directory: TemporaryDirectory!

    override func setUpWithError() throws { directory = try TemporaryDirectory("reject") }
    override func tearDown() { directory = nil }

    /// Appends `valid` records around every rejected one and checks that the file holds exactly the
    /// valid ones.
    func checkRejections(_ schema: ShardSchema, _ cases: [(String, ShardErrorCode, (ShardWriter) throws -> Void)],
                         file: StaticString = #filePath, line: UInt = #line) throws {
        let path = directory.file("\(UUID().uuidString).tshard")
        let writer = try ShardWriter(path: path, schema: schema)
        var rng = SplitMix64(seed: 1)
        var accepted: [TestRecord] = []
        var nextID: UInt32 = 1000
        func appendValid() throws {
            let record = RecordGenerator.record(schema: schema, sampleID: nextID, using: &rng)
            nextID += 1
            try writer.append(record)
            accepted.append(record)
        }
        try appendValid()
        for (what, code, body) in cases {
            let before = writer.recordCount
            if let error = shardError(try body(writer), file: file, line: line) {
                XCTAssertEqual(error.code, code, "\(what): \(error)", file: file, line: line)
                XCTAssertEqual(error.location.file, path, "\(what): the error names the file", file: file, line: line)
            }
            XCTAssertEqual(writer.recordCount, before, "\(what): a refused record was counted", file: file, line: line)
            try appendValid()
        }
        try writer.finish()
        let reader = try ShardReader(path: path)
        XCTAssertEqual(try (0..<reader.recordCount).map { TestRecord(try reader.record(at: $0)) }, accepted, file: file, line: line)
        XCTAssertTrue(ShardVerifier().verifyShard(path: path).isClean, file: file, line: line)
    }

    func testProbabilityRecordRejections() throws {
        let schema = ShardSchema(classes: 10, k: 3, sorted: true, augmentation: .none, recordsPerBlock: 2)
        let nan = Float16.nan.bitPattern
        let h = { (v: Float16) in v.bitPattern }
        try checkRejections(schema, [
            ("too few indices", .invalidArgument, { try $0.append(sampleID: 1, indices: [1, 2], valueBits: [h(0.5), h(0.2), h(0.1)]) }),
            ("too many indices", .invalidArgument, { try $0.append(sampleID: 1, indices: [1, 2, 3, 4], valueBits: [h(0.5), h(0.2), h(0.1)]) }),
            ("too few values", .invalidArgument, { try $0.append(sampleID: 1, indices: [1, 2, 3], valueBits: [h(0.5), h(0.2)]) }),
            ("too many float values", .invalidArgument, { try $0.append(sampleID: 1, indices: [1, 2, 3], values: [Float](repeating: 0.1, count: 4)) }),
            ("too few float16 values", .invalidArgument, { try $0.append(sampleID: 1, indices: [1, 2, 3], values: [Float16(0.1)]) }),
            ("index = C", .indexOutOfRange, { try $0.append(sampleID: 1, indices: [1, 10, 3], valueBits: [h(0.5), h(0.2), h(0.1)]) }),
            ("index ≫ C", .indexOutOfRange, { try $0.append(sampleID: 1, indices: [Int32.max, 2, 3], valueBits: [h(0.5), h(0.2), h(0.1)]) }),
            ("negative index", .indexOutOfRange, { try $0.append(sampleID: 1, indices: [1, -1, 3], valueBits: [h(0.5), h(0.2), h(0.1)]) }),
            ("Int32.min index", .indexOutOfRange, { try $0.append(sampleID: 1, indices: [1, 2, Int32.min], valueBits: [h(0.5), h(0.2), h(0.1)]) }),
            ("duplicate index", .duplicateIndex, { try $0.append(sampleID: 1, indices: [4, 2, 4], valueBits: [h(0.5), h(0.2), h(0.1)]) }),
            ("NaN", .badValue, { try $0.append(sampleID: 1, indices: [1, 2, 3], valueBits: [h(0.5), nan, h(0.1)]) }),
            ("NaN as float", .badValue, { try $0.append(sampleID: 1, indices: [1, 2, 3], values: [Float(0.5), .nan, 0.1]) }),
            ("infinity", .badValue, { try $0.append(sampleID: 1, indices: [1, 2, 3], values: [Float16.infinity, Float16(0.2), Float16(0.1)]) }),
            ("float32 too large for float16", .badValue, { try $0.append(sampleID: 1, indices: [1, 2, 3], values: [Float(1e6), 0.2, 0.1]) }),
            ("negative probability", .badValue, { try $0.append(sampleID: 1, indices: [1, 2, 3], values: [Float16(0.5), 0.2, -0.001]) }),
            ("probability above 1", .badValue, { try $0.append(sampleID: 1, indices: [1, 2, 3], values: [Float16(1.001), 0, 0]) }),
            ("sum 1.2", .badValue, { try $0.append(sampleID: 1, indices: [1, 2, 3], values: [Float16(0.6), 0.4, 0.2]) }),
            // 0.5009765625 + 0.5 = 1 + 2^-10 > 1 + 2^-11 + 3·2^-25.
            ("sum just above the bound", .badValue, { try $0.append(sampleID: 1, indices: [1, 2, 3], valueBits: [0x3802, 0x3800, 0]) }),
            ("increasing values in a sorted shard", .notSorted, { try $0.append(sampleID: 1, indices: [1, 2, 3], values: [Float16(0.2), 0.5, 0.1]) }),
            ("increase at the end", .notSorted, { try $0.append(sampleID: 1, indices: [1, 2, 3], values: [Float16(0.5), 0, 0.0001]) }),
            ("augmentation code for kind none", .badAugmentation, { try $0.append(sampleID: 1, indices: [1, 2, 3], values: [Float16(0.5), 0.2, 0.1], augmentation: [0, 0, 0, 0]) }),
            ("duplicate sample id", .duplicateSample, { try $0.append(sampleID: 1000, indices: [1, 2, 3], values: [Float16(0.5), 0.2, 0.1]) }),
        ])
    }

    func testSumExactlyAtTheBoundIsAccepted() throws {
        let schema = ShardSchema(classes: 10, k: 2, recordsPerBlock: 4)
        let path = directory.file("bound.tshard")
        let writer = try ShardWriter(path: path, schema: schema)
        // 0.50048828125 + 0.5 = 1 + 2^-11 ≤ 1 + 2^-11 + 2·2^-25: a float16 rounding of a true distribution.
        try writer.append(sampleID: 0, indices: [3, 4], valueBits: [0x3801, 0x3800])
        try writer.append(sampleID: 1, indices: [3, 4], valueBits: [0x3C00, 0x0000])  // 1 and 0
        try writer.append(sampleID: 2, indices: [3, 4], valueBits: [0x0000, 0x8000])  // +0 then -0: not increasing
        try writer.finish()
        XCTAssertTrue(ShardVerifier().verifyShard(path: path).isClean)
        XCTAssertEqual(try ShardReader(path: path).record(at: 2).values.map(\.bitPattern), [0x0000, 0x8000])
    }

    func testLogitAndAugmentationRejections() throws {
        let schema = ShardSchema(classes: 300, k: 2, valueKind: .logit, sorted: true, augmentation: .seed, recordsPerBlock: 3)
        try checkRejections(schema, [
            ("NaN logit", .badValue, { try $0.append(sampleID: 1, indices: [1, 2], values: [Float16.nan, 0], augmentation: [1, 2, 3, 4]) }),
            ("-infinity logit", .badValue, { try $0.append(sampleID: 1, indices: [1, 2], values: [5, -Float16.infinity], augmentation: [1, 2, 3, 4]) }),
            ("unsorted logits", .notSorted, { try $0.append(sampleID: 1, indices: [1, 2], values: [Float16(-3), 7], augmentation: [1, 2, 3, 4]) }),
            ("index 300 of 300", .indexOutOfRange, { try $0.append(sampleID: 1, indices: [300, 2], values: [Float16(3), 2], augmentation: [1, 2, 3, 4]) }),
            ("seed code of 3 bytes", .badAugmentation, { try $0.append(sampleID: 1, indices: [1, 2], values: [Float16(3), 2], augmentation: [1, 2, 3]) }),
            ("seed code of 5 bytes", .badAugmentation, { try $0.append(sampleID: 1, indices: [1, 2], values: [Float16(3), 2], augmentation: [1, 2, 3, 4, 5]) }),
            ("no seed code", .badAugmentation, { try $0.append(sampleID: 1, indices: [1, 2], values: [Float16(3), 2]) }),
        ])
        // Logits outside [0, 1] and summing above 1 are fine.
        let unsorted = ShardSchema(classes: 300, k: 2, valueKind: .logit, sorted: false, recordsPerBlock: 3)
        let path = directory.file("logits.tshard")
        try writeShard(path, unsorted, [TestRecord(sampleID: 0, indices: [299, 0], values: [-60000, 60000])])
        XCTAssertTrue(ShardVerifier().verifyShard(path: path).isClean)
    }

    func testParamsAugmentationRejections() throws {
        let schema = ShardSchema(classes: 10, k: 1, augmentation: .params(outputHeight: 32, outputWidth: 32), recordsPerBlock: 2)
        var rng = SplitMix64(seed: 3)
        let valid = try randomParameters(outputHeight: 32, outputWidth: 32, using: &rng).encoded(outputHeight: 32, outputWidth: 32)
        var badOp = valid
        badOp[14] |= 15 // op id ≥ 15 or a non-zero empty slot: either way invalid
        badOp[12] |= 0x0C
        var badMode = valid
        badMode[32] = 3
        try checkRejections(schema, [
            ("invalid op", .badAugmentation, { try $0.append(sampleID: 1, indices: [1], values: [Float16(0.5)], augmentation: badOp) }),
            ("mix mode 3", .badAugmentation, { try $0.append(sampleID: 1, indices: [1], values: [Float16(0.5)], augmentation: badMode) }),
            ("79-byte code", .badAugmentation, { try $0.append(sampleID: 1, indices: [1], values: [Float16(0.5)], augmentation: Array(valid.dropLast())) }),
            ("seed-sized code", .badAugmentation, { try $0.append(sampleID: 1, indices: [1], values: [Float16(0.5)], augmentation: [1, 2, 3, 4]) }),
        ])
    }

    func testInvalidSchemasAndFinishedWritersAreRefused() throws {
        let path = directory.file("schema.tshard")
        for (what, schema) in [
            ("K > C", ShardSchema(classes: 3, k: 4)),
            ("K = 0", ShardSchema(classes: 3, k: 0)),
            ("K = 257", ShardSchema(classes: 1000, k: 257)),
            ("C = 0", ShardSchema(classes: 0, k: 1)),
            ("C = 2^24 + 1", ShardSchema(classes: (1 << 24) + 1, k: 1)),
            ("R = 0", ShardSchema(classes: 10, k: 1, recordsPerBlock: 0)),
            ("R = 65537", ShardSchema(classes: 10, k: 1, recordsPerBlock: 65_537)),
            ("temperature 0", ShardSchema(classes: 10, k: 1, temperature: 0)),
            ("temperature NaN", ShardSchema(classes: 10, k: 1, temperature: .nan)),
            ("negative epoch", ShardSchema(classes: 10, k: 1, epoch: -1)),
            ("negative rank", ShardSchema(classes: 10, k: 1, rank: -1)),
            ("output size 0", ShardSchema(classes: 10, k: 1, augmentation: .params(outputHeight: 0, outputWidth: 5))),
        ] {
            assertShardError(.badHeader, try ShardWriter(path: path, schema: schema), what)
            XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".partial"), what)
        }
        assertShardError(.invalidArgument, try ShardWriter(path: path, schema: ShardSchema(classes: 10, k: 1), compressionLevel: 0))
        assertShardError(.io, try ShardWriter(path: directory.file("no/such/folder.tshard"), schema: ShardSchema(classes: 10, k: 1)))

        let writer = try ShardWriter(path: path, schema: ShardSchema(classes: 10, k: 1))
        try writer.append(sampleID: 0, indices: [1], values: [Float16(1)])
        try writer.finish()
        assertShardError(.invalidArgument, try writer.append(sampleID: 1, indices: [1], values: [Float16(1)]))
        assertShardError(.invalidArgument, try writer.finish())
        XCTAssertEqual(try ShardReader(path: path).recordCount, 1)
    }

    func testDiscardLeavesNoFile() throws {
        let path = directory.file("discard.tshard")
        let writer = try ShardWriter(path: path, schema: ShardSchema(classes: 10, k: 1, recordsPerBlock: 1))
        try writer.append(sampleID: 0, indices: [1], values: [Float16(1)])
        XCTAssertTrue(FileManager.default.fileExists(atPath: path + ".partial"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        writer.discard()
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".partial"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }
}
