import XCTest
import ShardFormat
@testable import Augment

/// The sampler's draws follow TinyViT's recipe: rates and ranges of every decision over many samples, and
/// every draw is valid and survives the 80-byte code unchanged.
final class SamplerDistributionTests: XCTestCase {
    let draws = 20_000

    func testViewRatesAndRanges() throws {
        let s = try AugmentationSampler(runSeed: 7, recipe: .tinyViT, outputWidth: 224, outputHeight: 224)
        var flips = 0, erases = 0, opsTotal = 0, negatedSigned = 0, signedOps = 0, fallbacks = 0
        var opCounts = [Int](repeating: 0, count: 15)
        var magnitudes: [Double] = []
        var scales: [Double] = []
        for sample in 0..<draws {
            let view = try s.view(epoch: 0, sample: UInt32(sample), sourceWidth: 500, sourceHeight: 375)
            if view.horizontalFlip { flips += 1 }
            let area = Double(view.crop.width) * Double(view.crop.height) / (500 * 375)
            let ratio = Double(view.crop.width) / Double(view.crop.height)
            scales.append(area)
            if view.crop == PixelBox(x: 0, y: 0, width: 500, height: 375) { fallbacks += 1 }
            // Rounding w and h to whole pixels moves scale and ratio by at most ~1% at the smallest boxes.
            XCTAssertGreaterThanOrEqual(area, 0.08 * 0.98)
            XCTAssertLessThanOrEqual(area, 1.0)
            XCTAssertGreaterThanOrEqual(ratio, 0.75 * 0.98)
            XCTAssertLessThanOrEqual(ratio, 4.0 / 3 * 1.02)
            opsTotal += view.operations.count
            XCTAssertLessThanOrEqual(view.operations.count, 2)
            for operation in view.operations {
                opCounts[Int(operation.op.rawValue)] += 1
                magnitudes.append(operation.magnitude)
                if operation.op.isSigned {
                    signedOps += 1
                    if operation.negate { negatedSigned += 1 }
                } else {
                    XCTAssertFalse(operation.negate, "unsigned op \(operation.op) drew a sign")
                }
            }
            if let erase = view.erase {
                erases += 1
                let fraction = Double(erase.box.width) * Double(erase.box.height) / (224 * 224)
                XCTAssertGreaterThanOrEqual(fraction, 0.02 * 0.9)
                XCTAssertLessThanOrEqual(fraction, 1.0 / 3 * 1.05)
                let aspect = Double(erase.box.height) / Double(erase.box.width)
                XCTAssertGreaterThanOrEqual(aspect, 0.3 * 0.9)
                XCTAssertLessThanOrEqual(aspect, 1 / 0.3 * 1.1)
            }
        }
        let n = Double(draws)
        print("sampler rates over \(draws): flip \(Double(flips) / n), erase \(Double(erases) / n), ops/sample \(Double(opsTotal) / n), mean scale \(scales.reduce(0, +) / n), fallback \(fallbacks)")
        // 4-sigma bands for binomial rates at n = 20,000.
        XCTAssertEqual(Double(flips) / n, 0.5, accuracy: 0.015)
        XCTAssertEqual(Double(erases) / n, 0.25, accuracy: 0.013)
        XCTAssertEqual(Double(opsTotal) / n, 1.0, accuracy: 0.03)  // 2 layers × p 0.5
        XCTAssertEqual(Double(negatedSigned) / Double(signedOps), 0.5, accuracy: 0.02)
        for (op, count) in opCounts.enumerated() {
            XCTAssertEqual(Double(count) / Double(opsTotal), 1.0 / 15, accuracy: 0.012, "op \(op) chosen \(count) times")
        }
        let meanMagnitude = magnitudes.reduce(0, +) / Double(magnitudes.count)
        XCTAssertEqual(meanMagnitude, 9.0, accuracy: 0.02)
        XCTAssertTrue(magnitudes.allSatisfy { $0 >= 0 && $0 <= 10 })
        XCTAssertGreaterThan(magnitudes.filter { $0 == 10 }.count, 0, "gauss(9, 0.5) is clipped at 10 about 2% of the time")
        // Area fraction: uniform on [0.08, 1] conditioned on the box fitting a 4:3 source; a numpy
        // simulation of torchvision's loop gives a mean of 0.433.
        XCTAssertEqual(scales.reduce(0, +) / n, 0.433, accuracy: 0.01)
        XCTAssertLessThan(fallbacks, 20)
    }

    func testMixRatesAndLambda() throws {
        let s = try AugmentationSampler(runSeed: 9, recipe: .tinyViTWithMix, outputWidth: 224, outputHeight: 224)
        var mixups: [Double] = [], cutmixes = 0, unmixed = 0
        for sample in 0..<draws {
            let p = try s.parameters(epoch: 0, sample: UInt32(sample), sourceWidth: 64, sourceHeight: 48, sampleCount: 5000,
                                     sourceSize: { _ in (64, 48) })
            guard let mix = p.mix else { unmixed += 1; continue }
            switch mix.mode {
            case .mixup:
                XCTAssertNil(mix.box)
                mixups.append(mix.lambda)
            case .cutmix:
                cutmixes += 1
                let box = try XCTUnwrap(mix.box)
                let expected = 1 - Double(box.width) * Double(box.height) / (224 * 224)
                XCTAssertEqual(mix.lambda, expected, accuracy: 0.5 / 65535 + 1e-12, "λ is corrected to the box area")
            }
        }
        let n = Double(draws)
        XCTAssertEqual(Double(mixups.count) / n, 0.5, accuracy: 0.015)
        XCTAssertLessThan(unmixed, draws / 50, "only empty cutmix boxes leave a sample unmixed")
        // Beta(0.8, 0.8): mean 0.5, variance 0.64 / (2.56 · 2.6) ≈ 0.0962.
        let mean = mixups.reduce(0, +) / Double(mixups.count)
        let variance = mixups.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(mixups.count)
        XCTAssertEqual(mean, 0.5, accuracy: 0.012)
        XCTAssertEqual(variance, 0.0962, accuracy: 0.005)
        print("mix over \(draws): mixup \(mixups.count), cutmix \(cutmixes), unmixed \(unmixed), mixup λ mean \(mean) var \(variance)")
    }

    /// Every draw — odd source shapes, tiny outputs, mixing — passes `validate` and round-trips through
    /// the 80-byte code.
    func testEveryDrawIsOnTheGrid() throws {
        let outputs = [(224, 224), (32, 32), (8, 8), (1, 1), (160, 96)]
        let sources = [(500, 375), (8, 8), (1, 1), (1000, 10), (10, 1000), (65535, 3), (224, 224)]
        var checked = 0
        for (ow, oh) in outputs {
            let s = try AugmentationSampler(runSeed: UInt64(ow * 1000 + oh), recipe: .tinyViTWithMix, outputWidth: ow, outputHeight: oh)
            for sample in 0..<400 {
                let (sw, sh) = sources[sample % sources.count]
                let p = try s.parameters(epoch: UInt32(sample % 3), sample: UInt32(sample), sourceWidth: sw, sourceHeight: sh,
                                         sampleCount: sources.count, sourceSize: { sources[Int($0) % sources.count] })
                try p.validate(outputHeight: oh, outputWidth: ow)
                let code = try p.encoded(outputHeight: oh, outputWidth: ow)
                XCTAssertEqual(code.count, 80)
                let decoded = try code.withUnsafeBytes { try AugmentationParameters(code: $0, outputHeight: oh, outputWidth: ow) }
                XCTAssertEqual(decoded, p)
                checked += 1
            }
        }
        XCTAssertEqual(checked, 2000)
    }

    /// torchvision's fallback: after 10 failed attempts, the largest central box within the ratio range.
    func testCenterCropFallback() {
        XCTAssertEqual(CropSampling.centerCrop(width: 1000, height: 10, ratio: 0.75...(4.0 / 3)),
                       PixelBox(x: 493, y: 0, width: 13, height: 10))
        XCTAssertEqual(CropSampling.centerCrop(width: 10, height: 1000, ratio: 0.75...(4.0 / 3)),
                       PixelBox(x: 0, y: 493, width: 10, height: 13))
        XCTAssertEqual(CropSampling.centerCrop(width: 500, height: 375, ratio: 0.75...(4.0 / 3)),
                       PixelBox(x: 0, y: 0, width: 500, height: 375))
    }

    func testBetaAndGaussMoments() {
        var random = SampleRandom(key: 123)
        let gauss = (0..<50_000).map { _ in random.gauss(mean: 9, std: 0.5) }
        let gm = gauss.reduce(0, +) / 50_000
        let gv = gauss.map { ($0 - gm) * ($0 - gm) }.reduce(0, +) / 50_000
        XCTAssertEqual(gm, 9, accuracy: 0.01)
        XCTAssertEqual(gv, 0.25, accuracy: 0.01)
        let uniform = (0..<50_000).map { _ in random.beta(1, 1) }
        XCTAssertEqual(uniform.reduce(0, +) / 50_000, 0.5, accuracy: 0.01)
        XCTAssertEqual(uniform.filter { $0 < 0.25 }.count, 12_500, accuracy: 500)
        let ints = (0..<60_000).map { _ in random.integer(0, 5) }
        for v in 0...5 { XCTAssertEqual(ints.filter { $0 == v }.count, 10_000, accuracy: 400) }
    }
}
