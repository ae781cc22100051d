import Foundation
@testable import ShardFormat

// The JSON shape of Spec/vectors/*.json (documented in Spec/vectors/README.md), as Codable types used
// both to write the vectors and to check them.

struct VectorJSON: Codable {
    struct Header: Codable, Equatable {
        struct Augmentation: Codable, Equatable {
            var kind: String
            var version: Int
            var output_size: [Int]?
        }
        var classes: Int
        var k: Int
        var value_kind: String
        var temperature: Double
        var sorted: Bool
        var value_dtype: String
        var index_codec: String
        var augmentation: Augmentation
        var epoch: Int
        var rank: Int
        var records_per_block: Int
        var provenance: [String: String]
    }

    struct Record: Codable, Equatable {
        var sample_id: UInt32
        /// The augmentation code, lowercase hex ("" for kind none).
        var augmentation: String
        var indices: [Int32]
        var value_bits: [UInt16]
        /// The same values as decimals (each parses, as a float64, to the float16 value exactly).
        var values: [Double]
        /// The dense row's residual (Spec 7) as a float32 bit pattern; null for logits and for K = C.
        var residual_bits: UInt32?
        /// The decoded `params` code (kind params only).
        var params: Params?

        enum CodingKeys: String, CodingKey { case sample_id, augmentation, indices, value_bits, values, residual_bits, params }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(sample_id, forKey: .sample_id)
            try c.encode(augmentation, forKey: .augmentation)
            try c.encode(indices, forKey: .indices)
            try c.encode(value_bits, forKey: .value_bits)
            try c.encode(values, forKey: .values)
            try c.encode(residual_bits, forKey: .residual_bits)  // null, not absent
            try c.encodeIfPresent(params, forKey: .params)
        }
    }

    struct Params: Codable, Equatable {
        var view: View
        var mix: Mix?

        enum CodingKeys: String, CodingKey { case view, mix }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(view, forKey: .view)
            try c.encode(mix, forKey: .mix)
        }
    }

    struct View: Codable, Equatable {
        struct Operation: Codable, Equatable {
            var op: UInt8
            var magnitude_hundredths: UInt16
            var negate: Bool
        }
        struct Erase: Codable, Equatable {
            var box: [UInt16]
            var noise_seed: UInt32
        }
        var source_width: UInt16
        var source_height: UInt16
        /// [x, y, width, height]
        var crop: [UInt16]
        var flip: Bool
        var ops: [Operation]
        var erase: Erase?

        enum CodingKeys: String, CodingKey { case source_width, source_height, crop, flip, ops, erase }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(source_width, forKey: .source_width)
            try c.encode(source_height, forKey: .source_height)
            try c.encode(crop, forKey: .crop)
            try c.encode(flip, forKey: .flip)
            try c.encode(ops, forKey: .ops)
            try c.encode(erase, forKey: .erase)
        }
    }

    struct Mix: Codable, Equatable {
        /// "mixup" or "cutmix"
        var mode: String
        var lambda_code: UInt16
        var partner: UInt32
        var box: [UInt16]?
        var partner_view: View

        enum CodingKeys: String, CodingKey { case mode, lambda_code, partner, box, partner_view }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(mode, forKey: .mode)
            try c.encode(lambda_code, forKey: .lambda_code)
            try c.encode(partner, forKey: .partner)
            try c.encode(box, forKey: .box)
            try c.encode(partner_view, forKey: .partner_view)
        }
    }

    var file: String
    /// "shard" or "key-table"
    var kind: String
    var valid: Bool
    var description: String
    /// Invalid files: the spec error code a reader or verifier must report.
    var error: String?
    /// Invalid files: the valid vector it was made from by patching bytes.
    var derived_from: String?
    // Valid shards.
    var header: Header?
    var record_count: Int?
    var block_count: Int?
    var records: [Record]?
    // Valid key tables.
    var count: Int?
    var keys: [String]?

    /// Pretty enough to read and diff: one line per field, one line per record.
    func rendered() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        func compact<T: Encodable>(_ value: T) throws -> String { String(decoding: try encoder.encode(value), as: UTF8.self) }
        var fields: [(String, String)] = [
            ("file", try compact(file)), ("kind", try compact(kind)), ("valid", try compact(valid)),
            ("description", try compact(description)),
        ]
        if let error { fields.append(("error", try compact(error))) }
        if let derived_from { fields.append(("derived_from", try compact(derived_from))) }
        if let header { fields.append(("header", try compact(header))) }
        if let record_count { fields.append(("record_count", try compact(record_count))) }
        if let block_count { fields.append(("block_count", try compact(block_count))) }
        if let records {
            fields.append(("records", records.isEmpty ? "[]" : "[\n    " + (try records.map(compact)).joined(separator: ",\n    ") + "\n  ]"))
        }
        if let count { fields.append(("count", try compact(count))) }
        if let keys { fields.append(("keys", keys.isEmpty ? "[]" : "[\n    " + (try keys.map(compact)).joined(separator: ",\n    ") + "\n  ]")) }
        return "{\n" + fields.map { "  \"\($0.0)\": \($0.1)" }.joined(separator: ",\n") + "\n}\n"
    }
}

extension VectorJSON.Header {
    init(_ schema: ShardSchema) {
        var outputSize: [Int]?
        if case let .params(h, w) = schema.augmentation { outputSize = [h, w] }
        self.init(classes: schema.classes, k: schema.k, value_kind: schema.valueKind.rawValue, temperature: schema.temperature,
                  sorted: schema.sorted, value_dtype: "float16", index_codec: "sorted-gap-planes",
                  augmentation: .init(kind: schema.augmentation.name, version: 1, output_size: outputSize),
                  epoch: schema.epoch, rank: schema.rank, records_per_block: schema.recordsPerBlock, provenance: schema.provenance)
    }
}

extension VectorJSON.View {
    init(_ view: AugmentationView) {
        self.init(source_width: view.sourceWidth, source_height: view.sourceHeight, crop: box(view.crop), flip: view.horizontalFlip,
                  ops: view.operations.map { .init(op: $0.op.rawValue, magnitude_hundredths: $0.magnitudeHundredths, negate: $0.negate) },
                  erase: view.erase.map { .init(box: box($0.box), noise_seed: $0.noiseSeed) })
    }
}

extension VectorJSON.Params {
    init(_ parameters: AugmentationParameters) {
        self.init(view: .init(parameters.view), mix: parameters.mix.map {
            .init(mode: $0.mode == .mixup ? "mixup" : "cutmix", lambda_code: $0.lambdaCode, partner: $0.partner,
                  box: $0.box.map(box), partner_view: .init($0.partnerView))
        })
    }
}

private func box(_ b: PixelBox) -> [UInt16] { [b.x, b.y, b.width, b.height] }

extension VectorJSON.Record {
    init(_ record: TestRecord, schema: ShardSchema) throws {
        var params: VectorJSON.Params?
        if case let .params(h, w) = schema.augmentation {
            params = .init(try record.augmentation.withUnsafeBytes { try AugmentationParameters(code: $0, outputHeight: h, outputWidth: w) })
        }
        self.init(sample_id: record.sampleID, augmentation: record.augmentation.hex, indices: record.indices,
                  value_bits: record.valueBits, values: record.values.map(Double.init),
                  residual_bits: schema.valueKind == .probability ? expectedResidual(record.valueBits, classes: schema.classes)?.bitPattern : nil,
                  params: params)
    }

    var testRecord: TestRecord {
        TestRecord(sampleID: sample_id, augmentation: bytes(hex: augmentation), indices: indices, valueBits: value_bits)
    }
}
