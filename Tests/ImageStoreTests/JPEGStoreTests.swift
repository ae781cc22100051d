import CTurboJPEG
import XCTest
import Augment
@testable import ImageStore
import TinyShardBase

/// JPEG stores (Spec/IMAGESTORE.md 3.2): the writer's round trip, what it refuses, and hostile stores —
/// every damage a one-line error naming file and image, never a crash or an allocation the bytes do not
/// justify.
final class JPEGStoreTests: XCTestCase {
    func smoothImage(width: Int, height: Int, seed: Int) throws -> RGBImage {
        try RGBImage(width: width, height: height, pixels: TestJPEG.smooth(width: width, height: height, seed: seed))
    }

    func testWriterRoundTripDecodesWhatTheEncoderMade() throws {
        let folder = TemporaryFolder()
        let path = folder.file("j.tsimg")
        let images = try [(40, 30), (1, 1), (17, 9), (64, 64)].enumerated().map { try smoothImage(width: $1.0, height: $1.1, seed: $0) }
        for encoding in [StoreEncoding.defaultJPEG, .jpeg(quality: 60, subsampling: .s444)] {
            let writer = try ImageStoreWriter(path: path, classNames: ["a", "b"], encoding: encoding)
            for (i, image) in images.enumerated() { try writer.append(key: "k\(i)", label: i % 2, image: image) }
            try writer.finish()
            let bytes = try readFile(path)
            XCTAssertEqual(bytes[4], 2, "a JPEG store is major version 2")
            XCTAssertEqual(bytes[36], 1, "encoding 1 = JPEG")
            let store = try ImageStore(path: path)
            XCTAssertEqual(store.kind, .jpeg)
            XCTAssertEqual(store.labels(), [0, 1, 0, 1])
            guard case let .jpeg(quality, subsampling) = encoding else { return XCTFail() }
            for (i, image) in images.enumerated() {
                let jpeg = try JPEGCodec.encode(image, quality: quality, subsampling: subsampling)
                let expected = try jpeg.withUnsafeBytes { try JPEGCodec.decode($0, name: "expected") }
                XCTAssertEqual(try store.image(at: i), expected)
                XCTAssertEqual(try store.withPixels(at: i) { p, w, h in try RGBImage(width: w, height: h, pixels: [UInt8](p)) }, expected)
                XCTAssertEqual(try store.withStoredBytes(at: i) { data, _, _ in [UInt8](data) }, jpeg)
                XCTAssertLessThan(meanAbsoluteError(expected, image), 12, "image \(i) at q\(quality)")
            }
            XCTAssertTrue(ImageStoreVerifier(threads: 2).verify(path: path).isClean)
        }
        // A raw store is still version 1.0, which every version-1 reader reads.
        try writeSampleStore(folder.file("raw.tsimg"))
        XCTAssertEqual(try readFile(folder.file("raw.tsimg"))[4], 1)
    }

    func testWriterRefusesStreamsReadersWouldReject() throws {
        let folder = TemporaryFolder()
        let writer = try ImageStoreWriter(path: folder.file("w.tsimg"), encoding: .defaultJPEG)
        let pixels = TestJPEG.smooth(width: 16, height: 8, seed: 3)
        let progressive = TestJPEG.encode(pixels, width: 16, height: 8, format: TJPF_RGB, subsampling: TJSAMP_420, progressive: true)
        var error = storeError(try writer.append(key: "a", label: -1, encoded: EncodedImage(kind: .jpeg, width: 16, height: 8, bytes: progressive)))
        XCTAssertEqual(error?.code, .invalidArgument)
        XCTAssertTrue(error?.message.contains("SOF2") == true, error?.description ?? "")
        let baseline = TestJPEG.encode(pixels, width: 16, height: 8, format: TJPF_RGB, subsampling: TJSAMP_420)
        error = storeError(try writer.append(key: "a", label: -1, encoded: EncodedImage(kind: .jpeg, width: 16, height: 9, bytes: baseline)))
        XCTAssertTrue(error?.message.contains("16x8") == true, error?.description ?? "")
        error = storeError(try writer.append(key: "a", label: -1, encoded: EncodedImage(kind: .raw, width: 1, height: 1, bytes: [1, 2, 3])))
        XCTAssertEqual(error?.code, .invalidArgument)
        XCTAssertNoThrow(try writer.append(key: "a", label: -1, encoded: EncodedImage(kind: .jpeg, width: 16, height: 8, bytes: baseline)))
        XCTAssertEqual(storeError(try ImageStoreWriter(path: folder.file("q.tsimg"), encoding: .jpeg(quality: 0, subsampling: .s420)))?.code,
                       .invalidArgument)
        try writer.finish()
        XCTAssertEqual(try ImageStore(path: folder.file("w.tsimg")).image(at: 0).width, 16)
    }

    /// Every prefix and every single-byte change of a stored JPEG (checksums resealed, so the JPEG rules are
    /// what meets the damage): reading gives the image or a bad-jpeg / bad-index error, never a crash.
    func testEveryTruncationAndByteChangeOfAStoredJPEGIsHandled() throws {
        let folder = TemporaryFolder()
        let jpeg = TestJPEG.encode(TestJPEG.smooth(width: 12, height: 10, seed: 4), width: 12, height: 10, format: TJPF_RGB,
                                   subsampling: TJSAMP_420)
        var store = StoreBytes(major: 2)
        let path = folder.file("h.tsimg")
        var outcomes: [String: Int] = [:]
        func attempt(_ data: [UInt8]) throws {
            store.images = [.init(key: "x", label: -1, width: 12, height: 10, data: data)]
            try writeFile(store.bytes(), path)
            do {
                _ = try ImageStore(path: path).image(at: 0)
                outcomes["ok", default: 0] += 1
            } catch let error as ImageStoreError {
                XCTAssertTrue([.badJPEG, .badIndex].contains(error.code), error.description)
                XCTAssertTrue(error.description.hasPrefix(path), error.description)
                outcomes[error.code.rawValue, default: 0] += 1
            }
        }
        // Every prefix through the headers, then every 7th (and the last few) through the scan data; every
        // 3rd byte changed.
        let scan = ImageVectorTests.scanStart(jpeg)
        for length in Array(0..<scan) + Array(stride(from: scan, to: jpeg.count, by: 7)) + Array((jpeg.count - 4)..<jpeg.count) {
            try attempt(Array(jpeg.prefix(length)))
        }
        for position in stride(from: 0, to: jpeg.count, by: 3) {
            var changed = jpeg
            changed[position] ^= 0x5A
            try attempt(changed)
        }
        XCTAssertEqual(outcomes["bad-index"], 1, "only the empty prefix is refused at open")
        XCTAssertGreaterThan(outcomes["bad-jpeg"] ?? 0, scan)
    }

    func testFrameWalkRules() throws {
        let jpeg = TestJPEG.encode(TestJPEG.smooth(width: 9, height: 7, seed: 5), width: 9, height: 7, format: TJPF_RGB, subsampling: TJSAMP_444)
        func problem(_ bytes: [UInt8], _ width: Int = 9, _ height: Int = 7) -> String? {
            bytes.withUnsafeBytes { JPEGFrame.problem($0, width: width, height: height) }
        }
        XCTAssertNil(problem(jpeg))
        // Fill bytes before a marker are allowed.
        var filled = jpeg
        filled.insert(contentsOf: [0xFF, 0xFF], at: 2)
        XCTAssertNil(problem(filled))
        let sof = ImageVectorTests.markerOffset(jpeg, 0xC0)
        var dnl = jpeg
        (dnl[sof + 5], dnl[sof + 6]) = (0, 0)
        XCTAssertEqual(problem(dnl, 9, 0), "frame height 0 (defined by a DNL marker) is not allowed")
        var length = jpeg
        length[sof + 3] += 3
        XCTAssertTrue(problem(length)?.contains("does not match its 3 components") == true)
        var noSOF = jpeg
        noSOF[sof + 1] = 0xE5  // the frame becomes an APP5 segment: the scan comes first
        XCTAssertEqual(problem(noSOF), "a scan (SOS) comes before any frame header")
        var runaway = jpeg
        runaway[4] = 0xFF  // APP0's length now runs past the end
        XCTAssertTrue(problem(runaway)?.contains("leaves the") == true, problem(runaway) ?? "")
        XCTAssertTrue(problem([0xFF, 0xD8, 0xFF, 0x00, 0xFF, 0xD9])?.contains("not a marker") == true)
        XCTAssertTrue(problem(jpeg, 9, 8)?.contains("the index says 9x8") == true)
    }

    /// A header claiming 60000x60000 (or 8000x8000 in a few bytes) is refused before anything is allocated
    /// for its pixels: in a store at open, in an imported file before decoding.
    func testHugeClaimsAreRefusedBeforeDecoding() throws {
        let folder = TemporaryFolder()
        let small = TestJPEG.encode(TestJPEG.smooth(width: 8, height: 8, seed: 6), width: 8, height: 8, format: TJPF_RGB, subsampling: TJSAMP_420)
        let sof = ImageVectorTests.markerOffset(small, 0xC0)
        func claiming(_ width: Int, _ height: Int) -> [UInt8] {
            var bytes = small
            (bytes[sof + 5], bytes[sof + 6]) = (UInt8(height >> 8), UInt8(height & 0xFF))
            (bytes[sof + 7], bytes[sof + 8]) = (UInt8(width >> 8), UInt8(width & 0xFF))
            return bytes
        }
        // Importer input files.
        var error = storeError(try claiming(60000, 60000).withUnsafeBytes { try JPEGCodec.decode($0, name: "huge.jpg") })
        XCTAssertEqual(error?.code, .badInput)
        XCTAssertTrue(error?.message.contains("over the limit") == true, error?.description ?? "")
        error = storeError(try hugePNG(width: 60000, height: 60000).withUnsafeBytes { try PNGCodec.decode($0, name: "huge.png") })
        XCTAssertTrue(error?.message.contains("over the limit") == true, error?.description ?? "")
        // A store whose index (and JPEG) claim 8000x8000 in a few hundred bytes.
        var store = StoreBytes(major: 2)
        store.images = [.init(key: "x", label: -1, width: 8000, height: 8000, data: claiming(8000, 8000))]
        try writeFile(store.bytes(), folder.file("s.tsimg"))
        error = storeError(try ImageStore(path: folder.file("s.tsimg")))
        XCTAssertEqual(error?.code, .badIndex)
        XCTAssertTrue(error?.description.contains("image 0 (key x)") == true, error?.description ?? "")
    }

    func testMaxSideResize() throws {
        XCTAssertTrue(MaxSideResize.size(width: 500, height: 375, maxSide: 256) == (256, 192))
        XCTAssertTrue(MaxSideResize.size(width: 375, height: 500, maxSide: 256) == (192, 256))
        XCTAssertTrue(MaxSideResize.size(width: 451, height: 300, maxSide: 224) == (224, 149))  // 149.0 exactly: 300·224/451 = 148.99
        XCTAssertTrue(MaxSideResize.size(width: 3, height: 1000, maxSide: 100) == (1, 100))   // never below 1
        XCTAssertTrue(MaxSideResize.size(width: 200, height: 100, maxSide: 200) == (200, 100)) // fits: unchanged
        let image = try smoothImage(width: 60, height: 40, seed: 7)
        let shrunk = try MaxSideResize.apply(image, maxSide: 30)
        XCTAssertEqual(shrunk, try ResizedCrop.apply(image, box: .init(x: 0, y: 0, width: 60, height: 40), outputWidth: 30, outputHeight: 20))
        XCTAssertEqual(try MaxSideResize.apply(image, maxSide: 60), image)
    }

    func meanAbsoluteError(_ a: RGBImage, _ b: RGBImage) -> Double {
        Double(zip(a.pixels, b.pixels).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }) / Double(a.pixels.count)
    }

    /// A PNG whose IHDR claims the size (with a valid chunk CRC) and one empty IDAT.
    func hugePNG(width: Int, height: Int) -> [UInt8] {
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let out: [UInt8] = [UInt8(data.count >> 24), UInt8(data.count >> 16 & 0xFF), UInt8(data.count >> 8 & 0xFF), UInt8(data.count & 0xFF)]
            let body = Array(type.utf8) + data
            let crc = CRC32.checksum(body)
            return out + body + [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
        }
        func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", be32(width) + be32(height) + [8, 2, 0, 0, 0])
            + chunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]) + chunk("IEND", [])
    }
}
