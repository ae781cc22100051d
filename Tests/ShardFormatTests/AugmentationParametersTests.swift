import Foundation
import XCTest
@testable import ShardFormat

/// The `params` augmentation code (Spec section 4): byte layout, round trips, canonical encoding, and
/// rejection of every rule with `bad-augmentation`.
final class AugmentationParametersTests: XCTestCase {
    let height = 224
    let width = 224

    /// A code using every field: flip, erase, two ops, cutmix with a partner view.
    var fullParameters: AugmentationParameters {
        AugmentationParameters(
            view: AugmentationView(
                sourceWidth: 500, sourceHeight: 375, crop: PixelBox(x: 10, y: 20, width: 300, height: 200), horizontalFlip: true,
                operations: [RandAugmentOperation(op: .rotate, magnitudeHundredths: 550, negate: true),
                             RandAugmentOperation(op: .shearX, magnitudeHundredths: 1000)],
                erase: RandomErase(box: PixelBox(x: 1, y: 2, width: 3, height: 4), noiseSeed: 0xDEAD_BEEF)),
            mix: Mix(mode: .cutmix, lambdaCode: 0x4000, partner: 77, box: PixelBox(x: 5, y: 6, width: 7, height: 8),
                     partnerView: AugmentationView(sourceWidth: 64, sourceHeight: 48, crop: PixelBox(x: 0, y: 0, width: 64, height: 48))))
    }

    var fullCode: [UInt8] { try! fullParameters.encoded(outputHeight: height, outputWidth: width) }

    /// The same view without a mix: bytes 32–79 are zero.
    var plainCode: [UInt8] {
        var p = fullParameters
        p.mix = nil
        return try! p.encoded(outputHeight: height, outputWidth: width)
    }

    var mixupCode: [UInt8] {
        var p = fullParameters
        p.mix!.mode = .mixup
        p.mix!.box = nil
        return try! p.encoded(outputHeight: height, outputWidth: width)
    }

    func decode(_ code: [UInt8]) throws -> AugmentationParameters {
        try code.withUnsafeBytes { try AugmentationParameters(code: $0, outputHeight: height, outputWidth: width) }
    }

    func testEncodingFollowsTheSpecTable() {
        let expected = bytes(hex:
            "f4017701" + "0a0014002c01c800" + "0b00" + "a3890bfa0000" + "0100020003000400" + "efbeadde"   // view, bytes 0–31
            + "0200" + "0040" + "4d000000" + "0500060007000800"                                          // mix, bytes 32–47
            + "40003000" + "0000000040003000" + "0000" + "000000000000" + "0000000000000000" + "00000000")  // partner view
        XCTAssertEqual(fullCode, expected)
        XCTAssertEqual(fullCode.count, AugmentationParameters.encodedSize)
        XCTAssertEqual(plainCode[0..<32], expected[0..<32])
        XCTAssertTrue(plainCode[32...].allSatisfy { $0 == 0 })
        XCTAssertEqual(mixupCode[32], 1)
        XCTAssertTrue(mixupCode[40..<48].allSatisfy { $0 == 0 })
        XCTAssertEqual(try decode(expected), fullParameters)
        XCTAssertEqual(fullParameters.mix?.lambda, Double(0x4000) / 65535)
        XCTAssertEqual(fullParameters.view.operations[0].magnitude, 5.5)
    }

    func testRandomParametersRoundTrip() throws {
        var rng = SplitMix64(seed: 2024)
        for trial in 0..<600 {
            let h = [1, 224, 65535, Int.random(in: 1...1024, using: &rng)].randomElement(using: &rng)!
            let w = [1, 224, 65535, Int.random(in: 1...1024, using: &rng)].randomElement(using: &rng)!
            let parameters = randomParameters(outputHeight: h, outputWidth: w, using: &rng)
            let code = try parameters.encoded(outputHeight: h, outputWidth: w)
            XCTAssertEqual(code.count, 80)
            let decoded = try code.withUnsafeBytes { try AugmentationParameters(code: $0, outputHeight: h, outputWidth: w) }
            XCTAssertEqual(decoded, parameters, "trial \(trial)")
            XCTAssertEqual(try decoded.encoded(outputHeight: h, outputWidth: w), code, "trial \(trial)")
        }
    }

    /// Any code the decoder accepts must re-encode to the same 80 bytes (Spec 4: the encoding is
    /// canonical). Valid codes with random bits flipped are mostly invalid; the valid ones must obey.
    func testEveryAcceptedCodeReencodesIdentically() throws {
        var rng = SplitMix64(seed: 77)
        var accepted = 0
        for _ in 0..<4000 {
            let parameters = randomParameters(outputHeight: height, outputWidth: width, using: &rng)
            var code = try parameters.encoded(outputHeight: height, outputWidth: width)
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                code[Int.random(in: 0..<80, using: &rng)] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng)
            }
            do {
                let decoded = try decode(code)
                accepted += 1
                XCTAssertEqual(try decoded.encoded(outputHeight: height, outputWidth: width), code, "accepted \(code.hex)")
            } catch let error as ShardError {
                XCTAssertEqual(error.code, .badAugmentation, error.description)
            }
        }
        XCTAssertGreaterThan(accepted, 100, "the fuzz should also produce valid codes")
    }

    func testBoundaryValuesAreAccepted() throws {
        var p = fullParameters
        p.view.crop = PixelBox(x: 0, y: 0, width: 500, height: 375)               // crop = whole source
        p.view.operations = [RandAugmentOperation(op: .translateYRel, magnitudeHundredths: 1000, negate: true),
                             RandAugmentOperation(op: .autoContrast, magnitudeHundredths: 0),
                             RandAugmentOperation(op: .solarizeAdd, magnitudeHundredths: 1)]
        p.view.erase = RandomErase(box: PixelBox(x: 223, y: 0, width: 1, height: 224), noiseSeed: 0)  // touches the edge; seed 0
        p.mix!.box = PixelBox(x: 0, y: 0, width: 224, height: 224)
        p.mix!.lambdaCode = 65535
        p.mix!.partner = UInt32.max
        let code = try p.encoded(outputHeight: height, outputWidth: width)
        XCTAssertEqual(try decode(code), p)
        p.mix!.lambdaCode = 0
        XCTAssertEqual(try decode(try p.encoded(outputHeight: height, outputWidth: width)), p)
        p.view = AugmentationView(sourceWidth: 65535, sourceHeight: 65535, crop: PixelBox(x: 65534, y: 65534, width: 1, height: 1))
        XCTAssertEqual(try decode(try p.encoded(outputHeight: height, outputWidth: width)), p)
    }

    func assertRejected(_ base: [UInt8], _ what: String, file: StaticString = #filePath, line: UInt = #line,
                        _ mutate: (inout [UInt8]) -> Void) {
        var code = base
        mutate(&code)
        XCTAssertNotEqual(code, base, "\(what): the mutation changed nothing", file: file, line: line)
        assertShardError(.badAugmentation, try decode(code), what, file: file, line: line)
    }

    func testEveryRuleIsEnforcedWithBadAugmentation() {
        XCTAssertNoThrow(try decode(fullCode))
        XCTAssertNoThrow(try decode(plainCode))
        XCTAssertNoThrow(try decode(mixupCode))
        for view in [0, 48] {  // the primary view and the partner view follow the same rules
            let name = view == 0 ? "view" : "partner view"
            for bit in 4...7 { assertRejected(fullCode, "\(name): flag bit \(bit)") { $0[view + 12] |= 1 << UInt8(bit) } }
            assertRejected(fullCode, "\(name): reserved byte 13") { $0[view + 13] = 1 }
            assertRejected(fullCode, "\(name): source width 0") { $0.put16(0, at: view + 0) }
            assertRejected(fullCode, "\(name): source height 0") { $0.put16(0, at: view + 2) }
            assertRejected(fullCode, "\(name): crop x + w past the source") { $0.put16($0.u16(at: view + 0) - $0.u16(at: view + 8) + 1, at: view + 4) }
            assertRejected(fullCode, "\(name): crop y + h past the source") { $0.put16($0.u16(at: view + 2) - $0.u16(at: view + 10) + 1, at: view + 6) }
            assertRejected(fullCode, "\(name): crop wider than the source") { $0.put16($0.u16(at: view + 0) + 1, at: view + 8) }
            assertRejected(fullCode, "\(name): crop width 0") { $0.put16(0, at: view + 8) }
            assertRejected(fullCode, "\(name): crop height 0") { $0.put16(0, at: view + 10) }
            assertRejected(fullCode, "\(name): erase box past the output") { $0.put16(222, at: view + 20) }
        }
        // Ops (primary view holds 2 ops: slots 0 and 1 used, slot 2 empty).
        assertRejected(fullCode, "op id 15") { $0.put16($0.u16(at: 14) & ~31 | 15, at: 14) }
        assertRejected(fullCode, "op id 31 in slot 1") { $0.put16($0.u16(at: 16) | 31, at: 16) }
        assertRejected(fullCode, "magnitude 1001") { $0.put16($0.u16(at: 14) & 63 | 1001 << 6, at: 14) }
        assertRejected(fullCode, "magnitude 1023") { $0.put16($0.u16(at: 16) & 63 | 1023 << 6, at: 16) }
        assertRejected(fullCode, "slot 2 past the op count is not zero") { $0[18] = 1 }
        assertRejected(fullCode, "slot 2 high byte past the op count") { $0[19] = 0x80 }
        assertRejected(fullCode, "op count lowered to 1: slot 1 is past it") { $0[12] = $0[12] & ~0x0C | 1 << 2 }
        assertRejected(fullCode, "op count 0 with ops stored") { $0[12] &= ~0x0C }
        // Erase.
        assertRejected(fullCode, "erase box and seed with no erase flag") { $0[12] &= ~2 }
        assertRejected(fullCode, "erase seed alone with no erase flag") { $0[12] &= ~2; for i in 20..<28 { $0[i] = 0 } }
        assertRejected(fullCode, "erase box alone with no erase flag") { $0[12] &= ~2; for i in 28..<32 { $0[i] = 0 } }
        assertRejected(fullCode, "erase flag with an empty box") { for i in 20..<28 { $0[i] = 0 } }
        assertRejected(fullCode, "erase box width 0") { $0.put16(0, at: 24) }
        assertRejected(fullCode, "erase box height 0") { $0.put16(0, at: 26) }
        assertRejected(fullCode, "erase box below the output") { $0.put16(221, at: 22) }
        // Mix.
        assertRejected(fullCode, "mix mode 3") { $0[32] = 3 }
        assertRejected(fullCode, "mix mode 255") { $0[32] = 255 }
        assertRejected(fullCode, "reserved byte 33") { $0[33] = 1 }
        assertRejected(plainCode, "reserved byte 33 with mode 0") { $0[33] = 1 }
        assertRejected(fullCode, "mixup with a box") { $0[32] = 1 }
        assertRejected(mixupCode, "mixup with a box (x only)") { $0[40] = 1 }
        assertRejected(fullCode, "cutmix without a box") { for i in 40..<48 { $0[i] = 0 } }
        assertRejected(fullCode, "cutmix box width 0") { $0.put16(0, at: 44) }
        assertRejected(fullCode, "cutmix box past the output") { $0.put16(218, at: 40) }
        assertRejected(fullCode, "cutmix box taller than the output") { $0.put16(225, at: 46) }
        for i in 34..<80 { assertRejected(plainCode, "byte \(i) non-zero with mix mode 0") { $0[i] = 1 } }
        assertRejected(mixupCode, "mixup with an invalid partner view (empty)") { for i in 48..<80 { $0[i] = 0 } }
        // Length.
        for count in [0, 79, 81] {
            assertShardError(.badAugmentation, try [UInt8](repeating: 0, count: count).withUnsafeBytes {
                try AugmentationParameters(code: $0, outputHeight: height, outputWidth: width)
            }, "length \(count)")
        }
        // The output size bounds the boxes: the same code is invalid for a smaller output.
        assertShardError(.badAugmentation, try fullCode.withUnsafeBytes { try AugmentationParameters(code: $0, outputHeight: 5, outputWidth: 224) })
    }

    func testEncodingInvalidParametersThrows() {
        func assertEncodingFails(_ what: String, _ change: (inout AugmentationParameters) -> Void) {
            var p = fullParameters
            change(&p)
            assertShardError(.badAugmentation, try p.encoded(outputHeight: height, outputWidth: width), what)
        }
        assertEncodingFails("four ops") { $0.view.operations += $0.view.operations }
        assertEncodingFails("magnitude 1001") { $0.view.operations[0].magnitudeHundredths = 1001 }
        assertEncodingFails("mixup with a box") { $0.mix!.mode = .mixup }
        assertEncodingFails("cutmix without a box") { $0.mix!.box = nil }
        assertEncodingFails("cutmix box of zero width") { $0.mix!.box!.width = 0 }
        assertEncodingFails("crop outside the source") { $0.view.crop.x = 201 }
        assertEncodingFails("erase box outside the output") { $0.view.erase!.box.y = 221 }
        assertEncodingFails("empty erase box") { $0.view.erase!.box = PixelBox(x: 0, y: 0, width: 0, height: 0) }
        assertEncodingFails("zero-size source") { $0.view.sourceWidth = 0; $0.view.crop = PixelBox(x: 0, y: 0, width: 0, height: 1) }
        assertEncodingFails("partner crop outside its source") { $0.mix!.partnerView.crop.width = 65 }
    }
}
