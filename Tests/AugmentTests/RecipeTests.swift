import Foundation
import ShardFormat
import XCTest
@testable import Augment

/// Recipes as data: presets, the strict JSON file, the canonical form and its hash; mix partners.
final class RecipeTests: XCTestCase {
    func testSHA256KnownVectors() {
        XCTAssertEqual(SHA256.hex(Array("".utf8)), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex([UInt8](repeating: 0x61, count: 1_000)),
                       "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    /// Every preset's canonical JSON parses back to the same recipe; the presets differ from each other.
    func testPresetsRoundTripThroughTheirCanonicalJSON() throws {
        var hashes = Set<String>()
        for (name, recipe) in AugmentationRecipe.presets {
            let parsed = try AugmentationRecipe(json: Data(recipe.canonicalJSON.utf8), file: name)
            XCTAssertEqual(parsed, recipe, name)
            XCTAssertEqual(parsed.canonicalJSON, recipe.canonicalJSON, name)
            hashes.insert(recipe.canonicalHash)
            XCTAssertEqual(try NamedRecipe.load(name).recipe, recipe)
        }
        XCTAssertEqual(hashes.count, 3)
        XCTAssertEqual(AugmentationRecipe.digits.horizontalFlipProbability, 0)
        XCTAssertTrue(AugmentationRecipe.tinyViT.canonicalJSON.hasPrefix(#"{"crop":{"ratio":[0.75,1.3333333333333333],"scale":[0.08,1.0]},"#),
                      AugmentationRecipe.tinyViT.canonicalJSON)
    }

    /// Missing keys keep TinyViT's values; null turns a part off.
    func testPartialFileKeepsDefaultsAndNullTurnsOff() throws {
        let json = #"{"horizontal_flip": 0, "crop": {"scale": [0.5, 1]}, "erasing": null, "mix": {"mixup_alpha": 0.2}}"#
        let recipe = try AugmentationRecipe(json: Data(json.utf8), file: "r.json")
        var expected = AugmentationRecipe.tinyViT
        expected.horizontalFlipProbability = 0
        expected.cropScale = 0.5...1
        expected.erasing = nil
        var mix = MixRecipe()
        mix.mixupAlpha = 0.2
        expected.mix = mix
        XCTAssertEqual(recipe, expected)
    }

    /// One error per kind of mistake, naming the file and the key.
    func testBadFilesNameTheFileAndKey() {
        let cases: [(String, String)] = [
            (#"{"crop": {"scale": [0.5, 1]}, "flip": 0.5}"#, "key flip: unknown key"),
            (#"{"crop": {"scales": [0.5, 1]}}"#, "key crop.scales: unknown key"),
            (#"{"horizontal_flip": "no"}"#, "key horizontal_flip: expected a number"),
            (#"{"horizontal_flip": true}"#, "key horizontal_flip: expected a number"),
            (#"{"horizontal_flip": 1.5}"#, "key horizontal_flip: 1.5 is outside 0.0...1.0"),
            (#"{"crop": {"scale": [0.9, 0.2]}}"#, "key crop.scale: low 0.9 is above high 0.2"),
            (#"{"crop": {"scale": [0, 1]}}"#, "key crop.scale: low must be above 0"),
            (#"{"crop": {"ratio": [1]}}"#, "key crop.ratio: expected [low, high]"),
            (#"{"rand_augment": {"layers": 2.5}}"#, "key rand_augment.layers: expected an integer"),
            (#"{"rand_augment": {"ops": ["Rotate", "Blur"]}}"#, "key rand_augment.ops: Blur is not one of"),
            (#"{"rand_augment": {"ops": []}}"#, "key rand_augment.ops: expected a non-empty list"),
            (#"{"rand_augment": {"ops": ["Rotate", "Rotate"]}}"#, "key rand_augment.ops: an op is listed twice"),
            (#"{"erasing": {"attempts": 0}}"#, "key erasing.attempts:"),
            (#"{"mix": {"mixup_alpha": -1}}"#, "key mix.mixup_alpha:"),
            (#"{"mix": {"cutmix_alpha": 1e-9}}"#, "key mix.cutmix_alpha: a positive alpha"),
            (#"[1, 2]"#, "expected an object"),
            (#"{"crop": "#, "not valid JSON"),
            // The spec's JSON grammar, as for shard headers: one reading of one file.
            (#"{"horizontal_flip": 0, "horizontal_flip": 0.5}"#, "not valid JSON"),
            (#"{"horizontal_flip": 0, "horizontal_\u0066lip": 0.5}"#, "not valid JSON"),
            ("\u{FEFF}{}", "not valid JSON"),
            (#"{"crop": {"scale": [0.5, 1],}}"#, "not valid JSON"),
            (#"{"rand_augment": {"layers": 2.0}}"#, "key rand_augment.layers: expected an integer, got 2.0"),
            (#"{"erasing": {"attempts": 1e1}}"#, "key erasing.attempts: expected an integer, got 1e1"),
        ]
        for (json, fragment) in cases {
            XCTAssertThrowsError(try AugmentationRecipe(json: Data(json.utf8), file: "/tmp/r.json"), json) { error in
                let text = String(describing: error)
                XCTAssertTrue(text.hasPrefix("/tmp/r.json: [bad_recipe] "), text)
                XCTAssertTrue(text.contains(fragment), "\(fragment) not in \(text)")
                XCTAssertFalse(text.contains("\n"), text)
            }
        }
        let huge = NSTemporaryDirectory() + "huge-recipe-\(UInt32.random(in: 0...UInt32.max)).json"
        XCTAssertTrue(FileManager.default.createFile(atPath: huge, contents: Data(repeating: 0x20, count: NamedRecipe.maxFileBytes + 1)))
        defer { try? FileManager.default.removeItem(atPath: huge) }
        XCTAssertThrowsError(try NamedRecipe.load(huge)) { error in
            XCTAssertTrue(String(describing: error).contains("is not a recipe"), "\(error)")
        }
        XCTAssertThrowsError(try NamedRecipe.load("/nonexistent/recipe.json")) { error in
            XCTAssertTrue(String(describing: error).contains("not a preset (tinyvit, tinyvit-mix, digits)"), "\(error)")
        }
        let fifo = NSTemporaryDirectory() + "fifo-recipe-\(UInt32.random(in: 0...UInt32.max)).json"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        defer { try? FileManager.default.removeItem(atPath: fifo) }
        XCTAssertThrowsError(try NamedRecipe.load(fifo)) { error in  // refused at once, not read until EOF
            XCTAssertTrue(String(describing: error).contains("nor a readable recipe file"), "\(error)")
        }
    }

    /// Partners come from the pool only, and the pool form with the identity pool is the sampleCount form.
    func testMixPartnersAreDrawnFromThePool() throws {
        let sampler = try AugmentationSampler(runSeed: 3, recipe: .tinyViTWithMix, outputWidth: 32, outputHeight: 32)
        let pool: [UInt32] = [2, 5, 11, 17]
        let everyone = (0..<20).map(UInt32.init)
        var seen = Set<UInt32>()
        for sample in 0..<200 {
            let p = try sampler.parameters(epoch: 1, sample: UInt32(sample % 20), sourceWidth: 32, sourceHeight: 32, partners: pool) { _ in (32, 32) }
            if let mix = p.mix { seen.insert(mix.partner) }
            let a = try sampler.parameters(epoch: 2, sample: UInt32(sample), sourceWidth: 32, sourceHeight: 32, partners: everyone) { _ in (32, 32) }
            let b = try sampler.parameters(epoch: 2, sample: UInt32(sample), sourceWidth: 32, sourceHeight: 32, sampleCount: 20) { _ in (32, 32) }
            XCTAssertEqual(a, b)
        }
        XCTAssertEqual(seen, Set(pool))
    }
}
