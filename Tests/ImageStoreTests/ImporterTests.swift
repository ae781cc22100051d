import Foundation
import XCTest
import Augment
@testable import ImageStore

/// The three importers: digits CSV, ImageFolder of PNG/JPEG, `.npy` arrays.
final class ImporterTests: XCTestCase {
    func testDigitsImport() throws {
        guard let csv = SharedData.digits else {
            throw XCTSkip("digits.csv.gz not found at \(SharedData.root.path); skipping the digits import")
        }
        let folder = TemporaryFolder()
        let path = folder.file("digits.tsimg")
        let summary = try DigitsImport.importStore(from: csv, to: path, upscale: 4)
        XCTAssertEqual(summary.images, 1797)
        // scikit-learn's load_digits class counts.
        XCTAssertEqual(summary.labelHistogram, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
        print("digits: \(summary.images) images, labels \(summary.labelHistogram), \(summary.bytes) bytes")
        let store = try ImageStore(path: path)
        XCTAssertEqual(store.count, 1797)
        XCTAssertEqual(store.classNames, DigitsImport.classNames)
        XCTAssertEqual(try store.key(at: 0), "digits_00000")
        XCTAssertEqual(try store.key(at: 1796), "digits_01796")
        XCTAssertEqual(store.labelHistogram().counts, summary.labelHistogram)
        // Row 0 of the CSV: 0,0,5,13,9,1,0,0, ... label 0. Pixel (2, 0) is 5 → round(5·255/16) = 80.
        let first = try store.image(at: 0)
        XCTAssertEqual(first.width, 32)
        XCTAssertEqual(try store.label(at: 0), 0)
        XCTAssertTrue(first[8, 0] == (80, 80, 80) && first[11, 3] == (80, 80, 80))   // the 4x4 block of pixel (2, 0)
        XCTAssertTrue(first[12, 0] == (207, 207, 207))                                 // 13 → 207
        XCTAssertTrue(first[0, 0] == (0, 0, 0))
        try store.verifyPixels()
        // Unscaled: 8x8.
        let plain = try DigitsImport.read(csv)
        XCTAssertEqual(plain.count, 1797)
        XCTAssertEqual(plain[0].image.width, 8)
        // The gzip file cut short: an error naming the file, never the digits before the cut.
        let gz = try Data(contentsOf: URL(fileURLWithPath: csv))
        let cut = folder.file("cut.csv.gz")
        try writeFile(Array(gz.prefix(gz.count / 2)), cut)
        XCTAssertEqual(storeError(try DigitsImport.read(cut))?.code, .badInput)
        // A deterministic 20% held-out split.
        let split = store.split(heldOutFraction: 0.2)
        XCTAssertEqual(split, store.split(heldOutFraction: 0.2))
        XCTAssertEqual(split.train.count + split.heldOut.count, 1797)
        XCTAssertEqual(Double(split.heldOut.count) / 1797, 0.2, accuracy: 0.03)
        print("digits split 20%: train \(split.train.count), held out \(split.heldOut.count)")
    }

    func testDigitsCSVErrorsNameTheLine() throws {
        let folder = TemporaryFolder()
        let good = Array(repeating: "0", count: 64).joined(separator: ",") + ",3"
        let csv = folder.file("d.csv")
        try writeFile(Array((good + "\n" + good.replacingOccurrences(of: ",3", with: ",11") + "\n").utf8), csv)
        let error = storeError(try DigitsImport.read(csv))
        XCTAssertEqual(error?.code, .badInput)
        XCTAssertTrue(error?.description.contains("line 2") == true, error?.description ?? "")
        try writeFile(Array((good + "\n0,1\n").utf8), csv)
        XCTAssertTrue(storeError(try DigitsImport.read(csv))?.message.contains("65") == true)
        try writeFile(Array((good.replacingOccurrences(of: "0,", with: "17,", options: .anchored) + "\n").utf8), csv)
        XCTAssertTrue(storeError(try DigitsImport.read(csv))?.message.contains("0...16") == true)
        XCTAssertEqual(storeError(try DigitsImport.read(folder.file("missing.csv")))?.code, .io)
        // A plain (not gzipped) CSV with CRLF line ends reads fine.
        try writeFile(Array((good + "\r\n" + good + "\r\n").utf8), csv)
        XCTAssertEqual(try DigitsImport.read(csv).map(\.label), [3, 3])
    }

    func testImageFolderImport() throws {
        let folder = TemporaryFolder()
        let root = folder.file("train")
        let fm = FileManager.default
        for name in ["dog", "cat", "cat/nested", ".hidden", "empty"] {
            try fm.createDirectory(atPath: root + "/" + name, withIntermediateDirectories: true)
        }
        let a = testImage(width: 10, height: 8, seed: 1), b = testImage(width: 6, height: 9, seed: 2)
        let c = try RGBImage(width: 16, height: 16, pixels: (0..<(16 * 16 * 3)).map { UInt8($0 % 200) })
        try writeFile(try PNGCodec.encode(a), root + "/cat/b.png")
        try writeFile(try PNGCodec.encode(b), root + "/cat/nested/a.PNG")
        let jpeg = try JPEGCodec.encode(c)
        try writeFile(jpeg, root + "/dog/x.jpeg")
        try writeFile(jpeg, root + "/dog/.secret.jpg")
        try writeFile(Array("notes".utf8), root + "/dog/readme.txt")
        try writeFile(try PNGCodec.encode(a), root + "/.hidden/z.png")
        let listing = try ImageFolderImport.scan(root: root)
        XCTAssertEqual(listing.classNames, ["cat", "dog", "empty"])
        XCTAssertEqual(listing.files.map(\.key), ["cat/b.png", "cat/nested/a.PNG", "dog/x.jpeg"])
        XCTAssertEqual(listing.files.map(\.label), [0, 0, 1])
        let path = folder.file("folder.tsimg")
        var ticks = 0
        let summary = try ImageFolderImport.importStore(from: root, to: path) { done, total in
            ticks += 1
            XCTAssertEqual(total, 3)
            XCTAssertEqual(done, ticks)
        }
        XCTAssertEqual(summary.labelHistogram, [2, 1, 0])
        let store = try ImageStore(path: path)
        XCTAssertEqual(store.classNames, ["cat", "dog", "empty"])
        XCTAssertEqual(try store.image(at: 0), a)
        XCTAssertEqual(try store.image(at: 1), b)
        XCTAssertEqual(try store.image(at: 2), try jpeg.withUnsafeBytes { try JPEGCodec.decode($0, name: "x") })
        XCTAssertEqual(store.index(ofKey: "dog/x.jpeg"), 2)

        // A damaged image is skipped with its reason; with strict it stops the import with its path, and
        // leaves no store behind. An empty class is listed (and is an error with strict).
        try writeFile(Array(try PNGCodec.encode(a).prefix(30)), root + "/dog/y.png")
        let skipping = try ImageFolderImport.importStore(from: root, to: folder.file("skip.tsimg"))
        XCTAssertEqual(skipping.images, 3)
        XCTAssertEqual(skipping.skipped.map(\.path), ["dog/y.png"])
        XCTAssertTrue(skipping.skipped[0].reason.hasPrefix("[bad-input]"), skipping.skipped[0].reason)
        XCTAssertEqual(skipping.emptyClasses, ["empty"])
        XCTAssertEqual(try ImageStore(path: folder.file("skip.tsimg")).keys(), ["cat/b.png", "cat/nested/a.PNG", "dog/x.jpeg"])
        let error = storeError(try ImageFolderImport.importStore(from: root, to: folder.file("bad.tsimg"), options: ImportOptions(strict: true)))
        XCTAssertEqual(error?.code, .badInput)
        XCTAssertTrue(error?.description.contains("dog/y.png") == true, error?.description ?? "")
        XCTAssertFalse(fm.fileExists(atPath: folder.file("bad.tsimg")))
        XCTAssertFalse(fm.fileExists(atPath: folder.file("bad.tsimg.partial")))
        try fm.removeItem(atPath: root + "/dog/y.png")
        let empty = storeError(try ImageFolderImport.importStore(from: root, to: folder.file("bad.tsimg"), options: ImportOptions(strict: true)))
        XCTAssertTrue(empty?.description.contains("\"empty\" holds no") == true, empty?.description ?? "")
        // Nothing importable at all is an error even without strict.
        let broken = folder.file("broken")
        try fm.createDirectory(atPath: broken + "/c", withIntermediateDirectories: true)
        try writeFile(Array("not a png".utf8), broken + "/c/1.png")
        let none = storeError(try ImageFolderImport.importStore(from: broken, to: folder.file("none.tsimg")))
        XCTAssertTrue(none?.message.contains("none of the 1 image files") == true, none?.description ?? "")
        XCTAssertEqual(storeError(try ImageFolderImport.scan(root: folder.file("none")))?.code, .io)
    }

    /// --max-side and the JPEG encoding on every importer; several threads write the same bytes as one.
    func testImportOptionsResizeAndEncode() throws {
        let folder = TemporaryFolder()
        let root = folder.file("photos")
        for (i, name) in ["a", "b"].enumerated() {
            try FileManager.default.createDirectory(atPath: root + "/" + name, withIntermediateDirectories: true)
            for j in 0..<5 {
                let image = try RGBImage(width: 30 + 7 * j, height: 20 + 3 * i, pixels: TestJPEG.smooth(width: 30 + 7 * j, height: 20 + 3 * i, seed: j))
                try writeFile(j % 2 == 0 ? try PNGCodec.encode(image) : try JPEGCodec.encode(image, quality: 95), root + "/\(name)/\(j).png")
            }
        }
        let options = ImportOptions(maxSide: 32, encoding: .defaultJPEG, threads: 1)
        let one = try ImageFolderImport.importStore(from: root, to: folder.file("1.tsimg"), options: options)
        var two = options
        two.threads = 2
        try ImageFolderImport.importStore(from: root, to: folder.file("2.tsimg"), options: two)
        XCTAssertEqual(try readFile(folder.file("1.tsimg")), try readFile(folder.file("2.tsimg")))
        XCTAssertEqual(one.resized, 8)  // widths 37, 44, 51, 58 in both classes are over 32
        let store = try ImageStore(path: folder.file("1.tsimg"))
        XCTAssertEqual(store.kind, .jpeg)
        XCTAssertTrue(try store.size(at: 4) == (32, 11))  // a/4.png: 58x20 → 32x11
        // The stored image is the resized source, JPEG-encoded.
        let source = try ImageDecoding.decode(file: root + "/a/4.png")
        let resized = try MaxSideResize.apply(source, maxSide: 32)
        let expected = try JPEGCodec.encode(resized, quality: 90).withUnsafeBytes { try JPEGCodec.decode($0, name: "e") }
        XCTAssertEqual(try store.image(at: 4), expected)

        // Digits and .npy take the same options.
        let csv = folder.file("d.csv")
        try writeFile(Array((Array(repeating: "16", count: 64) + ["3"]).joined(separator: ",").utf8), csv)
        let digits = try DigitsImport.importStore(from: csv, to: folder.file("d.tsimg"), upscale: 8,
                                                  options: ImportOptions(maxSide: 16, encoding: .defaultJPEG))
        XCTAssertEqual(digits.resized, 1)
        XCTAssertTrue(try ImageStore(path: folder.file("d.tsimg")).size(at: 0) == (16, 16))
        try writeFile(npyBytes(descr: "|u1", shape: [2, 4, 6, 3], data: [UInt8](repeating: 77, count: 144)), folder.file("x.npy"))
        try NpyImport.importStore(images: folder.file("x.npy"), to: folder.file("n.tsimg"), options: ImportOptions(maxSide: 3))
        let npy = try ImageStore(path: folder.file("n.tsimg"))
        XCTAssertTrue(try npy.size(at: 1) == (3, 2))
        XCTAssertEqual(try npy.image(at: 1).pixels, [UInt8](repeating: 77, count: 18))
        XCTAssertEqual(storeError(try NpyImport.importStore(images: folder.file("x.npy"), to: folder.file("z.tsimg"),
                                                            options: ImportOptions(maxSide: 0)))?.code, .invalidArgument)
    }

    func testNpyImport() throws {
        let folder = TemporaryFolder()
        let n = 12, h = 5, w = 4
        let rgb = (0..<(n * h * w * 3)).map { UInt8($0 % 256) }
        try writeFile(npyBytes(descr: "|u1", shape: [n, h, w, 3], data: rgb), folder.file("x.npy"))
        var labelData: [UInt8] = []
        for i in 0..<n { labelData += withUnsafeBytes(of: Int64(i % 4).littleEndian, Array.init) }
        try writeFile(npyBytes(descr: "<i8", shape: [n], data: labelData), folder.file("y.npy"))
        let summary = try NpyImport.importStore(images: folder.file("x.npy"), labels: folder.file("y.npy"), to: folder.file("n.tsimg"),
                                                keyPrefix: "cifar")
        XCTAssertEqual(summary.labelHistogram, [3, 3, 3, 3])
        let store = try ImageStore(path: folder.file("n.tsimg"))
        XCTAssertEqual(store.count, n)
        XCTAssertEqual(store.classCount, 4)
        XCTAssertEqual(try store.key(at: 11), "cifar_00011")
        XCTAssertEqual(try store.image(at: 3).pixels, Array(rgb[(3 * h * w * 3)..<(4 * h * w * 3)]))
        XCTAssertEqual(try store.label(at: 7), 3)

        // Grey [N, H, W] without labels.
        let grey = (0..<(3 * 2 * 2)).map { UInt8($0 * 10) }
        try writeFile(npyBytes(descr: "|u1", shape: [3, 2, 2], data: grey), folder.file("g.npy"))
        try NpyImport.importStore(images: folder.file("g.npy"), to: folder.file("g.tsimg"))
        let g = try ImageStore(path: folder.file("g.tsimg"))
        XCTAssertEqual(g.labels(), [-1, -1, -1])
        XCTAssertTrue(try g.image(at: 1)[1, 0] == (50, 50, 50))

        // Wrong dtype, wrong shape, short data, mismatched labels: errors naming the file.
        try writeFile(npyBytes(descr: "<f4", shape: [1, 1, 1, 3], data: [UInt8](repeating: 0, count: 12)), folder.file("f.npy"))
        var error = storeError(try NpyImport.importStore(images: folder.file("f.npy"), to: folder.file("f.tsimg")))
        XCTAssertTrue(error?.description.contains("f.npy") == true && error?.message.contains("uint8") == true, error?.description ?? "")
        try writeFile(npyBytes(descr: "|u1", shape: [2, 2, 2, 4], data: [UInt8](repeating: 0, count: 32)), folder.file("s.npy"))
        XCTAssertEqual(storeError(try NpyImport.importStore(images: folder.file("s.npy"), to: folder.file("s.tsimg")))?.code, .badInput)
        try writeFile(npyBytes(descr: "|u1", shape: [2, 2, 2, 3], data: [UInt8](repeating: 0, count: 20)), folder.file("t.npy"))
        XCTAssertTrue(storeError(try NpyImport.importStore(images: folder.file("t.npy"), to: folder.file("t.tsimg")))?.message.contains("needs 24") == true)
        try writeFile(npyBytes(descr: "<i8", shape: [5], data: [UInt8](repeating: 0, count: 40)), folder.file("l.npy"))
        error = storeError(try NpyImport.importStore(images: folder.file("x.npy"), labels: folder.file("l.npy"), to: folder.file("l.tsimg")))
        XCTAssertTrue(error?.description.contains("l.npy") == true && error?.message.contains("[12]") == true, error?.description ?? "")
    }
}
