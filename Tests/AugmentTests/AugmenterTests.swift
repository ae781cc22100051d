import XCTest
import ShardFormat
@testable import Augment

/// The replay pipeline: crop, flip, ops, erase and mix composed as timm does, in uint8 and in the
/// normalised float domain.
final class AugmenterTests: XCTestCase {
    let source = syntheticImage(width: 120, height: 90, seed: 3)
    let partnerSource = syntheticImage(width: 64, height: 64, seed: 4)
    let augmenter = Augmenter(outputWidth: 48, outputHeight: 40)

    func fullView(_ image: RGBImage) -> AugmentationView {
        AugmentationView(sourceWidth: UInt16(image.width), sourceHeight: UInt16(image.height),
                         crop: PixelBox(x: 0, y: 0, width: UInt16(image.width), height: UInt16(image.height)))
    }

    func testIdentityCropAndFlip() throws {
        let same = Augmenter(outputWidth: 120, outputHeight: 90)
        var view = fullView(source)
        XCTAssertEqual(try same.render(view, source: source), source)
        view.horizontalFlip = true
        XCTAssertEqual(try same.render(view, source: source), source.flippedHorizontally())
        XCTAssertEqual(source.flippedHorizontally().flippedHorizontally(), source)
    }

    func testOpsApplyInOrderAfterCropAndFlip() throws {
        var view = fullView(source)
        view.horizontalFlip = true
        view.operations = [RandAugmentOperation(op: .rotate, magnitudeHundredths: 500),
                           RandAugmentOperation(op: .solarizeIncreasing, magnitudeHundredths: 300)]
        let expected = try ResizedCrop.apply(source, box: view.crop, outputWidth: 48, outputHeight: 40).flippedHorizontally()
        let rotated = ImageOperation.rotate(degrees: 15).apply(to: expected)
        XCTAssertEqual(try augmenter.render(view, source: source), ImageOperation.solarize(threshold: 256 - 76).apply(to: rotated))
    }

    func testEraseNoiseIsDeterministicAndStandardNormal() throws {
        var view = fullView(source)
        view.erase = RandomErase(box: PixelBox(x: 4, y: 5, width: 20, height: 10), noiseSeed: 77)
        let plain = try augmenter.render(fullView(source), source: source)
        let erased = try augmenter.render(view, source: source)
        XCTAssertEqual(erased, try augmenter.render(view, source: source))
        var changedOutside = 0
        for y in 0..<40 {
            for x in 0..<48 where !(4..<24).contains(x) || !(5..<15).contains(y) {
                if erased[x, y] != plain[x, y] { changedOutside += 1 }
            }
        }
        XCTAssertEqual(changedOutside, 0)
        let values = (0..<100_000).map { Double(ErasingNoise.normalizedValue(seed: 5, index: $0)) }
        let mean = values.reduce(0, +) / 100_000
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 100_000
        XCTAssertEqual(mean, 0, accuracy: 0.01)
        XCTAssertEqual(variance, 1, accuracy: 0.02)
        XCTAssertNotEqual(ErasingNoise.normalizedValue(seed: 5, index: 0), ErasingNoise.normalizedValue(seed: 6, index: 0))
    }

    /// The float output is the uint8 geometry normalised, with the erase box holding the exact noise.
    func testNormalizedOutputMatchesUInt8Pipeline() throws {
        var view = fullView(source)
        view.operations = [RandAugmentOperation(op: .shearX, magnitudeHundredths: 700, negate: true)]
        view.erase = RandomErase(box: PixelBox(x: 10, y: 10, width: 8, height: 6), noiseSeed: 1234)
        var floats = [Float](repeating: 0, count: 3 * 48 * 40)
        try floats.withUnsafeMutableBufferPointer { try augmenter.renderNormalized(view, source: source, into: $0) }
        let bytes = try augmenter.render(view, source: source)
        for c in 0..<3 {
            for y in 0..<40 {
                for x in 0..<48 {
                    let f = floats[(c * 40 + y) * 48 + x]
                    let pixel = Float(bytes.pixels[(y * 48 + x) * 3 + c])
                    let inBox = (10..<18).contains(x) && (10..<16).contains(y)
                    if inBox {
                        let z = ErasingNoise.normalizedValue(seed: 1234, index: (c * 6 + y - 10) * 8 + x - 10)
                        XCTAssertEqual(f, z)
                        let expected = min(255, max(0, ((z * ErasingNoise.std[c] + ErasingNoise.mean[c]) * 255).rounded()))
                        XCTAssertEqual(pixel, expected)
                    } else {
                        XCTAssertEqual(f, (pixel / 255 - ErasingNoise.mean[c]) / ErasingNoise.std[c], accuracy: 1e-5)
                    }
                }
            }
        }
    }

    func testMixupAndCutmix() throws {
        let view = fullView(source)
        let partnerView = fullView(partnerSource)
        let a = try augmenter.render(view, source: source)
        let b = try augmenter.render(partnerView, source: partnerSource)
        let one = AugmentationParameters(view: view, mix: Mix(mode: .mixup, lambdaCode: 65535, partner: 1, partnerView: partnerView))
        XCTAssertEqual(try augmenter.render(one, source: source, partner: partnerSource), a)
        let zero = AugmentationParameters(view: view, mix: Mix(mode: .mixup, lambdaCode: 0, partner: 1, partnerView: partnerView))
        XCTAssertEqual(try augmenter.render(zero, source: source, partner: partnerSource), b)
        let half = AugmentationParameters(view: view, mix: Mix(mode: .mixup, lambdaCode: 32768, partner: 1, partnerView: partnerView))
        let mixed = try augmenter.render(half, source: source, partner: partnerSource)
        for i in stride(from: 0, to: mixed.pixels.count, by: 97) {
            XCTAssertEqual(Double(mixed.pixels[i]), (Double(a.pixels[i]) + Double(b.pixels[i])) / 2, accuracy: 1)
        }
        let box = PixelBox(x: 5, y: 6, width: 10, height: 7)
        let cut = AugmentationParameters(view: view, mix: Mix(mode: .cutmix, lambdaCode: 60000, partner: 1, box: box, partnerView: partnerView))
        let pasted = try augmenter.render(cut, source: source, partner: partnerSource)
        for y in 0..<40 {
            for x in 0..<48 {
                let inside = (5..<15).contains(x) && (6..<13).contains(y)
                XCTAssertTrue(pasted[x, y] == (inside ? b[x, y] : a[x, y]))
            }
        }
        var floats = [Float](repeating: 0, count: 3 * 48 * 40)
        try floats.withUnsafeMutableBufferPointer { try augmenter.renderNormalized(cut, source: source, partner: partnerSource, into: $0) }
        var partnerFloats = [Float](repeating: 0, count: 3 * 48 * 40)
        try partnerFloats.withUnsafeMutableBufferPointer { try augmenter.renderNormalized(partnerView, source: partnerSource, into: $0) }
        XCTAssertEqual(floats[(1 * 40 + 6) * 48 + 5], partnerFloats[(1 * 40 + 6) * 48 + 5])
    }

    func testMismatchesAreErrors() throws {
        var view = fullView(source)
        XCTAssertThrowsError(try augmenter.render(view, source: partnerSource)) { error in
            XCTAssertTrue("\(error)".contains("120x90"), "\(error)")
        }
        view.crop = PixelBox(x: 100, y: 0, width: 30, height: 10)
        XCTAssertThrowsError(try augmenter.render(view, source: source))
        let mixed = AugmentationParameters(view: fullView(source), mix: Mix(mode: .mixup, lambdaCode: 1, partner: 9, partnerView: fullView(partnerSource)))
        XCTAssertThrowsError(try augmenter.render(mixed, source: source, partner: nil)) { error in
            XCTAssertTrue("\(error)".contains("sample 9"), "\(error)")
        }
        XCTAssertThrowsError(try RGBImage(width: 2, height: 2, pixels: [1, 2, 3]))
    }

    /// Downscaling is antialiased: a one-pixel checkerboard shrunk 4x comes out flat grey, not aliased.
    func testDownscaleIsAntialiased() throws {
        var pixels = [UInt8](repeating: 0, count: 64 * 64 * 3)
        for y in 0..<64 { for x in 0..<64 where (x + y) % 2 == 0 { for c in 0..<3 { pixels[(y * 64 + x) * 3 + c] = 255 } } }
        let board = try RGBImage(width: 64, height: 64, pixels: pixels)
        for interpolation in [ResizeInterpolation.bicubic, .bilinear] {
            let small = try ResizedCrop.apply(board, box: PixelBox(x: 0, y: 0, width: 64, height: 64), outputWidth: 16, outputHeight: 16,
                                              interpolation: interpolation)
            XCTAssertTrue(small.pixels.allSatisfy { abs(Int($0) - 128) <= 2 }, "\(interpolation): \(small.pixels.prefix(12))")
        }
    }
}
