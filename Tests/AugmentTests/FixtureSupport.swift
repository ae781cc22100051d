import Interchange
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
        // The project's one safetensors parser (Interchange): strict JSON, ranges checked against the file.
        let header: SafeTensorsHeader
        do {
            header = try data.withUnsafeBytes { try SafeTensorsHeader(file: $0) }
        } catch let error as SafeTensorsFormatError {
            throw fail(error.message)
        }
        var images: [String: RGBImage] = [:]
        for entry in header.entries {
            guard entry.dtype == "U8", entry.shape.count == 3, entry.shape[2] == 3 else {
                throw fail("entry \(entry.name) is \(entry.dtype) \(entry.shape), not uint8 HxWx3")
            }
            let bytes = [UInt8](data.subdata(in: (header.dataOffset + entry.begin)..<(header.dataOffset + entry.end)))
            images[entry.name] = try RGBImage(width: entry.shape[1], height: entry.shape[0], pixels: bytes)
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
