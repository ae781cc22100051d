import Foundation
import XCTest
@testable import ShardFormat

/// Spec/vectors: small files with the values they decode to (valid) or the error they produce
/// (invalid), for other implementations to check against.
///
/// `testWriteVectors` regenerates the folder, and runs only with TINYSHARD_WRITE_VECTORS=1.
/// `testEveryVectorDecodesToItsJSON` checks every vector against its JSON, through the library and
/// through the test's own reference decoder, on every run.
final class VectorTests: XCTestCase {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Spec/vectors").path
    static let sizeLimit = 4096

    // MARK: Checking

    func testEveryVectorDecodesToItsJSON() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.folder)
        let jsonNames = names.filter { $0.hasSuffix(".json") }.sorted()
        let dataNames = names.filter { $0.hasSuffix(".tshard") || $0.hasSuffix(".tsk") || $0.hasSuffix(".manifest") }.sorted()
        XCTAssertGreaterThanOrEqual(jsonNames.count, 40, "Spec/vectors is missing vectors (regenerate with TINYSHARD_WRITE_VECTORS=1)")
        XCTAssertEqual(Set(jsonNames.map { String($0.dropLast(5)) }), Set(dataNames.map { String($0.prefix { $0 != "." }) }),
                       "every vector needs its JSON and every JSON its vector")
        let readme = try String(contentsOfFile: Self.folder + "/README.md", encoding: .utf8)
        var codes = Set<String>()
        for name in jsonNames {
            let vector = try JSONDecoder().decode(VectorJSON.self, from: Data(contentsOf: URL(fileURLWithPath: Self.folder + "/" + name)))
            let path = Self.folder + "/" + vector.file
            let bytes = try readBytes(path)
            XCTAssertLessThan(bytes.count, Self.sizeLimit, vector.file)
            XCTAssertEqual(String(vector.file.prefix { $0 != "." }) + ".json", name)
            XCTAssertTrue(readme.contains("`\(vector.file)`"), "README.md does not list \(vector.file)")
            switch (vector.kind, vector.valid) {
            case ("shard", true): try checkValidShard(vector, path: path, bytes: bytes)
            case ("shard", false): checkInvalidShard(vector, path: path)
            case ("key-table", true): try checkValidKeyTable(vector, bytes: bytes)
            case ("key-table", false): checkInvalidKeyTable(vector, bytes: bytes)
            case ("manifest", true):
                let manifest = try bytes.withUnsafeBytes { try DatasetManifest.parse($0) }
                XCTAssertEqual(manifest.shards.count, vector.count, vector.file)
            case ("manifest", false):
                let error = shardError(try bytes.withUnsafeBytes { try DatasetManifest.parse($0) })
                XCTAssertEqual(error?.code.rawValue, vector.error, vector.file)
            default: XCTFail("\(name): unknown kind \(vector.kind)")
            }
            if let error = vector.error { codes.insert(error) }
        }
        // One invalid vector per error code a single file can produce.
        let fileCodes = Set(ShardErrorCode.allCases.map(\.rawValue))
            .subtracting(["io", "duplicate-index", "not-probability", "invalid-argument"])
        XCTAssertEqual(codes, fileCodes)
    }

    func checkValidShard(_ vector: VectorJSON, path: String, bytes: [UInt8]) throws {
        let what = vector.file
        guard let header = vector.header, let expected = vector.records?.map(\.testRecord), let count = vector.record_count else {
            return XCTFail("\(what): a valid shard needs header, record_count and records")
        }
        XCTAssertEqual(count, expected.count, what)
        // The JSON is self-consistent: decimals and bit patterns agree, residuals follow Spec 7.
        for record in vector.records! {
            XCTAssertEqual(record.values, record.value_bits.map { Double(Float16(bitPattern: $0)) }, what)
            let residual = header.value_kind == "probability" ? expectedResidual(record.value_bits, classes: header.classes) : nil
            XCTAssertEqual(record.residual_bits, residual?.bitPattern, what)
        }

        // The library.
        let reader = try ShardReader(path: path)
        var semantic = header  // output_size is kept by readers for kind params only
        if semantic.augmentation.kind != "params" { semantic.augmentation.output_size = nil }
        XCTAssertEqual(VectorJSON.Header(reader.schema), semantic, what)
        XCTAssertEqual(reader.recordCount, count, what)
        XCTAssertEqual(reader.blockCount, vector.block_count, what)
        var records: [TestRecord] = []
        try reader.forEachRecord { _, record in records.append(TestRecord(record)) }
        XCTAssertEqual(records, expected, what)
        for (ordinal, record) in expected.enumerated() {
            XCTAssertEqual(try reader.ordinal(ofSample: record.sampleID), ordinal, what)
        }
        let report = ShardVerifier().verifyShard(path: path)
        XCTAssertTrue(report.isClean, "\(what): \(report.problems)")
        let cursor = reader.makeCursor()
        let classes = header.classes
        for (ordinal, record) in (vector.records ?? []).enumerated() {
            if let params = record.params, case let .params(h, w) = reader.schema.augmentation {
                let decoded = try ShardFormatTests.bytes(hex: record.augmentation).withUnsafeBytes { try AugmentationParameters(code: $0, outputHeight: h, outputWidth: w) }
                XCTAssertEqual(VectorJSON.Params(decoded), params, what)
            }
            guard header.value_kind == "probability" else {
                var row = [Float](repeating: 0, count: classes)
                assertShardError(.notProbability, try row.withUnsafeMutableBufferPointer { try cursor.dense([ordinal], into: $0) }, what)
                continue
            }
            var row = [Float](repeating: .nan, count: classes)
            try row.withUnsafeMutableBufferPointer { try cursor.dense([ordinal], into: $0) }
            for c in 0..<classes {
                let want = record.indices.firstIndex(of: Int32(c)).map { Float(Float16(bitPattern: record.value_bits[$0])).bitPattern } ?? record.residual_bits
                XCTAssertEqual(row[c].bitPattern, want, "\(what): record \(ordinal), class \(c)")
            }
        }

        // The test's own reference decoder.
        let reference = try ReferenceShard(bytes)
        XCTAssertEqual(reference.records, expected, "\(what): reference decoder")
        XCTAssertEqual(try JSONDecoder().decode(VectorJSON.Header.self, from: Data(try ShardFileModel(bytes).header)), header, what)
    }

    /// What a reader gives on the whole file: open, every record, the sample-id table.
    func readerError(_ path: String) -> ShardError? {
        do {
            let reader = try ShardReader(path: path)
            try reader.forEachRecord { _, _ in }
            _ = try reader.ordinal(ofSample: 0)
            return nil
        } catch let error as ShardError {
            return error
        } catch {
            return ShardError(.io, "\(error)")
        }
    }

    func checkInvalidShard(_ vector: VectorJSON, path: String) {
        let what = vector.file
        guard let code = vector.error else { return XCTFail("\(what): an invalid vector needs its error") }
        XCTAssertEqual(readerError(path)?.code.rawValue, code, "\(what): reader")
        let report = ShardVerifier().verifyShard(path: path)
        XCTAssertFalse(report.problems.isEmpty, "\(what): the verifier found nothing")
        XCTAssertEqual(report.problems.first?.code, code, "\(what): verifier's first problem \(report.problems)")
        if !what.hasPrefix("invalid-order-") {  // check-order vectors break two rules on purpose
            XCTAssertEqual(Set(report.problems.map(\.code)), [code], "\(what): verifier \(report.problems)")
        }
    }

    func checkValidKeyTable(_ vector: VectorJSON, bytes: [UInt8]) throws {
        let table = try bytes.withUnsafeBytes { try KeyTable(fileBytes: $0) }
        XCTAssertEqual(table.count, vector.count)
        XCTAssertEqual(table.keys.map { Array($0.utf8) }, vector.keys?.map { Array($0.utf8) })
        for (id, key) in (vector.keys ?? []).enumerated() { XCTAssertEqual(table.id(of: key), UInt32(id)) }
        // The mapped reader (a dataset's) gives the same answers.
        let mapped = try MappedKeyTable(path: Self.folder + "/" + vector.file)
        for (id, key) in (vector.keys ?? []).enumerated() {
            XCTAssertEqual(try mapped.id(of: key), UInt32(id), vector.file)
            XCTAssertEqual(try mapped.key(id), key, vector.file)
        }
    }

    func checkInvalidKeyTable(_ vector: VectorJSON, bytes: [UInt8]) {
        let error = shardError(try bytes.withUnsafeBytes { try KeyTable(fileBytes: $0) })
        XCTAssertEqual(error?.code.rawValue, vector.error, vector.file)
        // The mapped reader meets the same error at open or, at the latest, when it has looked at every key.
        let mapped = shardError(try {
            let table = try MappedKeyTable(path: Self.folder + "/" + vector.file)
            for id in 0..<table.count { _ = try table.key(id) }
        }())
        XCTAssertEqual(mapped?.code.rawValue, vector.error, vector.file)
    }

    // MARK: Writing

    func testWriteVectors() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["TINYSHARD_WRITE_VECTORS"] == "1",
                          "set TINYSHARD_WRITE_VECTORS=1 to regenerate Spec/vectors")
        let vectors = try VectorGenerator().all()
        let manager = FileManager.default
        try manager.createDirectory(atPath: Self.folder, withIntermediateDirectories: true)
        for name in try manager.contentsOfDirectory(atPath: Self.folder)
            where name.hasSuffix(".json") || name.hasSuffix(".tshard") || name.hasSuffix(".tsk") || name.hasSuffix(".manifest") {
            try manager.removeItem(atPath: Self.folder + "/" + name)
        }
        for vector in vectors {
            XCTAssertLessThan(vector.bytes.count, Self.sizeLimit, vector.json.file)
            try writeBytes(vector.bytes, to: Self.folder + "/" + vector.json.file)
            let stem = String(vector.json.file.prefix { $0 != "." })
            try Data(try vector.json.rendered().utf8).write(to: URL(fileURLWithPath: Self.folder + "/" + stem + ".json"))
        }
        try Data(VectorGenerator.readme(vectors).utf8).write(to: URL(fileURLWithPath: Self.folder + "/README.md"))
    }
}

/// Builds every vector. Valid shards come from ShardWriter; invalid ones are valid files with bytes
/// patched and, where the broken rule is not a checksum, every checksum recomputed so that the
/// intended error is the one a reader meets.
struct VectorGenerator {
    struct Vector {
        var bytes: [UInt8]
        var json: VectorJSON
    }

    let provenance = ["teacher": "spec-vectors", "dataset_checksum": "00000000"]

    func h(_ v: Float16) -> UInt16 { v.bitPattern }

    func shard(_ name: String, _ description: String, _ schema: ShardSchema, _ records: [TestRecord]) throws -> Vector {
        let directory = try TemporaryDirectory("vectors")
        let path = directory.file(name)
        try writeShard(path, schema, records)
        let bytes = try readBytes(path)
        let header = try JSONDecoder().decode(VectorJSON.Header.self, from: Data(try ShardFileModel(bytes).header))
        return Vector(bytes: bytes, json: VectorJSON(
            file: name, kind: "shard", valid: true, description: description, header: header, record_count: records.count,
            block_count: (records.count + schema.recordsPerBlock - 1) / schema.recordsPerBlock,
            records: try records.map { try VectorJSON.Record($0, schema: schema) }))
    }

    /// A valid vector whose bytes were changed after writing (with the same decoded content).
    func variant(_ base: Vector, _ name: String, _ description: String, _ bytes: [UInt8]) -> Vector {
        var json = base.json
        json.file = name
        json.description = description
        return Vector(bytes: bytes, json: json)
    }

    /// `base` names the valid vector the file was patched from (nil when it was built from scratch).
    func invalid(_ name: String, _ code: ShardErrorCode, _ description: String, from base: Vector, derived: Bool = true,
                 _ bytes: [UInt8]) -> Vector {
        Vector(bytes: bytes, json: VectorJSON(file: name, kind: base.json.kind, valid: false, description: description,
                                              error: code.rawValue, derived_from: derived ? base.json.file : nil))
    }

    /// `base` parsed, changed, and serialized with every length and checksum recomputed.
    func rebuilt(_ base: Vector, _ change: (inout ShardFileModel) throws -> Void) throws -> [UInt8] {
        var model = try ShardFileModel(base.bytes)
        try change(&model)
        return model.serialized()
    }

    func patched(_ base: Vector, _ change: (inout [UInt8], ShardLayout) throws -> Void) throws -> [UInt8] {
        var bytes = base.bytes
        try change(&bytes, try ShardLayout(base.bytes))
        return bytes
    }

    func all() throws -> [Vector] {
        var out: [Vector] = []

        // MARK: Valid shards
        let minimalSchema = ShardSchema(classes: 10, k: 3, recordsPerBlock: 2, provenance: provenance)
        let third = Float16(1.0 / 3.0)
        let minimal = try shard("valid-minimal.tshard", """
            K=3, C=10, probability, sorted, augmentation none, records_per_block 2: 5 records in blocks of 2, 2, 1. \
            Record 0 is the spec's example [7, 2, 5] (order byte 04). Record 4 sums to 1 + 2^-11 (allowed), so its \
            residual is clamped to 0.
            """, minimalSchema, [
                TestRecord(sampleID: 0, indices: [7, 2, 5], values: [0.5, 0.25, 0.125]),
                TestRecord(sampleID: 3, indices: [0, 9, 3], values: [0.75, 0.125, 0.0625]),
                TestRecord(sampleID: 1, indices: [1, 2, 3], values: [1, 0, 0]),
                TestRecord(sampleID: 9, indices: [9, 8, 7], values: [third, third, third]),
                TestRecord(sampleID: 5, indices: [4, 6, 8], values: [0.5, 0.5, Float16(0x1p-11)]),
            ])
        out.append(minimal)

        let seed = try shard("valid-seed.tshard", """
            K=5, C=100, augmentation seed (4-byte int32 codes, including -1 and INT32_MIN), records_per_block 4, \
            sample ids up to 70000 (three non-zero id byte planes).
            """, ShardSchema(classes: 100, k: 5, augmentation: .seed, epoch: 3, rank: 1, recordsPerBlock: 4, provenance: provenance), [
                TestRecord(sampleID: 70_000, augmentation: [0x2A, 0, 0, 0], indices: [99, 0, 50, 51, 1], values: [0.4, 0.3, 0.2, 0.05, 0.05]),
                TestRecord(sampleID: 12, augmentation: [0xFF, 0xFF, 0xFF, 0xFF], indices: [5, 6, 7, 8, 9], values: [0.2, 0.2, 0.2, 0.2, 0.2]),
                TestRecord(sampleID: 256, augmentation: [0, 0, 0, 0x80], indices: [10, 20, 30, 40, 98], values: [0.9, 0.05, 0.01, 0.001, 0]),
                TestRecord(sampleID: 65_535, augmentation: [0x78, 0x56, 0x34, 0x12], indices: [3, 1, 4, 15, 92], values: [0.3, 0.3, 0.1, 0.1, 0.1]),
                TestRecord(sampleID: 0, augmentation: [1, 0, 0, 0], indices: [44, 33, 22, 11, 0], values: [0.25, 0.25, 0.25, 0.125, 0.125]),
                TestRecord(sampleID: 1_000, augmentation: [0xEF, 0xBE, 0xAD, 0xDE], indices: [2, 7, 1, 8, 28], values: [0.6, 0.2, 0.1, 0.05, 0.01]),
            ])
        out.append(seed)

        let output = (h: 224, w: 224)
        let plainView = AugmentationView(sourceWidth: 500, sourceHeight: 375, crop: PixelBox(x: 0, y: 0, width: 500, height: 375))
        let busyView = AugmentationView(
            sourceWidth: 640, sourceHeight: 480, crop: PixelBox(x: 17, y: 33, width: 301, height: 250), horizontalFlip: true,
            operations: [RandAugmentOperation(op: .rotate, magnitudeHundredths: 912, negate: true),
                         RandAugmentOperation(op: .posterizeIncreasing, magnitudeHundredths: 1000),
                         RandAugmentOperation(op: .translateYRel, magnitudeHundredths: 0, negate: true)],
            erase: RandomErase(box: PixelBox(x: 200, y: 0, width: 24, height: 224), noiseSeed: 0x0BAD_CAFE))
        let partnerView = AugmentationView(
            sourceWidth: 333, sourceHeight: 500, crop: PixelBox(x: 0, y: 100, width: 333, height: 250),
            operations: [RandAugmentOperation(op: .shearX, magnitudeHundredths: 455)])
        let erasedPartner = AugmentationView(
            sourceWidth: 1, sourceHeight: 1, crop: PixelBox(x: 0, y: 0, width: 1, height: 1),
            erase: RandomErase(box: PixelBox(x: 0, y: 0, width: 1, height: 1), noiseSeed: 0))
        let parameters = [
            AugmentationParameters(view: plainView),
            AugmentationParameters(view: busyView),
            AugmentationParameters(view: plainView, mix: Mix(mode: .mixup, lambdaCode: 19_661, partner: 3, partnerView: partnerView)),
            AugmentationParameters(view: busyView, mix: Mix(mode: .cutmix, lambdaCode: 65_535, partner: 4_000_000_000,
                                                           box: PixelBox(x: 112, y: 100, width: 112, height: 124), partnerView: erasedPartner)),
        ]
        let codes = try parameters.map { try $0.encoded(outputHeight: output.h, outputWidth: output.w) }
        let params = try shard("valid-params.tshard", """
            K=2, C=1000 (index width 2), augmentation params with output_size [224, 224], records_per_block 3: a plain \
            crop; crop + flip + 3 ops + erase; mixup; cutmix (with a partner view that erases). Each record's JSON \
            also holds the decoded parameters.
            """, ShardSchema(classes: 1000, k: 2, augmentation: .params(outputHeight: output.h, outputWidth: output.w),
                             recordsPerBlock: 3, provenance: provenance), [
                TestRecord(sampleID: 0, augmentation: codes[0], indices: [999, 0], values: [0.875, 0.125]),
                TestRecord(sampleID: 1, augmentation: codes[1], indices: [10, 500], values: [0.5, 0.25]),
                TestRecord(sampleID: 2, augmentation: codes[2], indices: [256, 255], values: [0.7, 0.3]),
                TestRecord(sampleID: 3, augmentation: codes[3], indices: [1, 2], values: [0.6, 0.39]),
            ])
        out.append(params)

        let logit = try shard("valid-logit.tshard", """
            K=4, C=50, value_kind logit, temperature 2.0, sorted false, records_per_block 3: negative values, -0, \
            ±65504, the smallest normal and subnormal float16. No dense form (residual_bits null; dense asks fail with \
            not-probability).
            """, ShardSchema(classes: 50, k: 4, valueKind: .logit, temperature: 2, sorted: false, recordsPerBlock: 3, provenance: provenance), [
                TestRecord(sampleID: 7, indices: [10, 3, 49, 0], values: [12.5, -3.25, 0, Float16(-0.0)]),
                TestRecord(sampleID: 8, indices: [1, 2, 3, 4], values: [65504, -65504, Float16(0x1p-14), Float16(0x1p-24)]),
                TestRecord(sampleID: 9, indices: [5, 6, 7, 8], values: [-1, -2, -3, -4]),
                TestRecord(sampleID: 10, indices: [49, 48, 47, 46], values: [3, 7, -7, 1.5]),
            ])
        out.append(logit)

        out.append(try shard("valid-empty.tshard", "0 records (B = 0): header, an index with no entries and a footer.",
                             ShardSchema(classes: 10, k: 3, recordsPerBlock: 2, provenance: provenance), []))

        out.append(try shard("valid-wide-index.tshard", """
            C=300: class indices take 2 bytes (w = 2); indices 0, 255, 256 and 299 appear. K=4, records_per_block 2.
            """, ShardSchema(classes: 300, k: 4, recordsPerBlock: 2, provenance: provenance), [
                TestRecord(sampleID: 0, indices: [256, 0, 299, 255], values: [0.4, 0.3, 0.2, 0.1]),
                TestRecord(sampleID: 1, indices: [1, 2, 298, 257], values: [0.5, 0.5, 0, 0]),
                TestRecord(sampleID: 2, indices: [100, 200, 150, 250], values: [0.25, 0.2, 0.15, 0.1]),
            ]))

        var rng = SplitMix64(seed: 21)
        let ascending = (0..<21).map { Int32($0) }
        let bignum = try shard("valid-bignum-order.tshard", """
            K=21: the order number needs 9 bytes (21! > 2^64), past 64-bit arithmetic. Record 0 has its indices \
            ascending (X = 0), record 1 descending (X = 21! - 1, the largest), record 2 a random order. \
            C=64, sorted false, records_per_block 2.
            """, ShardSchema(classes: 64, k: 21, sorted: false, recordsPerBlock: 2, provenance: provenance), [
                TestRecord(sampleID: 0, indices: ascending, valueBits: RecordGenerator.probabilityBits(k: 21, sorted: false, using: &rng)),
                TestRecord(sampleID: 1, indices: (43..<64).reversed().map { Int32($0) },
                           valueBits: RecordGenerator.probabilityBits(k: 21, sorted: false, using: &rng)),
                TestRecord(sampleID: 2, indices: Array((0..<64).map { Int32($0) }.shuffled(using: &rng).prefix(21)),
                           valueBits: RecordGenerator.probabilityBits(k: 21, sorted: false, using: &rng)),
            ])
        out.append(bignum)

        let evenValues: [Float16] = [0.5, 0.25, 0.125]
        let oddValues: [Float16] = [0.75, 0.125, 0.0625]
        let zlibRecords = (0..<64).map { (i: Int) -> TestRecord in
            let indices: [Int32] = [Int32(i % 10), Int32((i + 3) % 10), Int32((i + 6) % 10)]
            return TestRecord(sampleID: UInt32(i), indices: indices, values: i % 2 == 0 ? evenValues : oddValues)
        }
        let zlib = try shard("valid-zlib.tshard", """
            K=3, C=10, records_per_block 64, 64 records: the sample-id, values and index sections are zlib streams \
            (section codec 1).
            """, ShardSchema(classes: 10, k: 3, recordsPerBlock: 64, provenance: provenance), zlibRecords)
        XCTAssertEqual(try ShardFileModel(zlib.bytes).blocks[0].sections[0].codec, 1, "the sample-id section must be zlib")
        out.append(zlib)

        out.append(try shard("valid-full-k.tshard", """
            K = C = 4, probability, sorted false: every class is stored, the dense row has no residual (residual_bits null).
            """, ShardSchema(classes: 4, k: 4, sorted: false, recordsPerBlock: 2, provenance: provenance), [
                TestRecord(sampleID: 0, indices: [3, 1, 0, 2], values: [0.25, 0.5, 0.125, 0.125]),
                TestRecord(sampleID: 1, indices: [0, 1, 2, 3], values: [0, 0, 0, 1]),
            ]))

        out.append(variant(minimal, "valid-minor-version.tshard", """
            valid-minimal with minor version 2 (header CRC recomputed): a reader accepts a higher minor version.
            """, try rebuilt(minimal) { $0.minor = 2 }))
        out.append(variant(minimal, "valid-unknown-header-key.tshard", """
            valid-minimal with an extra header key "comment" (all offsets and checksums recomputed): unknown keys are ignored.
            """, try rebuilt(minimal) { model in
                var text = String(decoding: model.header, as: UTF8.self)
                text.insert(contentsOf: "\"comment\":\"unknown keys are ignored\",", at: text.index(after: text.startIndex))
                model.header = Array(text.utf8)
            }))

        // MARK: Invalid shards: preamble, header, footer, index
        out.append(invalid("invalid-bad-magic.tshard", .badMagic, "valid-minimal with magic byte 0 = 0x88 (header CRC recomputed).",
                           from: minimal, try rebuilt(minimal) { $0.magic[0] = 0x88 }))
        out.append(invalid("invalid-unsupported-version.tshard", .unsupportedVersion, "valid-minimal with major version 2 (header CRC recomputed).",
                           from: minimal, try rebuilt(minimal) { $0.major = 2 }))
        out.append(invalid("invalid-bad-header-json.tshard", .badHeader, "valid-minimal with the header's first byte '{' replaced by '[': not a JSON object (header CRC recomputed).",
                           from: minimal, try rebuilt(minimal) { $0.header[0] = UInt8(ascii: "[") }))
        out.append(invalid("invalid-bad-header-missing-key.tshard", .badHeader, "valid-minimal with the key \"k\" renamed \"q\": a required key is missing (header CRC recomputed).",
                           from: minimal, try rebuilt(minimal) { model in
                               model.header = Array(String(decoding: model.header, as: UTF8.self).replacingOccurrences(of: "\"k\":", with: "\"q\":").utf8)
                           }))
        out.append(invalid("invalid-bad-header-value.tshard", .badHeader, "valid-minimal with \"k\":3 changed to \"k\":0 (K must be ≥ 1; header CRC recomputed).",
                           from: minimal, try rebuilt(minimal) { model in
                               model.header = Array(String(decoding: model.header, as: UTF8.self).replacingOccurrences(of: "\"k\":3", with: "\"k\":0").utf8)
                           }))
        out.append(invalid("invalid-bad-header-length.tshard", .badHeader, "valid-minimal with a 1-byte header \"{\" (H = 1 < 2; every offset and checksum recomputed).",
                           from: minimal, try rebuilt(minimal) { $0.header = [UInt8(ascii: "{")] }))
        out.append(invalid("invalid-header-crc.tshard", .headerCRC, "valid-minimal with the header CRC's first byte changed.",
                           from: minimal, try patched(minimal) { bytes, layout in bytes[16 + layout.headerLength] ^= 0x01 }))
        out.append(invalid("invalid-incomplete-truncated.tshard", .incomplete, "valid-minimal cut in the middle of block 1: no footer.",
                           from: minimal, try patched(minimal) { bytes, layout in bytes = Array(bytes[0..<(layout.blockOffsets[1] + 40)]) }))
        out.append(invalid("invalid-incomplete-no-footer.tshard", .incomplete, "valid-minimal cut after its last block: every block is whole, but no index and footer (an unfinished writer's file).",
                           from: minimal, try patched(minimal) { bytes, layout in bytes = Array(bytes[0..<layout.indexOffset]) }))
        out.append(invalid("invalid-incomplete-short.tshard", .incomplete, "The first 5 bytes of valid-minimal (a prefix of the magic): a truncated shard, not a foreign file.",
                           from: minimal, Array(minimal.bytes[0..<5])))
        out.append(invalid("invalid-footer-crc.tshard", .footerCRC, "valid-minimal with the footer's record count N changed from 5 to 6, footer CRC not updated.",
                           from: minimal, try patched(minimal) { bytes, layout in bytes[layout.footerOffset + 16] = 6 }))
        out.append(invalid("invalid-bad-index-crc.tshard", .badIndex, "valid-minimal with block 0's length in the index changed, index CRC not updated.",
                           from: minimal, try patched(minimal) { bytes, layout in bytes[layout.indexOffset + 16] ^= 0x01 }))
        out.append(invalid("invalid-bad-index-offset.tshard", .badIndex, "valid-minimal with block 1's offset in the index one byte too far (index CRC recomputed): blocks must follow each other.",
                           from: minimal, try patched(minimal) { bytes, layout in
                               bytes.put64(UInt64(layout.blockOffsets[1] + 1), at: layout.indexOffset + 8 + 12)
                               recomputeIndexCRC(&bytes, layout)
                           }))
        out.append(invalid("invalid-bad-index-count.tshard", .badIndex, "valid-minimal with footer N = 7 (footer CRC recomputed): 7 records need 4 blocks of 2, the index has 3.",
                           from: minimal, try patched(minimal) { bytes, layout in
                               bytes[layout.footerOffset + 16] = 7
                               recomputeFooterCRC(&bytes, layout)
                           }))

        // MARK: Invalid shards: blocks and sections
        out.append(invalid("invalid-block-structure-magic.tshard", .blockStructure, "valid-minimal with block 1's magic TSBK changed to TSBX (block header CRC recomputed).",
                           from: minimal, try rebuilt(minimal) { $0.blocks[1].magic = Array("TSBX".utf8) }))
        out.append(invalid("invalid-block-structure-count.tshard", .blockStructure, "valid-minimal with block 0 claiming n = 1 record (block header CRC recomputed); every block but the last must hold R = 2.",
                           from: minimal, try rebuilt(minimal) { $0.blocks[0].count = 1 }))
        out.append(invalid("invalid-block-structure-ordinal.tshard", .blockStructure, "valid-minimal with block 2's first ordinal 3 instead of 4 (block header CRC recomputed).",
                           from: minimal, try rebuilt(minimal) { $0.blocks[2].firstOrdinal = 3 }))
        out.append(invalid("invalid-block-crc-payload.tshard", .blockCRC, "valid-minimal with one payload byte of block 1 changed, payload CRC not updated.",
                           from: minimal, try patched(minimal) { bytes, layout in bytes[layout.payloadOffset(1) + 13] ^= 0x04 }))
        out.append(invalid("invalid-block-crc-header.tshard", .blockCRC, "valid-minimal with block 2's count field changed, block header CRC not updated.",
                           from: minimal, try patched(minimal) { bytes, layout in bytes[layout.blockOffsets[2] + 4] = 2 }))
        out.append(invalid("invalid-bad-section-length.tshard", .badSection, "valid-minimal with block 0's sample-id section 9 bytes long (2 records need 8; lengths and CRCs recomputed).",
                           from: minimal, try rebuilt(minimal) { model in model.store(block: 0, section: 0, try model.decoded(block: 0, section: 0) + [0]) }))
        out.append(invalid("invalid-bad-section-zlib-trailing.tshard", .badSection, "valid-zlib with one byte after the end of block 0's zlib sample-id stream, inside the section (S + 1; lengths and CRCs recomputed): the S bytes must be exactly one zlib stream.",
                           from: zlib, try rebuilt(zlib) { model in
                               precondition(model.blocks[0].sections[0].codec == 1)
                               model.blocks[0].sections[0].stored.append(0)
                           }))
        out.append(invalid("invalid-bad-section-codec.tshard", .badSection, "valid-minimal with block 0's sample-id section codec 2 (CRCs recomputed).",
                           from: minimal, try rebuilt(minimal) { $0.blocks[0].sections[0].codec = 2 }))
        out.append(invalid("invalid-bad-section-trailing.tshard", .badSection, "valid-minimal with one byte after the five sections of block 0 (lengths and CRCs recomputed): sections must fill the payload exactly.",
                           from: minimal, try rebuilt(minimal) { $0.blocks[0].trailing = [0] }))
        out.append(invalid("invalid-bad-section-zlib.tshard", .badSection, "valid-zlib with the Adler-32 trailer of block 0's zlib sample-id section changed (CRCs recomputed): the stream does not inflate.",
                           from: zlib, try rebuilt(zlib) { model in
                               precondition(model.blocks[0].sections[0].codec == 1)
                               model.blocks[0].sections[0].stored[model.blocks[0].sections[0].stored.count - 1] ^= 0x01
                           }))

        // MARK: Invalid shards: record contents (every checksum recomputed)
        func values(_ base: Vector, block: Int, k: Int, _ change: @escaping (inout [[UInt16]]) -> Void) throws -> [UInt8] {
            try rebuilt(base) { model in
                var bits = ValueSection.decode(try model.decoded(block: block, section: 2), k: k)
                change(&bits)
                model.store(block: block, section: 2, ValueSection.encode(bits))
            }
        }
        out.append(invalid("invalid-index-out-of-range.tshard", .indexOutOfRange, "valid-minimal with record 0's last index gap 4 instead of 1: its sorted indices become [2, 5, 10], and 10 is not below C = 10.",
                           from: minimal, try rebuilt(minimal) { model in
                               var gaps = try model.decoded(block: 0, section: 3)
                               precondition(Array(gaps[0..<3]) == [2, 2, 1])
                               gaps[2] = 4
                               model.store(block: 0, section: 3, gaps)
                           }))
        out.append(invalid("invalid-bad-order.tshard", .badOrder, "valid-minimal with record 0's order number 6 = 3! (the largest valid is 5).",
                           from: minimal, try rebuilt(minimal) { model in
                               var order = try model.decoded(block: 0, section: 4)
                               precondition(order[0] == 4)
                               order[0] = 6
                               model.store(block: 0, section: 4, order)
                           }))
        out.append(invalid("invalid-bad-order-bignum.tshard", .badOrder, "valid-bignum-order with record 0's order number 21! (9 bytes, just past the largest valid 21! - 1).",
                           from: bignum, try rebuilt(bignum) { model in
                               var order = try model.decoded(block: 0, section: 4)
                               order.replaceSubrange(0..<9, with: ByteBignum.fixed(ByteBignum.factorial(21), 9))
                               model.store(block: 0, section: 4, order)
                           }))
        out.append(invalid("invalid-bad-value-nan.tshard", .badValue, "valid-minimal with record 0's value 1 = NaN (0x7e00).",
                           from: minimal, try values(minimal, block: 0, k: 3) { $0[0][1] = 0x7E00 }))
        out.append(invalid("invalid-bad-value-infinite.tshard", .badValue, "valid-logit with record 1's value 0 = +infinity (0x7c00): logits must be finite.",
                           from: logit, try values(logit, block: 0, k: 4) { $0[1][0] = 0x7C00 }))
        out.append(invalid("invalid-bad-value-negative.tshard", .badValue, "valid-minimal with record 1's last value -0.0625: probabilities are in [0, 1] (still non-increasing).",
                           from: minimal, try values(minimal, block: 0, k: 3) { $0[1][2] = Float16(-0.0625).bitPattern }))
        out.append(invalid("invalid-bad-value-above-one.tshard", .badValue, "valid-minimal with record 2's first value 1.0009765625 (0x3c01), the next float16 after 1.",
                           from: minimal, try values(minimal, block: 1, k: 3) { $0[0][0] = 0x3C01 }))
        out.append(invalid("invalid-bad-value-sum.tshard", .badValue, "valid-minimal with record 2's values [1, 0.5, 0]: the sum 1.5 is above 1 + 2^-11 + K·2^-25.",
                           from: minimal, try values(minimal, block: 1, k: 3) { $0[0] = [0x3C00, 0x3800, 0] }))
        out.append(invalid("invalid-not-sorted.tshard", .notSorted, "valid-minimal with record 0's values [0.25, 0.5, 0.125]: increasing in a sorted shard.",
                           from: minimal, try values(minimal, block: 0, k: 3) { $0[0].swapAt(0, 1) }))
        out.append(invalid("invalid-bad-augmentation.tshard", .badAugmentation, "valid-params with record 1's first op id 15 (ids are 0-14).",
                           from: params, try rebuilt(params) { model in
                               var codes = try model.decoded(block: 0, section: 1)
                               codes[80 + 14] |= 0x0F
                               model.store(block: 0, section: 1, codes)
                           }))
        out.append(invalid("invalid-duplicate-sample.tshard", .duplicateSample, "valid-minimal with record 2 (block 1) given sample id 0, the id of record 0 (block 0).",
                           from: minimal, try rebuilt(minimal) { model in
                               var ids = try model.decoded(block: 1, section: 0)
                               precondition(ids[0] == 1)
                               ids[0] = 0
                               model.store(block: 1, section: 0, ids)
                           }))

        // MARK: Key tables
        let keys = try KeyTable(sorting: ["n01440764/n01440764_10026.JPEG", "n01440764/n01440764_10027.JPEG", "apple", "Zebra",
                                          "cafe\u{301}", "caf\u{E9}", "\u{65E5}\u{672C}", "\u{1F600}", "z"])
        let keysVector = Vector(bytes: try keys.encoded(version: 1), json: VectorJSON(
            file: "valid-keys.tsk", kind: "key-table", valid: true, description: """
                A key table of 9 keys in UTF-8 byte order, with non-ASCII keys: "café" decomposed (e + U+0301) and \
                precomposed (U+00E9) are different keys; an astral-plane emoji sorts last (as its first byte F0 does).
                """, count: keys.count, keys: keys.keys))
        out.append(keysVector)
        out.append(invalid("invalid-keys-unsorted.tsk", .badKeys, "A key table of [\"beta\", \"alpha\"] with a correct CRC: keys must be strictly ascending.",
                           from: keysVector, derived: false, KeyTableTests.keyTableFile(text: KeyTableTests.text(["beta", "alpha"]), count: 2)))
        var badCRC = keysVector.bytes
        badCRC[26] ^= 0x20
        out.append(invalid("invalid-keys-crc.tsk", .badKeys, "valid-keys with one compressed byte changed, CRC not updated.", from: keysVector, badCRC))
        out += pagedKeyVectors(keys.keys)
        out += try strictVectors(minimal: minimal, zlib: zlib, keysVector: keysVector)
        return out
    }

    /// Key table version 2 (Spec 5.2): the same keys in pages of 4, and one vector per rule group.
    func pagedKeyVectors(_ keys: [String]) -> [Vector] {
        let model = PagedKeyTableModel(keys: keys, keysPerPage: 4)
        let valid = Vector(bytes: model.bytes(), json: VectorJSON(
            file: "valid-keys-v2.tsk", kind: "key-table", valid: true, description: """
                The keys of valid-keys in key table version 2 with P = 4: three pages of 4, 4 and 1 keys, each its own \
                zlib stream, behind the directory and the fences (the first key of each page).
                """, count: keys.count, keys: keys))
        var head = model
        head.pageCount = 2
        var fence = model
        fence.fences[1] = Array((keys[4] + "!").utf8)
        var page = valid.bytes
        page[Int(page.u64(at: 32 + 24 * 2)) + 3] ^= 0x01
        return [
            valid,
            invalid("invalid-keys-v2-head.tsk", .badKeys, "valid-keys-v2 with G = 2 in the head (head CRC recomputed): 9 keys in pages of 4 need 3.",
                    from: valid, head.bytes()),
            invalid("invalid-keys-v2-fence.tsk", .badKeys, """
                valid-keys-v2 with fence 1 changed to page 1's first key + "!" (still between fences 0 and 2; the directory \
                CRC recomputed): the first key of page 1 is not its fence.
                """, from: valid, fence.bytes()),
            invalid("invalid-keys-v2-page-crc.tsk", .badKeys, "valid-keys-v2 with one stored byte of page 2 changed, its CRC not updated.",
                    from: valid, page),
        ]
    }

    func recomputeIndexCRC(_ bytes: inout [UInt8], _ layout: ShardLayout) {
        let end = layout.footerOffset - 4
        bytes.put32(referenceCRC32(bytes[layout.indexOffset..<end]), at: end)
    }

    func recomputeFooterCRC(_ bytes: inout [UInt8], _ layout: ShardLayout) {
        bytes.put32(referenceCRC32(bytes[layout.footerOffset..<(layout.footerOffset + 28)]), at: layout.footerOffset + 28)
    }

    static func readme(_ vectors: [Vector]) -> String {
        func row(_ v: Vector) -> String {
            "| `\(v.json.file)` | \(v.json.valid ? "valid" : "`\(v.json.error!)`") | \(v.json.description.replacingOccurrences(of: "|", with: "\\|")) |"
        }
        return """
            # TinyShard test vectors

            Small files for checking an implementation of `Spec/FORMAT.md`, each with a JSON file of the same
            name beside it. Generated by `Tests/ShardFormatTests/VectorTests.swift` (run the tests with
            `TINYSHARD_WRITE_VECTORS=1` to rewrite this folder); every test run checks that the Swift library
            and the tests' independent reference decoder read each vector exactly as its JSON says.

            **Valid files** must decode to exactly their JSON. **Invalid files** must be rejected with exactly
            the listed error code (FORMAT.md section 8) by a reader that opens the file, decodes every record
            and builds the sample-id table, and by a verifier (which must report that code and no other). Each
            invalid shard is a valid vector with bytes patched so that exactly one rule breaks: wherever the
            broken rule is not itself a checksum, every checksum and length was recomputed, so the intended
            error is the first one any reader meets. The `invalid-order-*` vectors break two rules on purpose:
            their code is the first in the check order of FORMAT.md 1.4.

            `*.manifest` files are `manifest.json` texts (section 6): a reader parsing one must accept the
            valid one (its JSON gives the shard count as `count`) and reject each invalid one with its code.
            Header JSON vectors (`*-header-*`) pin the JSON grammar and key rules of section 1.1, one rule
            each; the grammar is the same for manifests (code `manifest-mismatch`).

            Key tables come in version 1 (`valid-keys.tsk`, section 5.1) and version 2 (`*-keys-v2*`, section
            5.2, pages behind a directory): a reader must read the valid ones to their keys and meet each
            invalid one's code no later than when it has looked at every key (a version-2 reader checks the
            head at open, the directory before the first lookup and a page before using it).

            `datasets/padded-ranks/` is a whole dataset folder (3 ranks, 2 epochs, dealt and padded as PyTorch's
            DistributedSampler deals them) and `datasets/padded-ranks.json` the lookups it must answer: for each
            (epoch, key, reading rank or none), the shard rank, ordinal and augmentation seed of the record
            section 2's rule returns. Written by `Tests/ShardFormatTests/LookupRuleTests.swift`.

            `sampling/record-order.json` pins the record-order sampler (Spec/RECORD-ORDER.md): an epoch's shard
            sizes and, for each (world, rank, window, seed, training epoch), the (shard rank, ordinal) of every
            record the rank reads. Written by `Tests/ShardFormatTests/RecordOrderTests.swift`.
            `sampling/augmentation-sampler.json` pins the augmentation sampler (Spec/SAMPLER.md): raw random
            streams and, for presets and custom recipes, the 80-byte codes drawn for (seed, epoch, sample,
            source size, partners). Written by `Tests/AugmentTests/SamplerVectorTests.swift`.

            No vector exists for `io` (an environment problem), `duplicate-index` (the gap encoding of section
            3.4 cannot express a repeated index: every decoded record has strictly ascending indices) or
            `not-probability` (an API error: asking dense labels of a logit shard such as `valid-logit.tshard`).

            ## Files

            | file | expect | what it tests |
            |---|---|---|
            \(vectors.filter { $0.json.kind == "shard" }.map(row).joined(separator: "\n"))
            \(vectors.filter { $0.json.kind == "key-table" }.map(row).joined(separator: "\n"))
            \(vectors.filter { $0.json.kind == "manifest" }.map(row).joined(separator: "\n"))

            ## JSON fields

            Every JSON file has:

            - `file`: the vector's file name; `kind`: `"shard"`, `"key-table"` or `"manifest"`; `valid`: true or false;
              `description`: what the vector tests.
            - Invalid files: `error`, the error code; `derived_from`, the valid vector it was patched from
              (absent for a file built from scratch).

            A valid shard's JSON also has:

            - `header`: the header JSON's fields (section 1.1). A valid file may hold further header keys that
              a reader ignores (`valid-unknown-header-key.tshard`).
            - `record_count`: N, from the footer; `block_count`: B.
            - `records`: every record in stored order, each with
              - `sample_id`: the u32 sample id;
              - `augmentation`: the record's augmentation code as lowercase hex (`""` for kind `none`);
              - `indices`: the K class indices in stored order;
              - `value_bits`: the K values as float16 bit patterns (integers), in stored order;
              - `values`: the same values as decimal numbers; each parses (as a float64) to the float16
                value exactly;
              - `residual_bits`: the float32 bit pattern of the dense row's value for every class outside
                the record's K (section 7: max(0, 1 − Σ values) / (C − K) in float64, rounded to float32
                once); `null` for logit shards and when K = C;
              - `params` (kind `params` only): the decoded code, `{"view": V, "mix": M or null}`, where a view
                V is `{"source_width", "source_height", "crop": [x, y, w, h], "flip", "ops": [{"op",
                "magnitude_hundredths", "negate"}], "erase": {"box": [x, y, w, h], "noise_seed"} or null}` and
                a mix M is `{"mode": "mixup" or "cutmix", "lambda_code", "partner", "box": [x, y, w, h] or
                null, "partner_view": V}`.

            A valid key table's JSON also has `count` (M) and `keys`, in id order (UTF-8 byte order).

            """
    }
}
