import Foundation
import XCTest
import ShardFormat
@testable import Augment

/// Throughput of the sampler and of replay for TinyViT's recipe (224 output from a 500x375 source). The
/// numbers only mean something in a release build:
/// `swift build -c release --build-tests` then `swift test -c release --skip-build --filter SpeedTests`.
final class SpeedTests: XCTestCase {
    func testSamplerAndApplySpeed() throws {
        let source = syntheticImage(width: 500, height: 375, seed: 11)
        let sampler = try AugmentationSampler(runSeed: 1, recipe: .tinyViTWithMix, outputWidth: 224, outputHeight: 224)
        let augmenter = Augmenter(outputWidth: 224, outputHeight: 224)
        func draw(_ i: Int) throws -> AugmentationParameters {
            try sampler.parameters(epoch: 0, sample: UInt32(i), sourceWidth: 500, sourceHeight: 375, sampleCount: 1_000_000,
                                   sourceSize: { _ in (500, 375) })
        }
        // Seconds per measurement: short in debug builds, where the numbers mean nothing anyway.
        let budget = _isDebugAssertConfiguration() ? 0.1 : 1.0
        var start = Date()
        var count = 0
        while Date().timeIntervalSince(start) < budget / 4 {
            for _ in 0..<100 { _ = try draw(count); count += 1 }
        }
        let drawsPerSecond = Double(count) / Date().timeIntervalSince(start)

        // Single view (no mix): crop + flip + ops + erase.
        start = Date()
        count = 0
        while Date().timeIntervalSince(start) < budget {
            _ = try augmenter.render(try draw(count).view, source: source)
            count += 1
        }
        let viewsPerSecond = Double(count) / Date().timeIntervalSince(start)

        // Whole record with mix (two views rendered per image), uint8 and normalised float.
        start = Date()
        count = 0
        while Date().timeIntervalSince(start) < budget {
            _ = try augmenter.render(try draw(count), source: source, partner: source)
            count += 1
        }
        let mixedPerSecond = Double(count) / Date().timeIntervalSince(start)

        var floats = [Float](repeating: 0, count: 3 * 224 * 224)
        start = Date()
        count = 0
        while Date().timeIntervalSince(start) < budget {
            let p = try draw(count)
            try floats.withUnsafeMutableBufferPointer { try augmenter.renderNormalized(p, source: source, partner: source, into: $0) }
            count += 1
        }
        let normalizedPerSecond = Double(count) / Date().timeIntervalSince(start)
        print(String(format: "SPEED sampler %.0f draws/s; render view %.0f img/s; render with mix %.0f img/s; normalized float with mix %.0f img/s (one thread, 500x375 -> 224)",
                     drawsPerSecond, viewsPerSecond, mixedPerSecond, normalizedPerSecond))
        XCTAssertGreaterThan(viewsPerSecond, 1)
    }
}
