import Foundation
import ShardFormat
import XCTest
@testable import Augment

/// The augmentation sampler's test vector (Spec/SAMPLER.md, Spec/vectors/sampling/augmentation-sampler.json):
/// the random stream's primitives draw by draw, and for the three presets and two recipe files, cases of
/// (run seed, epoch, sample, output size, source size, partner pool) with the 80-byte code the sampler draws.
/// Written with TINYSHARD_WRITE_VECTORS=1; checked against the stored file always. Python checks the same
/// file (Tools/python/tests/test_sampler_vectors.py).
final class SamplerVectorTests: XCTestCase {
    static let vector = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Spec/vectors/sampling/augmentation-sampler.json").path

    // MARK: The file

    struct File: Codable, Equatable {
        var description: String
        var random: [RandomCase]
        var recipes: [RecipeCases]
    }

    /// One stream (SAMPLER.md 2) and a sequence of calls on it.
    struct RandomCase: Codable, Equatable {
        var seed: UInt64
        var epoch: UInt32
        var sample: UInt32
        var stream: UInt32
        /// The stream key, 16 lowercase hex digits.
        var key: String
        var draws: [Draw]
    }

    /// One call: `next` gives `out` (16 hex digits); `integer` gives `int`; `uniform`, `gauss`, `gamma` and
    /// `beta` give a float64 as `bits` (16 hex digits) and `value`. `counter` is the number of 64-bit outputs
    /// the stream has used after the call.
    struct Draw: Codable, Equatable {
        var kind: String
        var args: [Double]?
        var lower: Int?
        var upper: Int?
        var out: String?
        var int: Int?
        var bits: String?
        var value: Double?
        var counter: UInt64
    }

    struct RecipeCases: Codable, Equatable {
        var name: String
        /// The recipe file's text as given (nil for a preset, which `name` names).
        var input: String?
        var canonicalJson: String
        var sha256: String
        var cases: [Case]

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(input, forKey: .input)  // explicit null for presets
            try c.encode(canonicalJson, forKey: .canonicalJson)
            try c.encode(sha256, forKey: .sha256)
            try c.encode(cases, forKey: .cases)
        }
    }

    struct Case: Codable, Equatable {
        var seed: UInt64
        var epoch: UInt32
        var sample: UInt32
        var outputWidth: Int
        var outputHeight: Int
        var sourceWidth: Int
        var sourceHeight: Int
        /// The partner pool in order: [sample id, source width, source height].
        var partners: [[UInt32]]
        /// The 80-byte code (FORMAT.md 4), lowercase hex.
        var code: String
        var params: ParamsJSON
    }

    struct ParamsJSON: Codable, Equatable {
        var view: ViewJSON
        var mix: MixJSON?

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(view, forKey: .view)
            try c.encode(mix, forKey: .mix)
        }
    }

    struct ViewJSON: Codable, Equatable {
        /// [width, height]
        var source: [Int]
        /// [x, y, w, h]
        var crop: [Int]
        var flip: Bool
        var ops: [OpJSON]
        var erase: EraseJSON?

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(source, forKey: .source)
            try c.encode(crop, forKey: .crop)
            try c.encode(flip, forKey: .flip)
            try c.encode(ops, forKey: .ops)
            try c.encode(erase, forKey: .erase)
        }
    }

    struct OpJSON: Codable, Equatable {
        var name: String
        var id: Int
        var magnitudeHundredths: Int
        var negate: Bool
    }

    struct EraseJSON: Codable, Equatable {
        var box: [Int]
        var noiseSeed: UInt32
    }

    struct MixJSON: Codable, Equatable {
        var mode: String
        var lambdaQ: Int
        var partner: UInt32
        var box: [Int]?
        var partnerView: ViewJSON

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(mode, forKey: .mode)
            try c.encode(lambdaQ, forKey: .lambdaQ)
            try c.encode(partner, forKey: .partner)
            try c.encode(box, forKey: .box)
            try c.encode(partnerView, forKey: .partnerView)
        }
    }

    // MARK: What the vector holds

    /// All stages on, unusual values; keys left out keep TinyViT's values (`mix.switch_probability`).
    static let customInput = """
        {"crop": {"scale": [0.25, 0.9], "ratio": [0.4, 2.5]},
         "horizontal_flip": 0.3,
         "rand_augment": {"layers": 5, "magnitude": 7.5, "magnitude_std": 4, "probability": 0.8,
                          "ops": ["ShearY", "Rotate", "Invert", "SolarizeAdd", "TranslateXRel", "ColorIncreasing"]},
         "erasing": {"probability": 0.9, "area": [0.05, 0.6], "aspect": [0.1, 10], "attempts": 3},
         "mix": {"mixup_alpha": 0.3, "cutmix_alpha": 2.5, "probability": 0.85}}

        """

    /// Values chosen to land on rounding ties and edge paths: a 25%-area square crop (2.5 × 2.5 on a 5 × 5
    /// source rounds to 2), magnitude 9.125 without noise (912.5 hundredths rounds to 912), a 25%-area
    /// square erase (2.5 on a 5 × 5 output; 0.5 → 0 on 1 × 1, no erase), four layers always applied (the
    /// grid keeps three), cutmix only (no switch draw), an alpha below 1 (the gamma boost).
    static let tiesInput = """
        {"crop": {"scale": [0.25, 0.25], "ratio": [1, 1]}, "horizontal_flip": 1,
         "rand_augment": {"layers": 4, "magnitude": 9.125, "magnitude_std": 0, "probability": 1, "ops": ["Rotate", "Equalize"]},
         "erasing": {"probability": 1, "area": [0.25, 0.25], "aspect": [1, 1], "attempts": 1},
         "mix": {"mixup_alpha": 0, "cutmix_alpha": 0.5, "probability": 1, "switch_probability": 0.5}}

        """

    typealias Pool = [(id: UInt32, width: Int, height: Int)]

    struct Input {
        var seed: UInt64
        var epoch: UInt32
        var sample: UInt32
        var output: (width: Int, height: Int)
        var source: (width: Int, height: Int)
        var pool: Pool
    }

    static let identityPool: Pool = [(0, 500, 375), (1, 375, 500), (2, 640, 480), (3, 32, 32), (4, 1, 1), (5, 4000, 10),
                                     (6, 224, 224), (7, 1000, 999)]
    static let sparsePool: Pool = [(3, 500, 333), (17, 640, 480), (42, 48, 64), (99, 224, 224), (1000, 7, 3),
                                   (4_294_967_295, 65535, 2)]
    static let tinyPool: Pool = [(0, 5, 5), (1, 3, 3), (2, 1, 1), (3, 2, 7)]

    /// The cases every recipe gets: ordinary photos, pools that are and are not 0..n-1, the extreme seed,
    /// epoch, sample id and sizes, a 1 × 1 output, sources no crop attempt fits (the central fallback, both
    /// ways), tiny outputs, and outputs of 131070 pixels (30 × 4369) on which a clipped cutmix box can put
    /// λ·65535 exactly halfway between two integers.
    static func inputs(_ tieSample: UInt32?) -> [Input] {
        var out: [Input] = []
        for sample in UInt32(0)..<6 {
            out.append(Input(seed: 0, epoch: 0, sample: sample, output: (224, 224), source: (500, 375), pool: identityPool))
        }
        out.append(Input(seed: 0, epoch: 1, sample: 0, output: (224, 224), source: (500, 375), pool: identityPool))
        out.append(Input(seed: 1, epoch: 0, sample: 0, output: (224, 224), source: (500, 375), pool: identityPool))
        out.append(Input(seed: 42, epoch: 3, sample: 17, output: (224, 224), source: (640, 480), pool: sparsePool))
        out.append(Input(seed: 42, epoch: 3, sample: 99, output: (224, 224), source: (333, 500), pool: sparsePool))
        out.append(Input(seed: 42, epoch: 4, sample: 123_456, output: (160, 96), source: (800, 600), pool: sparsePool))
        out.append(Input(seed: .max, epoch: .max, sample: .max, output: (65535, 65535), source: (65535, 65535),
                         pool: [(4_294_967_295, 65535, 1), (0, 1, 65535)]))
        out.append(Input(seed: 12345, epoch: 1, sample: 5, output: (1, 1), source: (1, 1), pool: [(5, 1, 1)]))
        out.append(Input(seed: 12345, epoch: 2, sample: 6, output: (160, 96), source: (4000, 1),
                         pool: [(0, 1, 4000), (1, 4000, 1)]))
        out.append(Input(seed: 12345, epoch: 2, sample: 7, output: (96, 160), source: (1, 4000),
                         pool: [(0, 1, 4000), (1, 4000, 1)]))
        out.append(Input(seed: 9, epoch: 0, sample: 3, output: (5, 5), source: (5, 5), pool: tinyPool))
        out.append(Input(seed: 9, epoch: 0, sample: 4, output: (3, 3), source: (3, 3), pool: tinyPool))
        out.append(Input(seed: 9, epoch: 0, sample: 5, output: (5, 5), source: (2, 7), pool: tinyPool))
        let tiePool: Pool = (0..<10).map { (UInt32($0), 300, 200) }
        for sample in [UInt32(1), 2] + (tieSample.map { [$0] } ?? []) {
            out.append(Input(seed: 7, epoch: 2, sample: sample, output: (30, 4369), source: (300, 200), pool: tiePool))
        }
        return out
    }

    /// (name, recipe file text or nil for a preset, sample of the 30 × 4369 family whose cutmix λ·65535 is a
    /// tie that rounding half to even and half away from zero settle differently).
    static let recipes: [(name: String, input: String?, tieSample: UInt32?)] = [
        ("tinyvit", nil, nil), ("tinyvit-mix", nil, 28), ("digits", nil, nil),
        ("custom-unusual", customInput, 6), ("custom-ties", tiesInput, 8),
    ]

    // MARK: Building the vector

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
    static func hex64(_ x: UInt64) -> String { String(format: "%016llx", x) }

    static func boxJSON(_ b: PixelBox) -> [Int] { [Int(b.x), Int(b.y), Int(b.width), Int(b.height)] }

    static func viewJSON(_ v: AugmentationView) -> ViewJSON {
        ViewJSON(source: [Int(v.sourceWidth), Int(v.sourceHeight)], crop: boxJSON(v.crop), flip: v.horizontalFlip,
                 ops: v.operations.map { OpJSON(name: $0.op.timmName, id: Int($0.op.rawValue),
                                                magnitudeHundredths: Int($0.magnitudeHundredths), negate: $0.negate) },
                 erase: v.erase.map { EraseJSON(box: boxJSON($0.box), noiseSeed: $0.noiseSeed) })
    }

    static func paramsJSON(_ p: AugmentationParameters) -> ParamsJSON {
        ParamsJSON(view: viewJSON(p.view), mix: p.mix.map {
            MixJSON(mode: $0.mode == .mixup ? "mixup" : "cutmix", lambdaQ: Int($0.lambdaCode), partner: $0.partner,
                    box: $0.box.map(boxJSON), partnerView: viewJSON($0.partnerView))
        })
    }

    static func randomCases() -> [RandomCase] {
        let calls: [(String, [Double], Int, Int)] = [
            ("next", [], 0, 0), ("next", [], 0, 0), ("uniform", [], 0, 0), ("uniform", [0.08, 1.0], 0, 0),
            ("integer", [], 0, 0), ("integer", [], 0, 9), ("integer", [], -5, 5), ("integer", [], 0, 65534),
            ("integer", [], 0, 4_294_967_294),
        // A span just above 2^64 / 3: a third of the outputs are redrawn (Lemire's rejection).
        ] + Array(repeating: ("integer", [], 0, 6_148_914_691_236_517_205), count: 8) + [
            ("gauss", [0, 1], 0, 0), ("gauss", [9, 0.5], 0, 0), ("gamma", [0.3], 0, 0), ("gamma", [1.0], 0, 0),
            ("gamma", [2.5], 0, 0), ("gamma", [1.001], 0, 0), ("gamma", [100], 0, 0), ("beta", [0.8, 0.8], 0, 0),
            ("beta", [1.0, 1.0], 0, 0), ("beta", [0.001, 0.001], 0, 0), ("next", [], 0, 0),
        ]
        let streams: [(UInt64, UInt32, UInt32, UInt32)] = [(0, 0, 0, 1), (42, 3, 17, 3), (.max, .max, .max, 5)]
        return streams.map { seed, epoch, sample, stream in
            var random = SampleRandom(seed: seed, epoch: epoch, sample: sample, stream: stream)
            var draws: [Draw] = []
            for (kind, args, lower, upper) in calls {
                var draw = Draw(kind: kind, args: args.isEmpty ? nil : args, counter: 0)
                var real: Double?
                switch kind {
                case "next": draw.out = hex64(random.next())
                case "uniform": real = args.isEmpty ? random.uniform() : random.uniform(args[0], args[1])
                case "integer":
                    draw.lower = lower
                    draw.upper = upper
                    draw.int = random.integer(lower, upper)
                case "gauss": real = random.gauss(mean: args[0], std: args[1])
                case "gamma": real = random.gamma(shape: args[0])
                default: real = random.beta(args[0], args[1])
                }
                if let real {
                    draw.bits = hex64(real.bitPattern)
                    draw.value = real
                }
                draw.counter = random.counter
                draws.append(draw)
            }
            return RandomCase(seed: seed, epoch: epoch, sample: sample, stream: stream,
                              key: hex64(SampleRandom.key(seed: seed, epoch: epoch, sample: sample, stream: stream)),
                              draws: draws)
        }
    }

    static func recipe(_ name: String, _ input: String?) throws -> AugmentationRecipe {
        if let input { return try AugmentationRecipe(json: Data(input.utf8), file: name) }
        return try XCTUnwrap(AugmentationRecipe.preset(name))
    }

    static func build() throws -> File {
        var recipeCases: [RecipeCases] = []
        for (name, input, tieSample) in recipes {
            let recipe = try recipe(name, input)
            var cases: [Case] = []
            for i in inputs(tieSample) {
                let sampler = try AugmentationSampler(runSeed: i.seed, recipe: recipe, outputWidth: i.output.width,
                                                      outputHeight: i.output.height)
                let sizes = Dictionary(uniqueKeysWithValues: i.pool.map { ($0.id, (width: $0.width, height: $0.height)) })
                let params = try sampler.parameters(epoch: i.epoch, sample: i.sample, sourceWidth: i.source.width,
                                                    sourceHeight: i.source.height, partners: i.pool.map(\.id)) { try XCTUnwrap(sizes[$0]) }
                let code = try params.encoded(outputHeight: i.output.height, outputWidth: i.output.width)
                cases.append(Case(seed: i.seed, epoch: i.epoch, sample: i.sample, outputWidth: i.output.width,
                                  outputHeight: i.output.height, sourceWidth: i.source.width, sourceHeight: i.source.height,
                                  partners: i.pool.map { [$0.id, UInt32($0.width), UInt32($0.height)] },
                                  code: hex(code), params: paramsJSON(params)))
            }
            recipeCases.append(RecipeCases(name: name, input: input, canonicalJson: recipe.canonicalJSON,
                                           sha256: recipe.canonicalHash, cases: cases))
        }
        return File(description: """
            Spec/SAMPLER.md: the augmentation sampler. `random`: streams keyed by (seed, epoch, sample, stream) \
            (section 2), each with a sequence of calls and their results (`next`: `out`; `integer(lower, upper)`: \
            `int`; `uniform` (no args: [0, 1); args [a, b]: a + (b − a)·u), `gauss` [mean, std], `gamma` [shape], \
            `beta` [a, b]: the float64 `bits` and `value`) and the stream's draw count `counter` after the call. \
            `recipes`: for each recipe (a preset by `name`, or the recipe file `input`), its canonical JSON and \
            SHA-256 (section 1) and cases: (seed, epoch, sample, output and source size, partner pool as \
            [sample id, width, height] in pool order) with the 80-byte params code (FORMAT.md 4) in hex and, \
            for reading, the code decoded (boxes [x, y, w, h]; source [w, h]; magnitudes in hundredths). \
            Written by Tests/AugmentTests/SamplerVectorTests.swift.
            """, random: randomCases(), recipes: recipeCases)
    }

    // MARK: Tests

    func testTheVector() throws {
        let file = try Self.build()
        if ProcessInfo.processInfo.environment["TINYSHARD_WRITE_VECTORS"] == "1" {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            try FileManager.default.createDirectory(atPath: (Self.vector as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try (encoder.encode(file) + Data("\n".utf8)).write(to: URL(fileURLWithPath: Self.vector))
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let stored = try decoder.decode(File.self, from: Data(contentsOf: URL(fileURLWithPath: Self.vector)))
        XCTAssertEqual(stored.description, file.description)
        XCTAssertEqual(stored.random, file.random)
        XCTAssertEqual(stored.recipes.map(\.name), file.recipes.map(\.name))
        for (a, b) in zip(stored.recipes, file.recipes) {
            XCTAssertEqual(a.input, b.input, a.name)
            XCTAssertEqual(a.canonicalJson, b.canonicalJson, a.name)
            XCTAssertEqual(a.sha256, b.sha256, a.name)
            XCTAssertEqual(a.cases.count, b.cases.count, a.name)
            for (x, y) in zip(a.cases, b.cases) { XCTAssertEqual(x, y, "\(a.name): seed \(y.seed) epoch \(y.epoch) sample \(y.sample)") }
        }
        XCTAssertEqual(stored, file)
    }

    /// The vector reaches the paths SAMPLER.md singles out, so an implementation that passes it has taken each.
    func testTheVectorCoversTheEdgeCases() throws {
        let file = try Self.build()
        var seen = Set<String>()
        for recipe in file.recipes {
            for c in recipe.cases {
                let views = [c.params.view] + (c.params.mix.map { [$0.partnerView] } ?? [])
                for v in views {
                    let (w, h) = (v.source[0], v.source[1])
                    if v.crop[2] == w && v.crop[3] == h { seen.insert("whole-source crop") }
                    if w == 4000 || h == 4000 { seen.insert("fallback crop \(v.crop)") }
                    if v.ops.count == 3 { seen.insert("three ops") }
                    if v.ops.contains(where: { $0.magnitudeHundredths == 1000 }) { seen.insert("magnitude 10") }
                    if v.ops.contains(where: { $0.magnitudeHundredths == 0 }) { seen.insert("magnitude 0") }
                    if v.ops.contains(where: { $0.magnitudeHundredths == 912 }) { seen.insert("magnitude tie") }
                    if v.ops.contains(where: \.negate) { seen.insert("negate") }
                    if v.erase != nil { seen.insert("erase") }
                    if v.flip { seen.insert("flip") }
                    if w == 5, h == 5, v.crop[2] == 2, recipe.name == "custom-ties" { seen.insert("crop tie") }
                }
                if let mix = c.params.mix {
                    seen.insert(mix.mode)
                    if !c.partners.map({ $0[0] }).elementsEqual(0..<UInt32(c.partners.count)) { seen.insert("sparse pool") }
                    if let box = mix.box {
                        let area = Double(box[2] * box[3]) / Double(c.outputWidth * c.outputHeight)
                        let q = (1 - area) * 65535
                        if q - q.rounded(.down) == 0.5, mix.lambdaQ % 2 == 1 { seen.insert("lambda tie") }
                    }
                } else if recipe.name.contains("mix") || recipe.name.hasPrefix("custom") {
                    seen.insert("unmixed")
                }
                if recipe.name == "custom-ties", c.outputWidth == 5, c.params.view.erase?.box[2] == 2 { seen.insert("erase tie") }
            }
        }
        for expected in ["whole-source crop", "fallback crop [1999, 0, 2, 1]", "fallback crop [0, 1999, 1, 2]",
                         "three ops", "magnitude 10", "magnitude 0", "magnitude tie", "negate", "erase", "flip", "crop tie",
                         "mixup", "cutmix", "sparse pool", "lambda tie", "unmixed", "erase tie"] {
            XCTAssertTrue(seen.contains(expected), "\(expected) not reached: \(seen.sorted())")
        }
    }
}
