import Foundation
import Interchange
import ShardFormat

/// A recipe that does not parse or holds a value the sampler cannot use: one line naming the file and key.
public struct RecipeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The recipe file's path (or the preset's name).
    public var file: String
    /// Dotted path of the offending key (`crop.scale`), empty for the whole document.
    public var key: String
    /// One sentence for a person.
    public var message: String
    /// An error about `key` of `file`.
    public init(file: String, key: String, _ message: String) { self.file = file; self.key = key; self.message = message }
    /// `file: [bad_recipe] key K: message`.
    public var description: String { "\(file): [bad_recipe] " + (key.isEmpty ? "" : "key \(key): ") + message }
}

/// A recipe with the name runs and shard provenance know it by: a preset's name or a recipe file's path.
public struct NamedRecipe: Sendable, Equatable {
    /// The preset's name or the recipe file's path, as recorded in provenance.
    public var name: String
    /// The recipe itself.
    public var recipe: AugmentationRecipe
    /// A recipe known as `name`.
    public init(name: String, recipe: AugmentationRecipe) { self.name = name; self.recipe = recipe }

    /// `spec` is a preset name (`tinyvit`, `tinyvit-mix`, `digits`) or a recipe JSON file.
    public static func load(_ spec: String) throws -> NamedRecipe {
        if let recipe = AugmentationRecipe.preset(spec) { return NamedRecipe(name: spec, recipe: recipe) }
        let names = AugmentationRecipe.presets.map(\.name).joined(separator: ", ")
        // Mapped, never read through: a FIFO or device (not a regular file) is refused, and a huge file is
        // refused by its size before any byte is parsed.
        guard let file = try? MappedFile(path: spec) else {
            throw RecipeError(file: spec, key: "", "not a preset (\(names)) nor a readable recipe file")
        }
        // A recipe is a few hundred bytes.
        guard file.bytes.count <= maxFileBytes else {
            throw RecipeError(file: spec, key: "", "\(file.bytes.count) bytes is not a recipe (at most \(maxFileBytes))")
        }
        return NamedRecipe(name: spec, recipe: try AugmentationRecipe(json: Data(file.bytes), file: spec))
    }

    /// The largest recipe file read (1 MiB); a larger one is an error, not a long parse.
    public static let maxFileBytes = 1 << 20

    /// The hash recorded in shard provenance: SHA-256 of the canonical JSON.
    public var hash: String { recipe.canonicalHash }
}

/// The recipe file: a JSON object whose keys are those ``canonicalJSON`` writes. Every key is optional
/// and a missing one keeps TinyViT's value (``AugmentationRecipe/tinyViT``); `null` turns off
/// `rand_augment`, `erasing` or `mix`. Unknown keys, wrong types and values the sampler cannot use
/// are errors naming the key: a typo must not silently train with the default. (Spec/SAMPLER.md 1.1, 1.3.)
extension AugmentationRecipe {
    /// Sorted keys, no spaces, numbers in shortest round-trip form (integers for counts): the same bytes
    /// as Python's `json.dumps(recipe, sort_keys=True, separators=(",", ":"))`.
    public var canonicalJSON: String {
        func number(_ x: Double) -> String { "\(x)" }
        func range(_ r: ClosedRange<Double>) -> String { "[\(number(r.lowerBound)),\(number(r.upperBound))]" }
        var out = "{\"crop\":{\"ratio\":\(range(cropRatio)),\"scale\":\(range(cropScale))},\"erasing\":"
        if let e = erasing {
            out += "{\"area\":\(range(e.area)),\"aspect\":\(range(e.aspect)),\"attempts\":\(e.attempts),\"probability\":\(number(e.probability))}"
        } else { out += "null" }
        out += ",\"horizontal_flip\":\(number(horizontalFlipProbability)),\"mix\":"
        if let m = mix {
            out += "{\"cutmix_alpha\":\(number(m.cutmixAlpha)),\"mixup_alpha\":\(number(m.mixupAlpha)),"
            out += "\"probability\":\(number(m.probability)),\"switch_probability\":\(number(m.switchProbability))}"
        } else { out += "null" }
        out += ",\"rand_augment\":"
        if let r = randAugment {
            let ops = r.ops.map { "\"\($0.timmName)\"" }.joined(separator: ",")
            out += "{\"layers\":\(r.layers),\"magnitude\":\(number(r.magnitude)),\"magnitude_std\":\(number(r.magnitudeStd)),"
            out += "\"ops\":[\(ops)],\"probability\":\(number(r.probability))}"
        } else { out += "null" }
        return out + "}"
    }

    public var canonicalHash: String { SHA256.hex(Array(canonicalJSON.utf8)) }

    /// Parses a recipe file strictly (see the extension's comment); `file` names it in errors. The JSON goes
    /// through Interchange's parser, the project's one reading of JSON (Spec/FORMAT.md, "JSON grammar"):
    /// a duplicate key, a BOM or a lone surrogate is an error here as it is in a shard header.
    public init(json data: Data, file: String) throws {
        let document: JSONDocument
        do { document = try StrictJSON.parse(Array(data)) } catch let error as JSONSyntaxError {
            throw RecipeError(file: file, key: "", "not valid JSON: \(error)")
        }
        self = try RecipeReader(file: file).recipe(document.root)
    }
}

/// Walks the parsed JSON, checking every key, type and range.
private struct RecipeReader {
    let file: String

    func fail(_ key: String, _ message: String) -> RecipeError { RecipeError(file: file, key: key, message) }

    /// The object's members by name, after refusing any name outside `allowed`.
    func object(_ value: JSONValue, _ key: String, allowed: [String]) throws -> [String: JSONValue] {
        guard let members = value.members else { throw fail(key, "expected an object, got \(value.kind.described)") }
        if let unknown = members.map(\.name).sorted().first(where: { !allowed.contains($0) }) {
            let path = key.isEmpty ? unknown : key + "." + unknown
            throw fail(path, "unknown key (allowed: \(allowed.joined(separator: ", ")))")
        }
        return Dictionary(uniqueKeysWithValues: members.map { ($0.name, $0.value) })
    }

    func number(_ value: JSONValue, _ key: String, _ allowed: ClosedRange<Double>) throws -> Double {
        guard let x = value.number else { throw fail(key, "expected a number, got \(value.kind.described)") }
        guard x.isFinite, allowed.contains(x) else { throw fail(key, "\(x) is outside \(allowed.lowerBound)...\(allowed.upperBound)") }
        return x
    }

    /// Counts are integer tokens (`2`, not `2.0` or `2e0`), as everywhere in the spec's grammar.
    func integer(_ value: JSONValue, _ key: String, _ allowed: ClosedRange<Int>) throws -> Int {
        guard value.isIntegerToken else { throw fail(key, "expected an integer, got \(value.kind == .number ? String(value.tokenText) : value.kind.described)") }
        guard let x = value.integer, allowed.contains(x) else { throw fail(key, "\(value.tokenText) is outside \(allowed.lowerBound)...\(allowed.upperBound)") }
        return x
    }

    /// A `[low, high]` pair with `bounds.lowerBound <(=) low <= high <= bounds.upperBound`.
    func range(_ value: JSONValue, _ key: String, _ bounds: ClosedRange<Double>, positive: Bool) throws -> ClosedRange<Double> {
        guard let pair = value.array, pair.count == 2 else { throw fail(key, "expected [low, high]") }
        let low = try number(pair[0], key, bounds), high = try number(pair[1], key, bounds)
        guard low <= high else { throw fail(key, "low \(low) is above high \(high)") }
        if positive && low <= 0 { throw fail(key, "low must be above 0, got \(low)") }
        return low...high
    }

    func recipe(_ root: JSONValue) throws -> AugmentationRecipe {
        let top = try object(root, "", allowed: ["crop", "erasing", "horizontal_flip", "mix", "rand_augment"])
        var recipe = AugmentationRecipe.tinyViT
        if let crop = top["crop"] {
            let c = try object(crop, "crop", allowed: ["ratio", "scale"])
            if let v = c["scale"] { recipe.cropScale = try range(v, "crop.scale", 0...1, positive: true) }
            if let v = c["ratio"] { recipe.cropRatio = try range(v, "crop.ratio", 0...1000, positive: true) }
        }
        if let v = top["horizontal_flip"] { recipe.horizontalFlipProbability = try number(v, "horizontal_flip", 0...1) }
        if let v = top["rand_augment"] {
            if v.isNull { recipe.randAugment = nil } else {
                let o = try object(v, "rand_augment", allowed: ["layers", "magnitude", "magnitude_std", "ops", "probability"])
                var r = RandAugmentRecipe()
                if let x = o["layers"] { r.layers = try integer(x, "rand_augment.layers", 0...16) }
                if let x = o["magnitude"] { r.magnitude = try number(x, "rand_augment.magnitude", 0...10) }
                if let x = o["magnitude_std"] { r.magnitudeStd = try number(x, "rand_augment.magnitude_std", 0...100) }
                if let x = o["probability"] { r.probability = try number(x, "rand_augment.probability", 0...1) }
                if let x = o["ops"] {
                    guard let names = x.array, !names.isEmpty else { throw fail("rand_augment.ops", "expected a non-empty list of op names") }
                    r.ops = try names.map { name in
                        guard let s = name.string, let op = RandAugmentOp.allCases.first(where: { $0.timmName == s }) else {
                            let shown = name.string ?? name.kind.described
                            throw fail("rand_augment.ops", "\(shown) is not one of \(RandAugmentOp.allCases.map(\.timmName).joined(separator: ", "))")
                        }
                        return op
                    }
                    guard Set(r.ops).count == r.ops.count else { throw fail("rand_augment.ops", "an op is listed twice") }
                }
                recipe.randAugment = r
            }
        }
        if let v = top["erasing"] {
            if v.isNull { recipe.erasing = nil } else {
                let o = try object(v, "erasing", allowed: ["area", "aspect", "attempts", "probability"])
                var e = ErasingRecipe()
                if let x = o["probability"] { e.probability = try number(x, "erasing.probability", 0...1) }
                if let x = o["area"] { e.area = try range(x, "erasing.area", 0...1, positive: true) }
                if let x = o["aspect"] { e.aspect = try range(x, "erasing.aspect", 0...1000, positive: true) }
                if let x = o["attempts"] { e.attempts = try integer(x, "erasing.attempts", 1...100) }
                recipe.erasing = e
            }
        }
        if let v = top["mix"] {
            if v.isNull { recipe.mix = nil } else {
                let o = try object(v, "mix", allowed: ["cutmix_alpha", "mixup_alpha", "probability", "switch_probability"])
                var m = MixRecipe()
                if let x = o["mixup_alpha"] { m.mixupAlpha = try number(x, "mix.mixup_alpha", 0...100) }
                if let x = o["cutmix_alpha"] { m.cutmixAlpha = try number(x, "mix.cutmix_alpha", 0...100) }
                if let x = o["probability"] { m.probability = try number(x, "mix.probability", 0...1) }
                if let x = o["switch_probability"] { m.switchProbability = try number(x, "mix.switch_probability", 0...1) }
                for (name, alpha) in [("mix.mixup_alpha", m.mixupAlpha), ("mix.cutmix_alpha", m.cutmixAlpha)] where alpha > 0 && alpha < 1e-3 {
                    throw fail(name, "a positive alpha must be at least 0.001, got \(alpha)")
                }
                recipe.mix = m
            }
        }
        return recipe
    }
}

extension RandAugmentOp {
    /// timm's op name (`_RAND_INCREASING_TRANSFORMS`).
    public var timmName: String {
        switch self {
        case .autoContrast: return "AutoContrast"
        case .equalize: return "Equalize"
        case .invert: return "Invert"
        case .rotate: return "Rotate"
        case .posterizeIncreasing: return "PosterizeIncreasing"
        case .solarizeIncreasing: return "SolarizeIncreasing"
        case .solarizeAdd: return "SolarizeAdd"
        case .colorIncreasing: return "ColorIncreasing"
        case .contrastIncreasing: return "ContrastIncreasing"
        case .brightnessIncreasing: return "BrightnessIncreasing"
        case .sharpnessIncreasing: return "SharpnessIncreasing"
        case .shearX: return "ShearX"
        case .shearY: return "ShearY"
        case .translateXRel: return "TranslateXRel"
        case .translateYRel: return "TranslateYRel"
        }
    }
}
