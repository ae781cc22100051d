import Foundation
import XCTest
@testable import Augment

/// The shared reference fixtures (`<package root>/../shared/fixtures`), or nil when absent.
enum Fixtures {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared/fixtures")

    static var augmentFolder: URL? {
        let folder = root.appendingPathComponent("augment")
        return FileManager.default.fileExists(atPath: folder.appendingPathComponent("aug_reference.json").path) ? folder : nil
    }
}

/// A minimal safetensors reader for the fixtures: an 8-byte little-endian header length, a JSON header
/// `{name: {dtype, shape, data_offsets}}`, then the data. Only uint8 tensors of shape [H, W, 3] are turned
/// into images; anything else is an error naming the entry and the file.
struct SafeTensorImages {
    let images: [String: RGBImage]

    init(path: String) throws {
        func fail(_ why: String) -> NSError {
            NSError(domain: "safetensors", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(path): \(why)"])
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        guard data.count >= 8 else { throw fail("shorter than the 8-byte header length") }
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        guard headerLength >= 2, headerLength <= data.count - 8 else { throw fail("header length \(headerLength) is out of range") }
        let base = 8 + headerLength
        guard let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<base)) as? [String: Any] else {
            throw fail("header is not a JSON object")
        }
        var images: [String: RGBImage] = [:]
        for (name, value) in header where name != "__metadata__" {
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
                throw fail("entry \(name) lacks dtype, shape or data_offsets")
            }
            guard dtype == "U8", shape.count == 3, shape[2] == 3 else { throw fail("entry \(name) is \(dtype) \(shape), not uint8 HxWx3") }
            guard offsets[0] >= 0, offsets[0] <= offsets[1], base + offsets[1] <= data.count,
                  offsets[1] - offsets[0] == shape[0] * shape[1] * 3 else {
                throw fail("entry \(name) has data offsets \(offsets) that do not fit its shape or the file")
            }
            let bytes = [UInt8](data.subdata(in: (base + offsets[0])..<(base + offsets[1])))
            images[name] = try RGBImage(width: shape[1], height: shape[0], pixels: bytes)
        }
        self.images = images
    }
}

/// Mean and largest absolute difference over all channels of two same-size images.
func absoluteErrors(_ a: RGBImage, _ b: RGBImage) -> (mean: Double, max: Int) {
    precondition(a.width == b.width && a.height == b.height)
    var total = 0
    var largest = 0
    a.pixels.withUnsafeBufferPointer { pa in
        b.pixels.withUnsafeBufferPointer { pb in
            for i in 0..<pa.count {
                let d = abs(Int(pa[i]) - Int(pb[i]))
                total += d
                if d > largest { largest = d }
            }
        }
    }
    return (Double(total) / Double(a.pixels.count), largest)
}

/// A deterministic photo-like test image: smooth gradients plus texture.
func syntheticImage(width: Int, height: Int, seed: UInt64 = 1) -> RGBImage {
    var random = SampleRandom(key: seed)
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
        for x in 0..<width {
            let i = (y * width + x) * 3
            let noise = Int(random.next() % 32)
            pixels[i] = UInt8((x * 255 / max(width - 1, 1) + noise) / 2 + 40)
            pixels[i + 1] = UInt8((y * 255 / max(height - 1, 1) + noise) / 2 + 20)
            pixels[i + 2] = UInt8(((x + y) % 64) * 3 + noise)
        }
    }
    return try! RGBImage(width: width, height: height, pixels: pixels)
}
