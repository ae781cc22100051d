import CTurboJPEG
import Foundation
import XCTest
import Augment
@testable import ImageStore
import TinyShardBase

/// Spec/vectors/images: tiny stores with what a reader must produce (valid) or the first error it must
/// give (invalid), for the Python reader and any other implementation of Spec/IMAGESTORE.md.
///
/// `testWriteImageVectors` regenerates the folder (only with TINYSHARD_WRITE_VECTORS=1); every run checks
/// every vector through the library and the verifier. The stores are built by ``StoreBytes`` from the
/// spec's tables, not by the library's writer, so the library is checked against an independent writer.
final class ImageVectorTests: XCTestCase {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Spec/vectors/images").path
    static let sizeLimit = 4096

    struct Vector: Codable {
        struct Image: Codable, Equatable {
            var key: String
            var label: Int
            var width: Int
            var height: Int
            /// CRC-32 of the decoded RGB pixels, 8 hex digits.
            var pixels_crc32: String
        }
        var file: String
        var valid: Bool
        var description: String
        var major: Int?
        var class_count: Int?
        var class_names: [String]?
        var images: [Image]?
        var error: String?
        /// The image whose read gives the error; nil when opening the store gives it.
        var image: Int?
        var derived_from: String?
    }

    // MARK: Checking

    func testEveryImageVectorReadsAsItsJSON() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.folder)
        let jsons = names.filter { $0.hasSuffix(".json") }.sorted()
        let stores = names.filter { $0.hasSuffix(".tsimg") }.sorted()
        XCTAssertGreaterThanOrEqual(jsons.count, 20, "Spec/vectors/images is missing vectors (TINYSHARD_WRITE_VECTORS=1 regenerates them)")
        XCTAssertEqual(Set(jsons.map { String($0.dropLast(5)) }), Set(stores.map { String($0.dropLast(6)) }))
        let readme = try String(contentsOfFile: Self.folder + "/README.md", encoding: .utf8)
        var codes = Set<String>()
        for name in jsons {
            let vector = try JSONDecoder().decode(Vector.self, from: Data(contentsOf: URL(fileURLWithPath: Self.folder + "/" + name)))
            let path = Self.folder + "/" + vector.file
            XCTAssertLessThan(try readFile(path).count, Self.sizeLimit, vector.file)
            XCTAssertTrue(readme.contains("`\(vector.file)`"), "README.md does not list \(vector.file)")
            try check(vector, path: path)
            if let error = vector.error { codes.insert(error) }
        }
        // One invalid vector per error code a store file can produce.
        XCTAssertEqual(codes, Set(ImageStoreErrorCode.allCases.map(\.rawValue)).subtracting(["io", "bad-input", "invalid-argument"]))
    }

    func check(_ vector: Vector, path: String) throws {
        let what = vector.file
        let report = ImageStoreVerifier().verify(path: path)
        if vector.valid {
            let store = try ImageStore(path: path)
            XCTAssertEqual(store.kind == .raw ? 1 : 2, vector.major, what)
            XCTAssertEqual(store.classCount, vector.class_count, what)
            XCTAssertEqual(store.classNames, vector.class_names, what)
            var images: [Vector.Image] = []
            for i in 0..<store.count {
                let image = try store.image(at: i)
                let (width, height) = try store.size(at: i)
                XCTAssertEqual(try store.withPixels(at: i) { pixels, _, _ in [UInt8](pixels) }, image.pixels, what)
                images.append(Vector.Image(key: try store.key(at: i), label: try store.label(at: i), width: width, height: height,
                                           pixels_crc32: hex8(CRC32.checksum(image.pixels))))
            }
            XCTAssertEqual(images, vector.images, what)
            XCTAssertTrue(report.isClean, "\(what): \(report.problems)")
            return
        }
        var first: ImageStoreError?
        var at: Int?
        do {
            let store = try ImageStore(path: path)
            for i in 0..<store.count where first == nil {
                do { _ = try store.image(at: i) } catch let error as ImageStoreError { (first, at) = (error, i) }
            }
        } catch let error as ImageStoreError {
            first = error
        }
        XCTAssertEqual(first?.code.rawValue, vector.error, "\(what): \(String(describing: first))")
        XCTAssertEqual(at, vector.image, what)
        XCTAssertTrue(first?.description.hasPrefix(path) == true, "\(what): the error does not name the file")
        XCTAssertEqual(report.problems.first?.code.rawValue, vector.error, "\(what): verifier \(report.problems)")
    }

    // MARK: Generating

    func testWriteImageVectors() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["TINYSHARD_WRITE_VECTORS"] == "1",
                          "set TINYSHARD_WRITE_VECTORS=1 to regenerate Spec/vectors/images")
        let fm = FileManager.default
        try fm.createDirectory(atPath: Self.folder, withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: Self.folder) where name.hasSuffix(".json") || name.hasSuffix(".tsimg") {
            try fm.removeItem(atPath: Self.folder + "/" + name)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        for (store, vector) in try Self.vectors() {
            try writeFile(store.bytes(), Self.folder + "/" + vector.file)
            var json = try encoder.encode(vector)
            json.append(0x0A)
            try json.write(to: URL(fileURLWithPath: Self.folder + "/" + String(vector.file.dropLast(6)) + ".json"))
        }
    }

    static func vectors() throws -> [(StoreBytes, Vector)] {
        var out: [(StoreBytes, Vector)] = []
        func valid(_ name: String, _ store: StoreBytes, _ description: String) throws {
            let file = name + ".tsimg"
            let images = try store.images.map { image -> Vector.Image in
                let pixels: [UInt8]
                if store.major == 1 {
                    pixels = image.data
                } else {
                    var decoded = [UInt8](repeating: 0, count: image.width * image.height * 3)
                    let problem = image.data.withUnsafeBytes { data in
                        decoded.withUnsafeMutableBytes { JPEGCodec.decodeStored(data, width: image.width, height: image.height, into: $0) }
                    }
                    if let problem { throw ImageStoreError(.badJPEG, problem, file: file) }
                    pixels = decoded
                }
                return Vector.Image(key: image.key, label: Int(image.label), width: image.width, height: image.height,
                                    pixels_crc32: hex8(CRC32.checksum(pixels)))
            }
            out.append((store, Vector(file: file, valid: true, description: description, major: Int(store.major),
                                      class_count: Int(store.classCount), class_names: store.classNames, images: images)))
        }
        func invalid(_ name: String, _ store: StoreBytes, _ error: ImageStoreErrorCode, image: Int? = nil, from: String,
                     _ description: String) {
            out.append((store, Vector(file: name + ".tsimg", valid: false, description: description, error: error.rawValue,
                                      image: image, derived_from: from + ".tsimg")))
        }

        // Raw (version 1.0).
        var raw = StoreBytes(major: 1, classCount: 2, classNames: ["cat", "dog"])
        raw.images = [
            .init(key: "a/1.png", label: 0, width: 2, height: 2, data: [255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 8, 7]),
            .init(key: "a/2.png", label: 1, width: 3, height: 1, data: [1, 2, 3, 4, 5, 6, 7, 8, 9]),
            .init(key: "b/1.png", label: -1, width: 1, height: 4, data: Array(100..<112)),
        ]
        try valid("valid-raw", raw, "Version 1.0, 3 images (2x2, 3x1, 1x4), 2 named classes, labels 0, 1 and -1 (no label).")
        try valid("valid-raw-empty", StoreBytes(major: 1), "Version 1.0 with no images, no classes, no names: the 64-byte header alone.")
        var unnamed = StoreBytes(major: 1, classCount: 5)
        unnamed.images = [.init(key: "x", label: 4, width: 1, height: 1, data: [7, 7, 7])]
        try valid("valid-raw-unnamed-classes", unnamed, "Version 1.0, C = 5 with no class names (L = 0); the one image has label 4.")
        var rawMinor = raw
        rawMinor.minor = 1
        rawMinor.word36 = 5
        rawMinor.reserved40[0] = 1
        try valid("valid-raw-minor-version", rawMinor, "valid-raw with minor version 1, flags 5 and reserved byte 40 = 1: a higher minor may use them, a reader ignores them.")

        var s = raw
        s.images[0].data[0] = 254
        s.images[0].crc = CRC32.checksum(raw.images[0].data)
        invalid("invalid-raw-pixel-crc", s, .pixelCRC, image: 0, from: "valid-raw", "valid-raw with pixel byte 0 of image 0 changed, its CRC not updated: opening succeeds, reading image 0 fails.")
        let bytes = raw.bytes()
        s = raw
        s.major = 3
        invalid("invalid-unsupported-version", s, .unsupportedVersion, from: "valid-raw", "valid-raw with major version 3 (header CRC recomputed).")
        s = raw
        s.headerCRC = CRC32.checksum(Array(bytes[0..<60])) ^ 1
        invalid("invalid-header-crc", s, .headerCRC, from: "valid-raw", "valid-raw with the header CRC's lowest bit flipped.")
        s = raw
        s.word36 = 1
        invalid("invalid-bad-header-flags", s, .badHeader, from: "valid-raw", "valid-raw (version 1.0) with flags = 1 (header CRC recomputed).")
        s = raw
        s.classCount = 0x8000_0000
        invalid("invalid-bad-header-class-count", s, .badHeader, from: "valid-raw", "valid-raw with C = 2^31 (header CRC recomputed).")
        s = raw
        s.trailing = [0]
        invalid("invalid-size-mismatch", s, .sizeMismatch, from: "valid-raw", "valid-raw with one byte appended: the file is longer than P + 32·N + K + L.")
        s = raw
        s.metadataCRC = CRC32.checksum(Array(bytes[Int(bytes.withUnsafeBytes { $0.le(16, as: UInt64.self) })...])) ^ 0x100
        invalid("invalid-metadata-crc", s, .metadataCRC, from: "valid-raw", "valid-raw with a wrong metadata CRC (header CRC recomputed).")
        s = raw
        s.images[1].word28 = 1
        invalid("invalid-bad-index-reserved", s, .badIndex, from: "valid-raw", "valid-raw with image 1's reserved entry bytes 28-31 = 1 (CRCs recomputed).")
        s = raw
        s.images[2].channels = 4
        invalid("invalid-bad-index-channels", s, .badIndex, from: "valid-raw", "valid-raw with image 2's channels = 4 (CRCs recomputed).")
        s = raw
        s.images.swapAt(0, 1)
        invalid("invalid-bad-keys-order", s, .badKeys, from: "valid-raw", "valid-raw with images 0 and 1 swapped: keys a/2.png, a/1.png are not ascending.")
        s = raw
        s.images[1].key = "a/\n.png"
        invalid("invalid-bad-keys-newline", s, .badKeys, from: "valid-raw", "valid-raw with image 1's key a/\\n.png (a newline; CRCs recomputed).")
        s = raw
        s.images[1].label = 2
        invalid("invalid-bad-label", s, .badLabel, from: "valid-raw", "valid-raw with image 1's label 2, not below C = 2.")
        s = raw
        s.classNames = ["cat", "cat"]
        invalid("invalid-bad-classes", s, .badClasses, from: "valid-raw", "valid-raw with class names cat, cat (not unique).")
        // JPEG (version 2.0).
        let colour = TestJPEG.encode(TestJPEG.smooth(width: 8, height: 8, seed: 1), width: 8, height: 8, format: TJPF_RGB, subsampling: TJSAMP_420)
        let odd = TestJPEG.encode(TestJPEG.smooth(width: 13, height: 7, seed: 2), width: 13, height: 7, format: TJPF_RGB,
                                  subsampling: TJSAMP_444, quality: 75)
        let greyPixels = (0..<(5 * 9)).map { UInt8($0 * 5) }
        let grey = TestJPEG.encode(greyPixels, width: 5, height: 9, format: TJPF_GRAY, subsampling: TJSAMP_GRAY)
        var jpeg = StoreBytes(major: 2, classCount: 3, classNames: ["astronaut", "chelsea", "coffee"])
        jpeg.images = [
            .init(key: "astronaut/0.jpg", label: 0, width: 8, height: 8, data: colour),
            .init(key: "chelsea/0.jpg", label: 1, width: 13, height: 7, data: odd),
            .init(key: "coffee/0.jpg", label: -1, width: 5, height: 9, data: grey),
        ]
        try valid("valid-jpeg", jpeg, "Version 2.0 (JPEG): an 8x8 colour JPEG (4:2:0, q90), a 13x7 one (4:4:4, q75) and a 5x9 grey one (R = G = B); labels 0, 1, -1. pixels_crc32 is of libjpeg's accurate-IDCT, fancy-upsampling decode (libjpeg-turbo's and PIL's defaults).")
        var jpegMinor = jpeg
        jpegMinor.minor = 3
        jpegMinor.reserved40[19] = 0xAB
        try valid("valid-jpeg-minor-version", jpegMinor, "valid-jpeg with minor version 3 and reserved byte 59 = 0xAB (header CRC recomputed): accepted.")

        s = jpeg
        s.word36 = 2
        invalid("invalid-jpeg-encoding", s, .unsupportedVersion, from: "valid-jpeg", "valid-jpeg with encoding 2 at header offset 36 (header CRC recomputed): an encoding this reader does not know.")
        s = jpeg
        s.word36 = 0
        invalid("invalid-jpeg-encoding-zero", s, .unsupportedVersion, from: "valid-jpeg", "valid-jpeg with encoding 0 (header CRC recomputed): a version-2 store is never raw.")
        s = jpeg
        s.reserved40[0] = 1
        invalid("invalid-jpeg-bad-header", s, .badHeader, from: "valid-jpeg", "valid-jpeg (minor 0) with reserved header byte 40 = 1 (header CRC recomputed).")
        s = jpeg
        s.images[1].word28 = 0
        invalid("invalid-jpeg-zero-length", s, .badIndex, from: "valid-jpeg", "valid-jpeg with image 1's JPEG length S = 0 (CRCs recomputed).")
        s = jpeg
        s.images[1].word28 = UInt32(odd.count - 1)
        invalid("invalid-jpeg-length", s, .badIndex, from: "valid-jpeg", "valid-jpeg with image 1's S one byte short: image 2 no longer starts where image 1 ends (CRCs recomputed).")
        s = jpeg
        s.images[0].width = 8192
        s.images[0].height = 8193
        invalid("invalid-jpeg-pixel-limit", s, .badIndex, from: "valid-jpeg", "valid-jpeg with image 0 claimed as 8192x8193 (over 2^26 pixels; CRCs recomputed): refused at open, nothing is decoded.")
        s = jpeg
        s.images[0].width = 1000
        s.images[0].height = 1000
        invalid("invalid-jpeg-bytes-present", s, .badIndex, from: "valid-jpeg", "valid-jpeg with image 0 claimed as 1000x1000: more than 256 pixels per stored byte (CRCs recomputed).")
        s = jpeg
        s.images[2].data[s.images[2].data.count / 2] ^= 0x20
        s.images[2].crc = CRC32.checksum(grey)
        invalid("invalid-jpeg-crc", s, .pixelCRC, image: 2, from: "valid-jpeg", "valid-jpeg with a byte in image 2's JPEG changed, its CRC not updated.")
        s = jpeg
        s.images[1].width = 14
        invalid("invalid-jpeg-size", s, .badJPEG, image: 1, from: "valid-jpeg", "valid-jpeg with image 1's index entry saying 14x7 for its 13x7 JPEG (CRCs recomputed).")
        s = jpeg
        s.images[0].data.removeLast(20)
        invalid("invalid-jpeg-truncated", s, .badJPEG, image: 0, from: "valid-jpeg", "valid-jpeg with image 0's JPEG cut 20 bytes short, so it does not end with EOI (lengths and CRCs recomputed).")
        s = jpeg
        s.images[0].data.insert(0x00, at: 0)
        invalid("invalid-jpeg-no-soi", s, .badJPEG, image: 0, from: "valid-jpeg", "valid-jpeg with a zero byte before image 0's SOI (lengths and CRCs recomputed).")
        s = jpeg
        s.images[1].data = TestJPEG.encode(TestJPEG.smooth(width: 13, height: 7, seed: 2), width: 13, height: 7, format: TJPF_RGB,
                                           subsampling: TJSAMP_444, quality: 75, progressive: true)
        invalid("invalid-jpeg-progressive", s, .badJPEG, image: 1, from: "valid-jpeg", "valid-jpeg with image 1 re-encoded as a progressive JPEG (SOF2): only sequential frames are allowed.")
        s = jpeg
        s.images[0].data = TestJPEG.encode([UInt8](repeating: 90, count: 8 * 8 * 4), width: 8, height: 8, format: TJPF_CMYK, subsampling: TJSAMP_444)
        invalid("invalid-jpeg-cmyk", s, .badJPEG, image: 0, from: "valid-jpeg", "valid-jpeg with image 0 as a 4-component (CMYK/YCCK) JPEG.")
        s = jpeg
        // Cut the entropy-coded data of image 1 in half but keep EOI: the frame is fine, the decoder warns
        // of a premature end of data.
        var cut = odd
        let scan = Self.scanStart(odd)
        cut.removeSubrange((scan + (odd.count - 2 - scan) / 2)..<(odd.count - 2))
        s.images[1].data = cut
        invalid("invalid-jpeg-corrupt-data", s, .badJPEG, image: 1, from: "valid-jpeg", "valid-jpeg with the second half of image 1's entropy-coded data removed (EOI kept; lengths and CRCs recomputed): the decoder warns of a premature end, which a reader must treat as an error.")
        s = jpeg
        var precision = colour
        let sof = Self.markerOffset(colour, 0xC0)
        precision[sof + 4] = 12
        s.images[0].data = precision
        invalid("invalid-jpeg-precision", s, .badJPEG, image: 0, from: "valid-jpeg", "valid-jpeg with image 0's frame sample precision 12 instead of 8.")

        // Raw patches after every checksum is in place.
        s = raw
        s.finalPatch = { bytes in for i in 0..<64 { bytes[i] = 0 } }
        invalid("invalid-incomplete", s, .incomplete, from: "valid-raw", "valid-raw with its 64 header bytes zero: what a writer that never finished leaves.")
        s = raw
        s.finalPatch = { bytes in bytes = Array(bytes.prefix(10)) }
        invalid("invalid-incomplete-short", s, .incomplete, from: "valid-raw", "The first 10 bytes of valid-raw (TSIM and 6 more): shorter than a header, cut from a store.")
        s = raw
        s.finalPatch = { bytes in bytes[0] = UInt8(ascii: "X") }
        invalid("invalid-bad-magic", s, .badMagic, from: "valid-raw", "valid-raw with magic XSIM.")
        return out
    }

    /// Offset of the first byte after the first SOS segment's header.
    static func scanStart(_ jpeg: [UInt8]) -> Int {
        let sos = markerOffset(jpeg, 0xDA)
        return sos + 2 + (Int(jpeg[sos + 2]) << 8 | Int(jpeg[sos + 3]))
    }

    /// Offset of the `FF marker` pair of the first such segment (walking segment lengths).
    static func markerOffset(_ jpeg: [UInt8], _ marker: UInt8) -> Int {
        var p = 2
        while p + 3 < jpeg.count {
            if jpeg[p + 1] == marker { return p }
            p += 2 + (Int(jpeg[p + 2]) << 8 | Int(jpeg[p + 3]))
        }
        return -1
    }
}

func hex8(_ value: UInt32) -> String {
    let text = String(value, radix: 16)
    return String(repeating: "0", count: 8 - text.count) + text
}
