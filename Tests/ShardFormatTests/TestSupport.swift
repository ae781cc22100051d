import Foundation
import XCTest
@testable import ShardFormat

// Shared helpers of the ShardFormat tests: a seeded RNG, temporary folders, random records and
// augmentation parameters, and record comparison by bit pattern.

/// SplitMix64: small, fast and fully determined by its seed, so a failing trial can be replayed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func chance(_ probability: Double) -> Bool { Double.random(in: 0..<1, using: &self) < probability }
}

/// A fresh folder under the system temporary folder, removed when the object goes away.
final class TemporaryDirectory {
    let path: String

    init(_ label: String = "shard") throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("tinyshard-\(label)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

func readBytes(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// The ShardError a throwing call raised, or nil (failing the test) when it raised something else or
/// nothing.
@discardableResult
func shardError<T>(_ body: @autoclosure () throws -> T, file: StaticString = #filePath, line: UInt = #line) -> ShardError? {
    do {
        _ = try body()
        XCTFail("expected a ShardError, but the call succeeded", file: file, line: line)
        return nil
    } catch let error as ShardError {
        return error
    } catch {
        XCTFail("expected a ShardError, got \(error)", file: file, line: line)
        return nil
    }
}

/// Asserts that `body` throws a ShardError with exactly `code`.
func assertShardError<T>(_ code: ShardErrorCode, _ body: @autoclosure () throws -> T, _ message: String = "",
                         file: StaticString = #filePath, line: UInt = #line) {
    guard let error = shardError(try body(), file: file, line: line) else { return }
    XCTAssertEqual(error.code, code, "\(message) — \(error)", file: file, line: line)
}

// MARK: Records

/// A record as the test wrote it; values are float16 bit patterns so that -0 and +0 stay apart.
struct TestRecord: Equatable {
    var sampleID: UInt32
    var augmentation: [UInt8]
    var indices: [Int32]
    var valueBits: [UInt16]

    init(sampleID: UInt32, augmentation: [UInt8] = [], indices: [Int32], valueBits: [UInt16]) {
        self.sampleID = sampleID
        self.augmentation = augmentation
        self.indices = indices
        self.valueBits = valueBits
    }

    init(sampleID: UInt32, augmentation: [UInt8] = [], indices: [Int32], values: [Float16]) {
        self.init(sampleID: sampleID, augmentation: augmentation, indices: indices, valueBits: values.map(\.bitPattern))
    }

    init(_ record: ShardRecord) {
        self.init(sampleID: record.sampleID, augmentation: record.augmentation, indices: record.indices,
                  valueBits: record.values.map(\.bitPattern))
    }

    var values: [Float16] { valueBits.map(Float16.init(bitPattern:)) }
}

extension ShardWriter {
    func append(_ record: TestRecord) throws {
        try append(sampleID: record.sampleID, indices: record.indices, valueBits: record.valueBits,
                   augmentation: record.augmentation)
    }
}

/// Writes `records` into a new shard at `path` and returns what the writer reported.
@discardableResult
func writeShard(_ path: String, _ schema: ShardSchema, _ records: [TestRecord], compressionLevel: Int = 9) throws -> ShardFileInfo {
    let writer = try ShardWriter(path: path, schema: schema, compressionLevel: compressionLevel)
    for record in records { try writer.append(record) }
    return try writer.finish()
}

/// The dense residual of Spec section 7, computed here independently of the library: Σ in float64
/// over the float16 values in stored order, max(0, 1 − Σ) / (C − K), rounded to float32 once.
func expectedResidual(_ bits: [UInt16], classes: Int) -> Float? {
    guard classes > bits.count else { return nil }
    var sum = 0.0
    for b in bits { sum += Double(Float16(bitPattern: b)) }
    return Float(max(0, 1 - sum) / Double(classes - bits.count))
}

enum RecordGenerator {
    /// K distinct class indices below C, in random order; often includes 0 and C − 1 (the values that
    /// stress the index width).
    static func indices(k: Int, classes: Int, using rng: inout SplitMix64) -> [Int32] {
        var chosen: [Int32]
        if classes <= 4 * k {
            chosen = Array((0..<Int32(classes)).shuffled(using: &rng).prefix(k))
        } else {
            var set = Set<Int32>()
            if rng.chance(0.4) { set.insert(Int32(classes - 1)) }
            if rng.chance(0.3), set.count < k { set.insert(0) }
            while set.count < k { set.insert(Int32.random(in: 0..<Int32(classes), using: &rng)) }
            chosen = Array(set)
        }
        chosen.shuffle(using: &rng)
        return chosen
    }

    /// K valid probabilities (float16 bits): a random distribution with total ≤ 1, sometimes with zeros,
    /// subnormals, or (K = 1) exactly 1. Sorted descending when `sorted`.
    static func probabilityBits(k: Int, sorted: Bool, using rng: inout SplitMix64) -> [UInt16] {
        var values: [Float16]
        if k == 1, rng.chance(0.3) {
            values = [rng.chance(0.5) ? 1 : 0]
        } else {
            let skew = Double.random(in: 1...8, using: &rng)
            var weights = (0..<k).map { _ in pow(Double.random(in: 0..<1, using: &rng), skew) }
            if rng.chance(0.3) { for j in 0..<k where rng.chance(0.3) { weights[j] = 0 } }
            let total = weights.reduce(0, +)
            let mass = Double.random(in: 0.3...0.999, using: &rng)
            values = weights.map { Float16(total > 0 ? $0 / total * mass : 0) }
            if rng.chance(0.2) { values[Int.random(in: 0..<k, using: &rng)] = Float16(bitPattern: UInt16.random(in: 1...0x3FF, using: &rng)) }
        }
        if sorted { values.sort(by: >) } else { values.shuffle(using: &rng) }
        return values.map(\.bitPattern)
    }

    /// K finite logits (float16 bits), including extremes and signed zeros now and then.
    static func logitBits(k: Int, sorted: Bool, using rng: inout SplitMix64) -> [UInt16] {
        var values: [Float16] = (0..<k).map { _ in
            switch Int.random(in: 0..<20, using: &rng) {
            case 0: return Float16.greatestFiniteMagnitude
            case 1: return -Float16.greatestFiniteMagnitude
            case 2: return Float16(-0.0)
            case 3: return 0
            default: return Float16(Float.random(in: -30...30, using: &rng))
            }
        }
        if sorted { values.sort(by: >) } else { values.shuffle(using: &rng) }
        return values.map(\.bitPattern)
    }

    static func augmentation(_ kind: AugmentationKind, using rng: inout SplitMix64) -> [UInt8] {
        switch kind {
        case .none: return []
        case .seed: return (0..<4).map { _ in UInt8.random(in: 0...255, using: &rng) }
        case let .params(h, w):
            return try! randomParameters(outputHeight: h, outputWidth: w, using: &rng).encoded(outputHeight: h, outputWidth: w)
        }
    }

    static func record(schema: ShardSchema, sampleID: UInt32, using rng: inout SplitMix64) -> TestRecord {
        let bits = schema.valueKind == .probability
            ? probabilityBits(k: schema.k, sorted: schema.sorted, using: &rng)
            : logitBits(k: schema.k, sorted: schema.sorted, using: &rng)
        return TestRecord(sampleID: sampleID, augmentation: augmentation(schema.augmentation, using: &rng),
                          indices: indices(k: schema.k, classes: schema.classes, using: &rng), valueBits: bits)
    }

    /// `count` records with distinct random sample ids below `idLimit`.
    static func records(schema: ShardSchema, count: Int, idLimit: UInt32 = 1 << 20, using rng: inout SplitMix64) -> [TestRecord] {
        var ids = Set<UInt32>()
        var records: [TestRecord] = []
        while records.count < count {
            let id = UInt32.random(in: 0..<idLimit, using: &rng)
            guard ids.insert(id).inserted else { continue }
            records.append(record(schema: schema, sampleID: id, using: &rng))
        }
        return records
    }
}

// MARK: Augmentation parameters

/// A random value 1...limit, biased towards the ends of the range.
private func edgy(_ limit: Int, using rng: inout SplitMix64) -> Int {
    switch Int.random(in: 0..<8, using: &rng) {
    case 0: return 1
    case 1: return limit
    default: return Int.random(in: 1...min(limit, 2000), using: &rng)
    }
}

func randomBox(insideWidth width: Int, height: Int, using rng: inout SplitMix64) -> PixelBox {
    let w = Int.random(in: 1...width, using: &rng)
    let h = Int.random(in: 1...height, using: &rng)
    return PixelBox(x: UInt16(Int.random(in: 0...(width - w), using: &rng)), y: UInt16(Int.random(in: 0...(height - h), using: &rng)),
                    width: UInt16(w), height: UInt16(h))
}

func randomView(outputHeight: Int, outputWidth: Int, using rng: inout SplitMix64) -> AugmentationView {
    let sourceWidth = edgy(65535, using: &rng)
    let sourceHeight = edgy(65535, using: &rng)
    let operations = (0..<Int.random(in: 0...3, using: &rng)).map { _ in
        RandAugmentOperation(op: RandAugmentOp(rawValue: UInt8.random(in: 0...14, using: &rng))!,
                             magnitudeHundredths: [0, 1000, UInt16.random(in: 0...1000, using: &rng)].randomElement(using: &rng)!,
                             negate: Bool.random(using: &rng))
    }
    var erase: RandomErase?
    if Bool.random(using: &rng) {
        erase = RandomErase(box: randomBox(insideWidth: outputWidth, height: outputHeight, using: &rng),
                            noiseSeed: rng.chance(0.2) ? 0 : UInt32.random(in: 0...UInt32.max, using: &rng))
    }
    return AugmentationView(sourceWidth: UInt16(sourceWidth), sourceHeight: UInt16(sourceHeight),
                            crop: randomBox(insideWidth: sourceWidth, height: sourceHeight, using: &rng),
                            horizontalFlip: Bool.random(using: &rng), operations: operations, erase: erase)
}

func randomParameters(outputHeight: Int, outputWidth: Int, using rng: inout SplitMix64) -> AugmentationParameters {
    let view = randomView(outputHeight: outputHeight, outputWidth: outputWidth, using: &rng)
    let partnerView = randomView(outputHeight: outputHeight, outputWidth: outputWidth, using: &rng)
    let lambda = UInt16.random(in: 0...UInt16.max, using: &rng)
    let partner = UInt32.random(in: 0...UInt32.max, using: &rng)
    switch Int.random(in: 0..<3, using: &rng) {
    case 0:
        return AugmentationParameters(view: view)
    case 1:
        return AugmentationParameters(view: view, mix: Mix(mode: .mixup, lambdaCode: lambda, partner: partner, partnerView: partnerView))
    default:
        return AugmentationParameters(view: view, mix: Mix(mode: .cutmix, lambdaCode: lambda, partner: partner,
                                                           box: randomBox(insideWidth: outputWidth, height: outputHeight, using: &rng),
                                                           partnerView: partnerView))
    }
}
