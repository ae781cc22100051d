import CZlib
import Foundation
import XCTest
import Augment
@testable import ImageStore

/// IDX files (MNIST / Fashion-MNIST): written here, tiny, plain and gzip'ed; every header claim checked
/// against the bytes present.
final class IdxImportTests: XCTestCase {
    /// An IDX file: magic 00 00 `type` `rank`, big-endian dimensions, then `data`.
    static func idx(type: UInt8 = 0x08, dimensions: [Int], data: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, type, UInt8(dimensions.count)]
        for d in dimensions { bytes += [UInt8(d >> 24 & 0xFF), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF)] }
        return bytes + data
    }

    /// `bytes` gzip'ed with zlib (as MNIST's files are).
    static func gzip(_ bytes: [UInt8], to path: String) throws {
        guard let file = gzopen(path, "wb") else { throw ImageStoreError(.io, "cannot open", file: path) }
        let written = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
        XCTAssertEqual(Int(written), bytes.count)
        XCTAssertEqual(gzclose(file), Z_OK)
    }

    /// Five 3-row × 4-column images whose pixel p of image i is 10·i + p; labels 2 0 1 2 1.
    static let images = (0..<5).flatMap { i in (0..<12).map { UInt8(10 * i + $0) } }
    static let labels: [UInt8] = [2, 0, 1, 2, 1]

    func testPlainAndGzipImportGreyToRGBWithKeysLabelsAndNames() throws {
        let folder = TemporaryFolder("idx")
        try writeFile(Self.idx(dimensions: [5, 3, 4], data: Self.images), folder.file("img"))
        try Self.gzip(Self.idx(dimensions: [5, 3, 4], data: Self.images), to: folder.file("img.gz"))
        try Self.gzip(Self.idx(dimensions: [5], data: Self.labels), to: folder.file("lab.gz"))
        for source in ["img", "img.gz"] {
            let store = folder.file(source + ".tsimg")
            let summary = try IdxImport.importStore(images: folder.file(source), labels: folder.file("lab.gz"), to: store,
                                                    keyPrefix: "fashion", classNames: ["a", "b", "c"])
            XCTAssertEqual(summary.images, 5)
            XCTAssertEqual(summary.labelHistogram, [1, 2, 2])
            let opened = try ImageStore(path: store)
            XCTAssertEqual(opened.count, 5)
            XCTAssertEqual(opened.classNames, ["a", "b", "c"])
            XCTAssertEqual(opened.keys(), ["fashion_00000", "fashion_00001", "fashion_00002", "fashion_00003", "fashion_00004"])
            XCTAssertEqual(opened.labels(), Self.labels.map(Int.init))
            for i in 0..<5 {
                let image = try opened.image(at: i)
                XCTAssertEqual(image.width, 4)
                XCTAssertEqual(image.height, 3)
                XCTAssertEqual(image.pixels, Self.images[(12 * i)..<(12 * i + 12)].flatMap { [$0, $0, $0] }, "image \(i)")
            }
        }
        // Without names C is max label + 1; without labels every image is unlabelled and there are no classes.
        let unnamed = try IdxImport.importStore(images: folder.file("img.gz"), labels: folder.file("lab.gz"), to: folder.file("u.tsimg"))
        XCTAssertEqual(unnamed.labelHistogram, [1, 2, 2])
        XCTAssertEqual(try ImageStore(path: folder.file("u.tsimg")).keys().first, "idx_00000")
        try IdxImport.importStore(images: folder.file("img"), to: folder.file("n.tsimg"))
        let noLabels = try ImageStore(path: folder.file("n.tsimg"))
        XCTAssertEqual(noLabels.classCount, 0)
        XCTAssertEqual(noLabels.labels(), [-1, -1, -1, -1, -1])
    }

    func testSkipAndLimitKeepARangeAndStillCheckBothFilesWhole() throws {
        let folder = TemporaryFolder("idx-limit")
        try Self.gzip(Self.idx(dimensions: [5, 3, 4], data: Self.images), to: folder.file("img.gz"))
        try writeFile(Self.idx(dimensions: [5], data: Self.labels), folder.file("lab"))
        let summary = try IdxImport.importStore(images: folder.file("img.gz"), labels: folder.file("lab"), to: folder.file("l.tsimg"),
                                                limit: 2)
        XCTAssertEqual(summary.images, 2)
        XCTAssertEqual(summary.labelHistogram, [1, 0, 1], "C comes from the whole label file (max label 2)")
        let store = try ImageStore(path: folder.file("l.tsimg"))
        XCTAssertEqual(store.keys(), ["idx_00000", "idx_00001"])
        XCTAssertEqual(try store.image(at: 1).pixels, Self.images[12..<24].flatMap { [$0, $0, $0] })
        // A file cut inside an image past the limit is still an error, and no store is written.
        try writeFile(Self.idx(dimensions: [5, 3, 4], data: Array(Self.images.prefix(50))), folder.file("cut"))
        let error = storeError(try IdxImport.importStore(images: folder.file("cut"), to: folder.file("c.tsimg"), limit: 2))
        XCTAssertEqual(error?.code, .badInput)
        XCTAssertEqual(error?.image, 4)
        XCTAssertEqual(error?.description, "\(folder.file("cut")): image 4: [bad-input] the data ends inside image 4 (the header says 5 images of 3x4)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("c.tsimg")))
        XCTAssertEqual(storeError(try IdxImport.importStore(images: folder.file("img.gz"), to: folder.file("z.tsimg"), limit: 0))?.code,
                       .invalidArgument)
        // skip + limit: images 2 and 3, keys numbered as in the file (so two cuts of one file never share a key).
        let middle = try IdxImport.importStore(images: folder.file("img.gz"), labels: folder.file("lab"), to: folder.file("m.tsimg"),
                                               skip: 2, limit: 2)
        XCTAssertEqual(middle.images, 2)
        let cutOut = try ImageStore(path: folder.file("m.tsimg"))
        XCTAssertEqual(cutOut.keys(), ["idx_00002", "idx_00003"])
        XCTAssertEqual(cutOut.labels(), [1, 2])
        XCTAssertEqual(try cutOut.image(at: 0).pixels, Self.images[24..<36].flatMap { [$0, $0, $0] })
        XCTAssertEqual(try IdxImport.importStore(images: folder.file("img.gz"), to: folder.file("tail.tsimg"), skip: 3).images, 2)
        XCTAssertEqual(storeError(try IdxImport.importStore(images: folder.file("img.gz"), to: folder.file("none.tsimg"), skip: 5))?.code,
                       .invalidArgument)
        XCTAssertEqual(storeError(try IdxImport.importStore(images: folder.file("cut"), to: folder.file("c2.tsimg"), skip: 4))?.image, 4)
        // A limit above N imports all N.
        XCTAssertEqual(try IdxImport.importStore(images: folder.file("img.gz"), to: folder.file("all.tsimg"), limit: 99).images, 5)
    }

    func testEveryHeaderClaimIsCheckedAgainstTheBytes() throws {
        let folder = TemporaryFolder("idx-bad")
        let good = Self.idx(dimensions: [5, 3, 4], data: Self.images)
        try writeFile(Self.idx(dimensions: [5], data: Self.labels), folder.file("lab"))
        func message(_ bytes: [UInt8], labels: [UInt8]? = nil, names: [String] = [], gzip: Bool = false) throws -> String? {
            let path = folder.file("case")
            if gzip { try Self.gzip(bytes, to: path) } else { try writeFile(bytes, path) }
            var labelsPath: String?
            if let labels {
                labelsPath = folder.file("case-labels")
                try writeFile(labels, labelsPath!)
            }
            let error = storeError(try IdxImport.importStore(images: path, labels: labelsPath, to: folder.file("out.tsimg"), classNames: names))
            XCTAssertEqual(error?.code, .badInput)
            XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("out.tsimg")))
            return error?.description.replacingOccurrences(of: folder.path + "/", with: "")
        }
        XCTAssertEqual(try message([0, 0]), "case: [bad-input] not an IDX file: 2 bytes, shorter than the 4-byte magic")
        XCTAssertEqual(try message([0x00, 0x01, 8, 3] + good.dropFirst(4)), "case: [bad-input] not an IDX file: magic 00 01 08 03, expected 00 00 08 03")
        XCTAssertEqual(try message([0x1F, 0x8B, 8, 3] + good.dropFirst(4)), "case: [bad-input] cannot decompress: header crc mismatch",
                       "what looks like gzip is read as gzip")
        XCTAssertEqual(try message(Array("P5\n3 4\n255\n".utf8)), "case: [bad-input] not an IDX file: magic 50 35 0a 33, expected 00 00 08 03")
        XCTAssertEqual(try message(Self.idx(type: 0x0D, dimensions: [5, 3, 4], data: [])),
                       "case: [bad-input] elements are float32 (type 0xd); only unsigned bytes (0x08) are imported")
        XCTAssertEqual(try message(Self.idx(dimensions: [5, 12], data: Self.images)),
                       "case: [bad-input] 2 dimensions; images [N, rows, columns] need 3 (magic 00 00 08 03)")
        XCTAssertEqual(try message(Array(good.prefix(10))), "case: [bad-input] the header ends inside its 3 dimensions")
        XCTAssertEqual(try message(Self.idx(dimensions: [0, 3, 4], data: [])), "case: [bad-input] the header says 0 images")
        XCTAssertEqual(try message(Self.idx(dimensions: [5, 70000, 4], data: [])), "case: [bad-input] image size 4x70000 is outside 1...65535")
        XCTAssertEqual(try message(Self.idx(dimensions: [5, 9000, 9000], data: [])),
                       "case: [bad-input] image size 9000x9000 is over the limit of 67108864 pixels")
        // A header claiming 4 billion images of 8192 x 8192 over 12 bytes of data: an error at once, nothing allocated for the claim.
        XCTAssertEqual(try message(Self.idx(dimensions: [0xFFFF_FFFF, 8192, 8192], data: Array(repeating: 1, count: 12))),
                       "case: image 0: [bad-input] the data ends inside image 0 (the header says 4294967295 images of 8192x8192)")
        XCTAssertEqual(try message(Array(good.dropLast(1))), "case: image 4: [bad-input] the data ends inside image 4 (the header says 5 images of 3x4)")
        XCTAssertEqual(try message(good + [0]), "case: [bad-input] the data goes on after the last image (the header says 5 images of 3x4)")
        XCTAssertEqual(try message(good + [0], gzip: true), "case: [bad-input] the data goes on after the last image (the header says 5 images of 3x4)")
        // Labels: type, rank, count, length, values.
        XCTAssertEqual(try message(good, labels: Self.idx(dimensions: [4], data: Array(Self.labels.prefix(4)))),
                       "case-labels: [bad-input] the header says 4 labels, the images file holds 5 images")
        XCTAssertEqual(try message(good, labels: Self.idx(dimensions: [5, 1], data: Self.labels)),
                       "case-labels: [bad-input] 2 dimensions; labels [N] need 1 (magic 00 00 08 01)")
        XCTAssertEqual(try message(good, labels: Self.idx(dimensions: [5], data: Array(Self.labels.prefix(3)))),
                       "case-labels: [bad-input] the data ends after 3 of the header's 5 labels")
        XCTAssertEqual(try message(good, labels: Self.idx(dimensions: [5], data: Self.labels + [7])),
                       "case-labels: [bad-input] the data goes on after the header's 5 labels")
        XCTAssertEqual(try message(good, labels: Self.idx(dimensions: [5], data: Self.labels), names: ["a", "b"]),
                       "case-labels: image 0: [bad-input] label 2 of image 0 is not below the 2 class names")
    }

    /// gzip damage: a cut stream and a flipped byte are decompression errors (zlib's CRC-32 and length
    /// checks included), never a short store.
    func testDamagedGzipIsAnError() throws {
        let folder = TemporaryFolder("idx-gzip")
        try Self.gzip(Self.idx(dimensions: [5, 3, 4], data: Self.images), to: folder.file("img.gz"))
        let compressed = try readFile(folder.file("img.gz"))
        try writeFile(Array(compressed.dropLast(12)), folder.file("cut.gz"))
        var error = storeError(try IdxImport.importStore(images: folder.file("cut.gz"), to: folder.file("a.tsimg")))
        XCTAssertEqual(error?.code, .badInput)
        XCTAssertTrue(error?.message.contains("cannot decompress") == true || error?.message.contains("the data ends") == true, "\(String(describing: error))")
        var flipped = compressed
        flipped[compressed.count - 6] ^= 0x01  // inside the trailer's CRC-32
        try writeFile(flipped, folder.file("crc.gz"))
        error = storeError(try IdxImport.importStore(images: folder.file("crc.gz"), to: folder.file("b.tsimg")))
        XCTAssertEqual(error?.code, .badInput)
        XCTAssertTrue(error?.message.hasPrefix("cannot decompress") == true, "\(String(describing: error))")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("b.tsimg")))
        XCTAssertEqual(storeError(try IdxImport.importStore(images: folder.file("missing.gz"), to: folder.file("c.tsimg")))?.code, .io)
    }
}
