import XCTest
import ShardFormat
@testable import Augment

/// timm's level-to-argument functions (increasing variants, `_LEVEL_DENOM = 10`) at grid magnitudes.
final class LevelMappingTests: XCTestCase {
    func op(_ op: RandAugmentOp, _ hundredths: UInt16, negate: Bool = false) -> ImageOperation {
        RandAugmentOperation(op: op, magnitudeHundredths: hundredths, negate: negate).imageOperation
    }

    func testArguments() {
        XCTAssertEqual(op(.rotate, 900), .rotate(degrees: 27))
        XCTAssertEqual(op(.rotate, 900, negate: true), .rotate(degrees: -27))
        XCTAssertEqual(op(.posterizeIncreasing, 0), .posterize(bits: 4))
        XCTAssertEqual(op(.posterizeIncreasing, 900), .posterize(bits: 1))   // 4 − int(3.6)
        XCTAssertEqual(op(.posterizeIncreasing, 1000), .posterize(bits: 0))
        XCTAssertEqual(op(.solarizeIncreasing, 900), .solarize(threshold: 26))  // 256 − int(230.4)
        XCTAssertEqual(op(.solarizeIncreasing, 0), .solarize(threshold: 256))   // no-op
        XCTAssertEqual(op(.solarizeAdd, 900), .solarizeAdd(add: 99, threshold: 128))
        XCTAssertEqual(op(.solarizeAdd, 1000), .solarizeAdd(add: 110, threshold: 128))
        XCTAssertEqual(op(.shearX, 1000), .shearX(factor: 0.3))
        XCTAssertEqual(op(.shearY, 500, negate: true), .shearY(factor: -0.15))
        XCTAssertEqual(op(.translateXRel, 1000), .translateXRelative(fraction: 0.45))
        XCTAssertEqual(op(.translateYRel, 1000, negate: true), .translateYRelative(fraction: -0.45))
        XCTAssertEqual(op(.autoContrast, 900, negate: true), .autoContrast)
    }

    func testEnhanceFactorsStayAtOrAboveOneTenth() {
        guard case .color(let up) = op(.colorIncreasing, 900) else { return XCTFail() }
        XCTAssertEqual(up, 1.81, accuracy: 1e-12)
        guard case .contrast(let down) = op(.contrastIncreasing, 900, negate: true) else { return XCTFail() }
        XCTAssertEqual(down, 0.19, accuracy: 1e-12)
        guard case .sharpness(let floor) = op(.sharpnessIncreasing, 1000, negate: true) else { return XCTFail() }
        XCTAssertEqual(floor, 0.1)  // max(0.1, 1 − 0.9)
        guard case .brightness(let zero) = op(.brightnessIncreasing, 0) else { return XCTFail() }
        XCTAssertEqual(zero, 1.0)
    }

    func testPointOpsEdgeCases() throws {
        let image = syntheticImage(width: 16, height: 9)
        XCTAssertEqual(ImageOperation.posterize(bits: 8).apply(to: image), image)
        XCTAssertTrue(ImageOperation.posterize(bits: 0).apply(to: image).pixels.allSatisfy { $0 == 0 })
        XCTAssertEqual(ImageOperation.solarize(threshold: 256).apply(to: image), image)
        XCTAssertEqual(ImageOperation.invert.apply(to: ImageOperation.invert.apply(to: image)), image)
        XCTAssertEqual(ImageOperation.rotate(degrees: 0).apply(to: image), image)
        XCTAssertEqual(ImageOperation.brightness(factor: 1).apply(to: image), image)
        let flat = try RGBImage(width: 5, height: 5, fill: (9, 9, 9))
        XCTAssertEqual(ImageOperation.autoContrast.apply(to: flat), flat)
        XCTAssertEqual(ImageOperation.equalize.apply(to: flat), flat)
    }
}
