import XCTest
import Augment
import CPNG
import CTurboJPEG
@testable import ImageStore

/// PNG and JPEG decoding through libpng / libturbojpeg, on files written by their encoders.
final class CodecTests: XCTestCase {
    let image = testImage(width: 37, height: 23, seed: 5)

    func testPNGRoundTripIsExact() throws {
        let png = try PNGCodec.encode(image)
        XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
        XCTAssertEqual(try png.withUnsafeBytes { try ImageDecoding.decode($0, name: "t.png") }, image)
    }

    func testGreyAndAlphaPNG() throws {
        // Grey: written with libpng's simplified API in GRAY format.
        let grey: [UInt8] = (0..<(9 * 4)).map { UInt8($0 * 7) }
        let greyPNG = try encodePNG(grey, width: 9, height: 4, format: 0)
        let decoded = try greyPNG.withUnsafeBytes { try PNGCodec.decode($0, name: "g.png") }
        XCTAssertEqual(decoded.width, 9)
        for i in 0..<grey.count { XCTAssertEqual(decoded.pixels[i * 3], grey[i]); XCTAssertEqual(decoded.pixels[i * 3 + 2], grey[i]) }
        // RGBA: alpha is dropped, colours kept as stored (PIL's convert("RGB")).
        var rgba: [UInt8] = []
        for i in 0..<(5 * 5) {
            let alpha: UInt8 = i % 2 == 0 ? 0 : 128
            rgba += [UInt8(i * 10), 200, UInt8(255 - i), alpha]
        }
        let rgbaPNG = try encodePNG(rgba, width: 5, height: 5, format: 3)
        let opaque = try rgbaPNG.withUnsafeBytes { try PNGCodec.decode($0, name: "a.png") }
        for i in 0..<25 {
            XCTAssertEqual(opaque.pixels[i * 3], rgba[i * 4])
            XCTAssertEqual(opaque.pixels[i * 3 + 1], 200)
        }
    }

    func testJPEGDecodesCloseToTheSource() throws {
        var ramp = [UInt8](repeating: 0, count: 64 * 48 * 3)
        for i in 0..<ramp.count {
            let column = i / 3 % 64
            ramp[i] = UInt8(column * 3 + (i % 3) * 20)
        }
        let smooth = try RGBImage(width: 64, height: 48, pixels: ramp)
        let jpeg = try JPEGCodec.encode(smooth, quality: 95)
        let decoded = try jpeg.withUnsafeBytes { try ImageDecoding.decode($0, name: "t.jpg") }
        XCTAssertEqual(decoded.width, 64)
        XCTAssertEqual(decoded.height, 48)
        let mae = zip(decoded.pixels, smooth.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +)
        XCTAssertLessThan(Double(mae) / Double(smooth.pixels.count), 2.0)
        // Grey JPEG → R = G = B.
        let greyJPEG = try encodeGreyJPEG(width: 16, height: 16)
        let grey = try greyJPEG.withUnsafeBytes { try JPEGCodec.decode($0, name: "g.jpg") }
        for i in 0..<(16 * 16) { XCTAssertEqual(grey.pixels[i * 3], grey.pixels[i * 3 + 1]) }
    }

    func testGarbageAndTruncatedFilesAreClearErrors() throws {
        let junk: [UInt8] = Array("hello, not an image".utf8)
        var error = storeError(try junk.withUnsafeBytes { try ImageDecoding.decode($0, name: "junk.png") })
        XCTAssertEqual(error?.code, .badInput)
        XCTAssertTrue(error?.description.hasPrefix("junk.png: [bad-input]") == true, error?.description ?? "")
        let png = try PNGCodec.encode(image)
        error = storeError(try Array(png.prefix(png.count / 2)).withUnsafeBytes { try ImageDecoding.decode($0, name: "half.png") })
        XCTAssertEqual(error?.code, .badInput)
        XCTAssertTrue(error?.description.contains("half.png") == true)
        let jpeg = try JPEGCodec.encode(image)
        error = storeError(try Array(jpeg.prefix(40)).withUnsafeBytes { try ImageDecoding.decode($0, name: "cut.jpg") })
        XCTAssertEqual(error?.code, .badInput)
    }

    // MARK: Encoders for inputs the library itself never writes

    /// format: 0 grey, 3 RGBA (libpng's PNG_FORMAT_* flags).
    func encodePNG(_ pixels: [UInt8], width: Int, height: Int, format: UInt32) throws -> [UInt8] {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = format
        defer { png_image_free(&image) }
        var size = 0
        XCTAssertNotEqual(pixels.withUnsafeBytes { png_image_write_to_memory(&image, nil, &size, 0, $0.baseAddress, 0, nil) }, 0)
        var out = [UInt8](repeating: 0, count: size)
        let ok = pixels.withUnsafeBytes { p in out.withUnsafeMutableBytes { png_image_write_to_memory(&image, $0.baseAddress, &size, 0, p.baseAddress, 0, nil) } }
        XCTAssertNotEqual(ok, 0)
        return Array(out.prefix(size))
    }

    func encodeGreyJPEG(width: Int, height: Int) throws -> [UInt8] {
        let handle = try XCTUnwrap(tjInitCompress())
        defer { tjDestroy(handle) }
        let grey = (0..<(width * height)).map { UInt8($0 % 251) }
        var buffer: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        let status = grey.withUnsafeBufferPointer {
            tjCompress2(handle, $0.baseAddress, Int32(width), 0, Int32(height), Int32(TJPF_GRAY.rawValue), &buffer, &size,
                        Int32(TJSAMP_GRAY.rawValue), 90, 0)
        }
        XCTAssertEqual(status, 0)
        defer { tjFree(buffer) }
        return Array(UnsafeBufferPointer(start: buffer, count: Int(size)))
    }
}
