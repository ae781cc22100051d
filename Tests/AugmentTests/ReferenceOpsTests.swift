import Foundation
import XCTest
import ShardFormat
@testable import Augment

/// Every op of ../shared/fixtures/augment against timm/PIL and torchvision outputs: mean absolute error
/// at most 2 grey levels; the measured MAE of each is printed (`MAE name = x.xx`).
final class ReferenceOpsTests: XCTestCase {
    func testEveryReferenceOp() throws {
        guard let folder = Fixtures.augmentFolder else {
            throw XCTSkip("reference fixtures not found at \(Fixtures.root.path)/augment; skipping the MAE checks")
        }
        let images = try SafeTensorImages(path: folder.appendingPathComponent("aug_reference.safetensors").path).images
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("aug_reference.json")))
        let ops = try XCTUnwrap((json as? [String: Any])?["ops"] as? [String: [String: Any]])
        XCTAssertFalse(ops.isEmpty)
        var worst = 0.0
        for name in ops.keys.sorted() {
            let reference = try XCTUnwrap(images[name], "no tensor \(name)")
            let produced = try produce(name, ops: ops, images: images)
            XCTAssertEqual(produced.width, reference.width, name)
            XCTAssertEqual(produced.height, reference.height, name)
            guard produced.width == reference.width, produced.height == reference.height else { continue }
            let (mae, largest) = absoluteErrors(produced, reference)
            worst = max(worst, mae)
            print("MAE \(name) = \(String(format: "%.4f", mae)) (max |diff| \(largest))")
            XCTAssertLessThanOrEqual(mae, 2.0, "\(name): mean absolute error \(mae) > 2 grey levels")
        }
        print("MAE worst of \(ops.count) ops = \(String(format: "%.4f", worst))")
    }

    /// Our output for one entry of aug_reference.json.
    private func produce(_ name: String, ops: [String: [String: Any]], images: [String: RGBImage]) throws -> RGBImage {
        let spec = try XCTUnwrap(ops[name])
        let kind = try XCTUnwrap(spec["op"] as? String, "\(name) has no op")
        if kind == "resized_crop+hflip" {
            return try produce(try XCTUnwrap(spec["of"] as? String), ops: ops, images: images).flippedHorizontally()
        }
        let photo = String(name.prefix(while: { $0 != "." }))
        if kind == "resized_crop" {
            let source = try XCTUnwrap(images["\(photo).source"])
            let size = try XCTUnwrap(spec["size"] as? [Int])
            let box = PixelBox(x: UInt16(try int(spec, "left")), y: UInt16(try int(spec, "top")),
                               width: UInt16(try int(spec, "width")), height: UInt16(try int(spec, "height")))
            let interpolation: ResizeInterpolation = (spec["interpolation"] as? String) == "bilinear" ? .bilinear : .bicubic
            return try ResizedCrop.apply(source, box: box, outputWidth: size[1], outputHeight: size[0], interpolation: interpolation)
        }
        let input = try XCTUnwrap(images[try XCTUnwrap(spec["input"] as? String)])
        let args = (spec["args"] as? [Double]) ?? []
        var fill = ImageOperation.defaultFill
        if let kwargs = spec["kwargs"] as? [String: Any], let colour = kwargs["fillcolor"] as? [Int], colour.count == 3 {
            fill = (UInt8(colour[0]), UInt8(colour[1]), UInt8(colour[2]))
        }
        let operation: ImageOperation
        switch kind {
        case "auto_contrast": operation = .autoContrast
        case "equalize": operation = .equalize
        case "invert": operation = .invert
        case "rotate": operation = .rotate(degrees: args[0])
        case "posterize": operation = .posterize(bits: Int(args[0]))
        case "solarize": operation = .solarize(threshold: Int(args[0]))
        case "solarize_add": operation = .solarizeAdd(add: Int(args[0]), threshold: Int(args[1]))
        case "color": operation = .color(factor: args[0])
        case "contrast": operation = .contrast(factor: args[0])
        case "brightness": operation = .brightness(factor: args[0])
        case "sharpness": operation = .sharpness(factor: args[0])
        case "shear_x": operation = .shearX(factor: args[0])
        case "shear_y": operation = .shearY(factor: args[0])
        case "translate_x_rel": operation = .translateXRelative(fraction: args[0])
        case "translate_y_rel": operation = .translateYRelative(fraction: args[0])
        default: throw XCTSkip("unknown op \(kind) in \(name)")
        }
        return operation.apply(to: input, fill: fill)
    }

    private func int(_ spec: [String: Any], _ key: String) throws -> Int {
        try XCTUnwrap(spec[key] as? Int, "missing \(key)")
    }
}
