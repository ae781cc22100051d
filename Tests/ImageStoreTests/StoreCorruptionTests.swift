import XCTest
import Augment
@testable import ImageStore
import TinyShardBase

/// Damaged stores: every kind of damage gives the spec's error code and a message naming the file (and
/// the image, when the damage is in one image's entry or pixels) — never a crash or a wrong image.
final class StoreCorruptionTests: XCTestCase {
    var folder: TemporaryFolder!
    var path: String!
    var good: [UInt8]!

    override func setUpWithError() throws {
        folder = TemporaryFolder()
        path = folder.file("good.tsimg")
        try writeSampleStore(path, count: 4)
        good = try readFile(path)
    }

    /// Opens `bytes` written to a file; returns the error (with the file checked in its text).
    func openError(_ bytes: [UInt8], pixelCheck: ImageStore.PixelCheck = .onRead) throws -> ImageStoreError? {
        let damaged = folder.file("damaged.tsimg")
        try writeFile(bytes, damaged)
        let error = storeError(try ImageStore(path: damaged, pixelCheck: pixelCheck))
        XCTAssertTrue(error?.description.hasPrefix(damaged) == true, "error does not name the file: \(String(describing: error))")
        return error
    }

    var indexOffset: Int { Int(good.withUnsafeBytes { $0.le(16, as: UInt64.self) }) }

    /// Rewrites the metadata and header CRCs so that a crafted change reaches the structural checks.
    func resealed(_ bytes: [UInt8]) -> [UInt8] {
        var b = bytes
        let offset = Int(b.withUnsafeBytes { $0.le(16, as: UInt64.self) })
        let meta = CRC32.checksum(Array(b[offset...]))
        b.replaceSubrange(32..<36, with: withUnsafeBytes(of: meta.littleEndian, Array.init))
        let head = CRC32.checksum(Array(b[0..<60]))
        b.replaceSubrange(60..<64, with: withUnsafeBytes(of: head.littleEndian, Array.init))
        return b
    }

    func testTruncationAtEveryRegion() throws {
        for length in [0, 3, 40, 64, 100, indexOffset, indexOffset + 31, good.count - 1] {
            let error = try openError(Array(good.prefix(length)))
            let expected: ImageStoreErrorCode = length < 64 ? .incomplete : .sizeMismatch
            XCTAssertEqual(error?.code, expected, "truncated to \(length): \(String(describing: error))")
        }
        XCTAssertEqual(try openError(good + [0])?.code, .sizeMismatch)
        XCTAssertEqual(try openError(Array("PK\u{3}\u{4} a zip file".utf8))?.code, .badMagic)
    }

    func testHeaderDamage() throws {
        var b = good!
        b[0] = UInt8(ascii: "X")
        XCTAssertEqual(try openError(b)?.code, .badMagic)
        b = good
        b[8] ^= 1  // image count
        XCTAssertEqual(try openError(b)?.code, .headerCRC)
        b = good
        b[4] = 3  // 1 is raw, 2 JPEG
        XCTAssertEqual(try openError(b)?.code, .unsupportedVersion)
        b = good
        b[40] = 1
        XCTAssertEqual(try openError(resealed(b))?.code, .badHeader)
        b = good
        for i in 0..<64 { b[i] = 0 }
        XCTAssertEqual(try openError(b)?.code, .incomplete)
    }

    func testMetadataDamage() throws {
        var b = good!
        b[indexOffset + 5] ^= 0x40
        XCTAssertEqual(try openError(b)?.code, .metadataCRC)
        b = good
        b[b.count - 2] ^= 1  // inside the class names
        XCTAssertEqual(try openError(b)?.code, .metadataCRC)
    }

    func testStructuralDamageBehindValidChecksums() throws {
        let entry = { (i: Int) in self.indexOffset + 32 * i }
        var b = good!
        b[entry(2) + 0] &+= 1  // pixel offset of image 2
        var error = try openError(resealed(b))
        XCTAssertEqual(error?.code, .badIndex)
        XCTAssertEqual(error?.image, 2)
        XCTAssertEqual(error?.key, "img_002")

        b = good
        b[entry(1) + 12] = 7  // label 7 of 3 classes
        error = try openError(resealed(b))
        XCTAssertEqual(error?.code, .badLabel)
        XCTAssertTrue(error?.description.contains("image 1 (key img_001)") == true, error?.description ?? "")

        b = good
        b[entry(3) + 22] = 1  // channels
        XCTAssertEqual(try openError(resealed(b))?.code, .badIndex)

        b = good
        b[entry(0) + 8] = 0; b[entry(0) + 9] = 0  // width 0
        XCTAssertEqual(try openError(resealed(b))?.code, .badIndex)

        // Keys swapped so they are no longer ascending (same bytes, same lengths).
        b = good
        let keysStart = indexOffset + 4 * 32
        b[keysStart + 6] = UInt8(ascii: "9")  // img_000 -> img_009, then img_001 follows it
        error = try openError(resealed(b))
        XCTAssertEqual(error?.code, .badKeys)
        XCTAssertEqual(error?.image, 1)

        b = good
        b[keysStart + 2] = 0x0A  // a newline inside key 0
        XCTAssertEqual(try openError(resealed(b))?.code, .badKeys)

        b = good
        b[entry(1) + 16] += 1  // key offset 8 instead of 7: keys no longer packed
        XCTAssertEqual(try openError(resealed(b))?.code, .badIndex)

        b = good
        b[entry(1) + 20] = 6  // key length 6: "img_00" sorts before "img_000" (checked before the packing of image 2)
        XCTAssertEqual(try openError(resealed(b))?.code, .badKeys)

        b = good
        b[b.count - 1] = UInt8(ascii: "x")  // class names no longer end in \n
        XCTAssertEqual(try openError(resealed(b))?.code, .badClasses)
    }

    func testPixelDamageIsFoundOnReadNamingTheImage() throws {
        var b = good!
        let entry = indexOffset + 32 * 2
        let pixelOffset = Int(b.withUnsafeBytes { $0.le(entry, as: UInt64.self) })
        b[pixelOffset + 3] ^= 0x10
        let damaged = folder.file("pixels.tsimg")
        try writeFile(b, damaged)
        let store = try ImageStore(path: damaged)  // opening does not read pixels
        XCTAssertEqual(try store.image(at: 1), try ImageStore(path: path).image(at: 1))
        let error = storeError(try store.image(at: 2))
        XCTAssertEqual(error?.code, .pixelCRC)
        XCTAssertEqual(error?.description, "\(damaged): image 2 (key img_002): [pixel-crc] pixel checksum mismatch")
        XCTAssertEqual(storeError(try store.verifyPixels())?.image, 2)
        // With checks off, the read succeeds (the caller chose to verify once instead).
        XCTAssertNoThrow(try ImageStore(path: damaged, pixelCheck: .never).image(at: 2))
    }

    func testMissingAndNonRegularFiles() throws {
        XCTAssertEqual(storeError(try ImageStore(path: folder.file("nope.tsimg")))?.code, .io)
        XCTAssertEqual(storeError(try ImageStore(path: folder.path))?.code, .io)
    }
}
