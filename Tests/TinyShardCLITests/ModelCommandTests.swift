import Foundation
import Tensor
import XCTest

/// `tinyshard model info` and `model forward` against timm's numbers (../shared/fixtures/timm_tinyvit).
final class ModelCommandTests: XCTestCase {
    private var timmFixtures: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/fixtures/timm_tinyvit").path
    }

    func testInfoPrintsTimmParameterCounts() throws {
        let folder = TemporaryFolder("cli-model")
        let result = try CLI.run(["model", "info"], in: folder)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("| 5m | 1000 | 224x224 | 5392764 |"), result.stdout)
        XCTAssertTrue(result.stdout.contains("10996972") && result.stdout.contains("21198568"), result.stdout)
    }

    func testForwardMatchesTimmLogits() throws {
        guard FileManager.default.fileExists(atPath: timmFixtures + "/tiny_vit_5m.safetensors") else {
            throw XCTSkip("timm fixtures absent at \(timmFixtures)")
        }
        let folder = TemporaryFolder("cli-model")
        let output = folder.file("logits.npy")
        let result = try CLI.run(["model", "forward", "--arch", "5m", "--weights", timmFixtures + "/tiny_vit_5m.safetensors",
                                  "--input", timmFixtures + "/input.npy", "--output", output], in: folder)
        XCTAssertEqual(result.status, 0, result.stderr)
        let ours = try NPY.read(URL(fileURLWithPath: output))
        let timm = try NPY.read(URL(fileURLWithPath: timmFixtures + "/logits.npy"))
        XCTAssertEqual(ours.shape, timm.shape)
        var worst: Float = 0
        for i in 0..<timm.count { worst = max(worst, abs(ours[flat: i] - timm[flat: i])) }
        XCTAssertLessThanOrEqual(worst, 1e-4)
    }

    func testBadArchAndMismatchedWeightsExitTwoWithOneLine() throws {
        let folder = TemporaryFolder("cli-model")
        let badArch = try CLI.run(["model", "forward", "--arch", "7m", "--weights", "w", "--input", "x", "--output", "y"], in: folder)
        XCTAssertEqual(badArch.status, 2)
        XCTAssertEqual(badArch.stderrLines.count, 1, badArch.stderr)
        XCTAssertTrue(badArch.stderr.contains("7m"), badArch.stderr)
        guard FileManager.default.fileExists(atPath: timmFixtures + "/small_weights.safetensors") else { return }
        let mismatch = try CLI.run(["model", "forward", "--arch", "5m", "--weights", timmFixtures + "/small_weights.safetensors",
                                    "--input", timmFixtures + "/input.npy", "--output", folder.file("y.npy")], in: folder)
        XCTAssertEqual(mismatch.status, 2)
        XCTAssertEqual(mismatch.stderrLines.count, 1, mismatch.stderr)
        XCTAssertTrue(mismatch.stderr.contains("patch_embed.conv1.conv.weight"), mismatch.stderr)
    }
}
