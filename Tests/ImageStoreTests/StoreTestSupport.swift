import Foundation
@_exported import TestSupport      // TemporaryFolder
import XCTest
import Augment
@testable import ImageStore

/// `../shared/data` beside the package root, or nil when absent.
enum SharedData {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data")

    static var digits: String? {
        let path = root.appendingPathComponent("digits.csv.gz").path
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }
}

func readFile(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }
func writeFile(_ bytes: [UInt8], _ path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

/// A deterministic test image with structure in every channel.
func testImage(width: Int, height: Int, seed: Int) -> RGBImage {
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    var state = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 | 1
    for i in 0..<pixels.count {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        pixels[i] = UInt8(truncatingIfNeeded: (i / 3 % width) * 2 + Int(state % 24))
    }
    return try! RGBImage(width: width, height: height, pixels: pixels)
}

/// The ImageStoreError a throwing call raised (failing the test otherwise).
@discardableResult
func storeError<T>(_ body: @autoclosure () throws -> T, file: StaticString = #filePath, line: UInt = #line) -> ImageStoreError? {
    do {
        _ = try body()
        XCTFail("expected an ImageStoreError, but the call succeeded", file: file, line: line)
    } catch let error as ImageStoreError {
        return error
    } catch {
        XCTFail("expected an ImageStoreError, got \(error)", file: file, line: line)
    }
    return nil
}

/// A `.npy` file (version 1.0) of raw little-endian data.
func npyBytes(descr: String, shape: [Int], data: [UInt8]) -> [UInt8] {
    let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
    while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
    header += "\n"
    var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
    bytes.append(UInt8(header.utf8.count & 0xFF))
    bytes.append(UInt8(header.utf8.count >> 8))
    return bytes + Array(header.utf8) + data
}

/// A small store: `count` images of varied sizes, keys `img_000…`, labels i % classes.
@discardableResult
func writeSampleStore(_ path: String, count: Int = 6, classes: [String] = ["cat", "dog", "fox"]) throws -> [RGBImage] {
    let writer = try ImageStoreWriter(path: path, classNames: classes)
    var images: [RGBImage] = []
    for i in 0..<count {
        let image = testImage(width: 5 + i, height: 3 + 2 * i, seed: i)
        images.append(image)
        try writer.append(key: "img_\(zeroPadded(i, width: 3))", label: classes.isEmpty ? -1 : i % classes.count, image: image)
    }
    try writer.finish()
    return images
}
