import Foundation
import Interchange

/// What a shard's values are.
public enum ValueKind: String, Sendable, Codable {
    /// Softmax outputs in [0, 1]; dense soft labels can be rebuilt from them.
    case probability
    /// Raw teacher logits; stored and returned as is, no dense form.
    case logit
}

/// How each record's augmentation is stored (Spec/FORMAT.md, section 4).
public enum AugmentationKind: Sendable, Equatable, CustomStringConvertible {
    /// No augmentation stored.
    case none
    /// The official TinyViT layout's opaque int32 seed.
    case seed
    /// Explicit parameters (``AugmentationParameters``), version 1, for images of the given output size.
    case params(outputHeight: Int, outputWidth: Int)

    /// Bytes per record (A in the spec).
    public var codeSize: Int {
        switch self {
        case .none: return 0
        case .seed: return 4
        case .params: return AugmentationParameters.encodedSize
        }
    }

    /// The header's `augmentation` value: `none`, `seed` or `params`.
    public var name: String {
        switch self {
        case .none: return "none"
        case .seed: return "seed"
        case .params: return "params"
        }
    }

    /// The name, with the output size for `params` (`params v1, output 224x224`).
    public var description: String {
        if case let .params(h, w) = self { return "params v1, output \(h)x\(w)" }
        return name
    }
}

/// A shard's header: everything about its records that does not change from record to record.
public struct ShardSchema: Sendable, Equatable {
    /// The largest C a header may declare (2^24).
    public static let maxClasses = 1 << 24
    /// The largest K a header may declare.
    public static let maxK = 256
    /// The largest R a header may declare.
    public static let maxRecordsPerBlock = 65_536

    /// C, the number of classes.
    public var classes: Int
    /// K, the entries stored per record.
    public var k: Int
    /// Whether the values are probabilities or logits.
    public var valueKind: ValueKind
    /// The softmax temperature the teacher used (1 when none).
    public var temperature: Double
    /// True when each record's values are non-increasing in stored order (top-K as `topk` returns it).
    public var sorted: Bool
    /// How each record's augmentation is stored, and so A, its size.
    public var augmentation: AugmentationKind
    /// The epoch the shard's records were made in.
    public var epoch: Int
    /// The rank (worker) that wrote the shard.
    public var rank: Int
    /// R, records per block: every block but the last holds exactly R.
    public var recordsPerBlock: Int
    /// Free-form strings: teacher, teacher_checksum, dataset_checksum, augmentation_code_version, writer.
    public var provenance: [String: String]

    /// A schema; the limits (``maxClasses``, ``maxK``, ``maxRecordsPerBlock``, K ≤ C) are checked when a writer or
    /// header uses it.
    public init(classes: Int, k: Int, valueKind: ValueKind = .probability, temperature: Double = 1,
                sorted: Bool = true, augmentation: AugmentationKind = .none, epoch: Int = 0, rank: Int = 0,
                recordsPerBlock: Int = 1024, provenance: [String: String] = [:]) {
        self.classes = classes
        self.k = k
        self.valueKind = valueKind
        self.temperature = temperature
        self.sorted = sorted
        self.augmentation = augmentation
        self.epoch = epoch
        self.rank = rank
        self.recordsPerBlock = recordsPerBlock
        self.provenance = provenance
    }

    /// Checks the ranges the spec sets; the writer calls this before writing a byte.
    public func validate() throws {
        func fail(_ message: String) -> ShardError { ShardError(.badHeader, message) }
        guard (1...Self.maxClasses).contains(classes) else { throw fail("classes must be in 1...\(Self.maxClasses), got \(classes)") }
        guard (1...min(classes, Self.maxK)).contains(k) else { throw fail("k must be in 1...min(classes, \(Self.maxK)), got \(k)") }
        guard temperature.isFinite, temperature > 0 else { throw fail("temperature must be a positive number, got \(temperature)") }
        guard (0...Int(Int32.max)).contains(epoch) else { throw fail("epoch must be in 0...2^31-1, got \(epoch)") }
        guard (0...Int(Int32.max)).contains(rank) else { throw fail("rank must be in 0...2^31-1, got \(rank)") }
        guard (1...Self.maxRecordsPerBlock).contains(recordsPerBlock) else {
            throw fail("records_per_block must be in 1...\(Self.maxRecordsPerBlock), got \(recordsPerBlock)")
        }
        if case let .params(h, w) = augmentation {
            guard (1...65_535).contains(h), (1...65_535).contains(w) else {
                throw fail("augmentation output_size must be in 1...65535, got \(h)x\(w)")
            }
        }
    }

    // MARK: Derived layout

    /// Bytes per class index in the index section (w in the spec).
    public var indexWidth: Int { classes <= 1 << 8 ? 1 : classes <= 1 << 16 ? 2 : 3 }
    /// Bytes of each record's order number (L in the spec).
    public var orderLength: Int { OrderNumber.byteLengths[k] }
}

// MARK: JSON

/// The header's JSON shape as this project's writer emits it (reading goes through ``StrictJSON``).
private struct HeaderJSON: Codable {
    struct Augmentation: Codable {
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

extension ShardSchema {
    /// The header JSON, keys sorted so that equal schemas give equal bytes.
    public func jsonData() throws -> Data {
        var outputSize: [Int]?
        if case let .params(h, w) = augmentation { outputSize = [h, w] }
        let header = HeaderJSON(
            classes: classes, k: k, value_kind: valueKind.rawValue, temperature: temperature, sorted: sorted,
            value_dtype: "float16", index_codec: "sorted-gap-planes",
            augmentation: .init(kind: augmentation.name, version: 1, output_size: outputSize),
            epoch: epoch, rank: rank, records_per_block: recordsPerBlock, provenance: provenance)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(header)
    }

    /// Parses and validates header JSON by the spec's grammar (§1.1, Interchange's `StrictJSON`) and key rules;
    /// every failure is a `bad-header` error that names the key.
    public init(json: Data) throws {
        func fail(_ message: String) -> ShardError { ShardError(.badHeader, message) }
        let document: JSONDocument
        do {
            document = try StrictJSON.parse([UInt8](json))
        } catch let error as JSONSyntaxError {
            throw fail("header is not JSON of the spec's grammar: \(error)")
        }
        let header = try JSONFields(document.root, fail: { fail("header JSON: " + $0) })
        let classes = try header.integer("classes", in: 1...Self.maxClasses)
        let k = try header.integer("k", in: 1...min(classes, Self.maxK))
        let kindName = try header.string("value_kind")
        guard let valueKind = ValueKind(rawValue: kindName) else {
            throw fail("value_kind must be \"probability\" or \"logit\", got \"\(kindName)\"")
        }
        let temperature = try header.number("temperature")
        guard temperature.isFinite, temperature > 0 else { throw fail("temperature must be a finite number > 0, got \(temperature)") }
        let sorted = try header.bool("sorted")
        guard try header.string("value_dtype") == "float16" else { throw fail("value_dtype must be \"float16\"") }
        guard try header.string("index_codec") == "sorted-gap-planes" else { throw fail("index_codec must be \"sorted-gap-planes\"") }
        let augmentationFields = try header.object("augmentation")
        let augmentationKind = try augmentationFields.string("kind")
        guard ["none", "seed", "params"].contains(augmentationKind) else {
            throw fail("augmentation kind \"\(augmentationKind)\" is not none, seed or params")
        }
        guard try augmentationFields.integer("version", in: 1...1) == 1 else { throw fail("augmentation version must be 1") }
        // output_size, when present, is [height, width] of integers 1-65535 for every kind.
        var outputSize: (Int, Int)?
        if augmentationFields.optional("output_size") != nil {
            let size = try augmentationFields.array("output_size")
            guard size.count == 2 else { throw fail("augmentation.output_size must be [height, width]") }
            let fields = try size.enumerated().map { axis, value in
                try JSONFields.integer(value, in: 1...65_535, name: "augmentation.output_size[\(axis)]", fail: { fail($0) })
            }
            outputSize = (fields[0], fields[1])
        }
        let augmentation: AugmentationKind
        switch augmentationKind {
        case "none": augmentation = .none
        case "seed": augmentation = .seed
        default:
            guard let (h, w) = outputSize else { throw fail("augmentation kind params needs output_size [height, width]") }
            augmentation = .params(outputHeight: h, outputWidth: w)
        }
        let epoch = try header.integer("epoch", in: 0...Int(Int32.max))
        let rank = try header.integer("rank", in: 0...Int(Int32.max))
        let recordsPerBlock = try header.integer("records_per_block", in: 1...Self.maxRecordsPerBlock)
        let provenance = try header.stringMap("provenance")
        self.init(classes: classes, k: k, valueKind: valueKind, temperature: temperature, sorted: sorted,
                  augmentation: augmentation, epoch: epoch, rank: rank, recordsPerBlock: recordsPerBlock,
                  provenance: provenance)
        try validate()
    }
}
