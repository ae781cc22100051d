import Foundation
import XCTest
import Augment
import ImageStore
import Tensor

/// `tinyshard images import | inspect | verify` through the built binary, then `train` → `teacher` →
/// `train` on the imported store: a user's own PNG/JPEG photos all the way to a student.
final class ImagesCommandTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/fixtures/augment/aug_reference.safetensors").path

    /// The three real photos of ../shared/fixtures/augment (uint8 HWC), or a skip when the folder is absent.
    static func photos() throws -> [String: RGBImage] {
        guard FileManager.default.fileExists(atPath: fixtures) else {
            throw XCTSkip("shared fixture \(fixtures) is absent (the shared/ folder is not next to this package); skipping")
        }
        let file = try SafeTensors(contentsOf: URL(fileURLWithPath: fixtures))
        var photos: [String: RGBImage] = [:]
        for name in ["astronaut", "chelsea", "coffee"] {
            guard let entry = file.integers[name + ".source"], entry.shape.count == 3, entry.shape[2] == 3 else {
                throw XCTSkip("\(fixtures) has no uint8 HWC entry \(name).source")
            }
            photos[name] = try RGBImage(width: entry.shape[1], height: entry.shape[0], pixels: entry.values.map { UInt8($0) })
        }
        return photos
    }

    /// ROOT/CLASS/{0.png, 1.jpg, 2.png, 3.jpeg}: the photo, mirrored (JPEG q92), a centre crop (PNG) and the
    /// crop mirrored (JPEG q80, 4:4:4) — written with the project's own codecs (libpng, libturbojpeg).
    static func writePhotoTree(_ root: String, _ photos: [String: RGBImage]) throws -> [String: RGBImage] {
        var written: [String: RGBImage] = [:]
        for (name, photo) in photos {
            try FileManager.default.createDirectory(atPath: root + "/" + name, withIntermediateDirectories: true)
            let crop = try cropped(photo, inset: 0.1)
            let files: [(String, RGBImage, [UInt8])] = [
                ("0.png", photo, try PNGCodec.encode(photo)),
                ("1.jpg", try mirrored(photo), try JPEGCodec.encode(try mirrored(photo), quality: 92)),
                ("2.png", crop, try PNGCodec.encode(crop)),
                ("3.jpeg", try mirrored(crop), try JPEGCodec.encode(try mirrored(crop), quality: 80, subsampling: .s444)),
            ]
            for (file, image, bytes) in files {
                try Data(bytes).write(to: URL(fileURLWithPath: "\(root)/\(name)/\(file)"))
                written["\(name)/\(file)"] = image
            }
        }
        return written
    }

    func testRealPhotoTreeImportsVerifiesAndTrainsAt224() throws {
        let photos = try Self.photos()
        let folder = TemporaryFolder("images")
        let root = folder.file("photos")
        let sources = try Self.writePhotoTree(root, photos)

        // Raw import: PNG pixels exactly, JPEG as libturbojpeg decodes the file.
        let raw = try CLI.run(["images", "import", root, "--out", folder.file("raw.tsimg")], in: folder)
        XCTAssertEqual(raw.status, 0, raw.stderr)
        XCTAssertTrue(raw.stdout.hasPrefix("imported 12 images in 3 classes"), raw.stdout)
        XCTAssertTrue(raw.stdout.contains("classes: astronaut 4, chelsea 4, coffee 4"), raw.stdout)
        let rawStore = try ImageStore(path: folder.file("raw.tsimg"))
        XCTAssertEqual(rawStore.kind, .raw)
        XCTAssertEqual(try rawStore.image(at: XCTUnwrap(rawStore.index(ofKey: "chelsea/0.png"))), sources["chelsea/0.png"])
        let jpegFile = try ImageDecoding.decode(file: root + "/coffee/1.jpg")
        XCTAssertEqual(try rawStore.image(at: XCTUnwrap(rawStore.index(ofKey: "coffee/1.jpg"))), jpegFile)

        // JPEG store at max side 256: every photo is larger, so all 12 are resized; close to the source.
        let store = folder.file("photos.tsimg")
        let jpeg = try CLI.run(["images", "import", root, "--out", store, "--encoding", "jpeg", "--max-side", "256", "--json"], in: folder)
        XCTAssertEqual(jpeg.status, 0, jpeg.stderr)
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(jpeg.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(summary["images"] as? Int, 12)
        XCTAssertEqual(summary["resized"] as? Int, 12)
        XCTAssertEqual((summary["encoding"] as? [String: Any])?["quality"] as? Int, 90)
        XCTAssertLessThan(try XCTUnwrap(summary["bytes_per_image"] as? Double), Double(256 * 256 * 3) / 4)
        let jpegStore = try ImageStore(path: store)
        XCTAssertEqual(jpegStore.kind, .jpeg)
        let index = try XCTUnwrap(jpegStore.index(ofKey: "astronaut/2.png"))
        let expected = try MaxSideResize.apply(XCTUnwrap(sources["astronaut/2.png"]), maxSide: 256)
        let stored = try jpegStore.image(at: index)
        XCTAssertEqual(stored.width, expected.width)
        let error = zip(stored.pixels, expected.pixels).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }
        XCTAssertLessThan(Double(error) / Double(expected.pixels.count), 3, "mean absolute error of the q90 JPEG")

        let inspect = try CLI.run(["images", "inspect", store], in: folder)
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("version 2.0, JPEG (decoded on read): 12 images, 3 classes"), inspect.stdout)
        XCTAssertTrue(inspect.stdout.contains("width 256-256, height 170-256"), inspect.stdout)
        let verify = try CLI.run(["images", "verify", store, "--json"], in: folder)
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
        XCTAssertTrue(verify.stdout.hasPrefix("{\"ok\":true"), verify.stdout)

        // Train at 224 px on it: weights from a hard-label run, the teacher pass, then a student off the
        // shards. By default a small TinyViT at 224 px (~30 s in a debug build); TINYSHARD_TEST_ARCH=5m runs
        // the 5M config instead (minutes per step in a debug build, so not in CI).
        var arch = ProcessInfo.processInfo.environment["TINYSHARD_TEST_ARCH"] ?? ""
        if arch.isEmpty {
            arch = folder.file("small.json")
            try Data(#"{"embed_dims": [16, 32, 48, 64], "depths": [1, 1, 1, 1], "num_heads": [1, 2, 3, 4], "window_sizes": [7, 7, 14, 7], "num_classes": 3, "img_size": 224}"#.utf8)
                .write(to: URL(fileURLWithPath: arch))
        }
        let teacherRun = folder.file("teacher-run")
        let hard = try CLI.run(["train", "--images", store, "--arch", arch, "--hard-labels", "--out", teacherRun, "--epochs", "1", "--batch", "2"], in: folder)
        XCTAssertEqual(hard.status, 0, hard.stderr)
        let shards = folder.file("shards")
        let teacher = try CLI.run(["teacher", "--images", store, "--weights", teacherRun + "/model.safetensors", "--arch", arch,
                                   "--out", shards, "--epochs", "1", "--k", "3", "--batch", "2"], in: folder)
        XCTAssertEqual(teacher.status, 0, teacher.stderr)
        let trainCount = jpegStore.split(heldOutFraction: 0.2).train.count
        XCTAssertTrue(teacher.stdout.hasPrefix("wrote \(trainCount) records"), teacher.stdout)
        XCTAssertEqual(try CLI.run(["verify", shards], in: folder).status, 0)
        let student = folder.file("student")
        let train = try CLI.run(["train", "--images", store, "--shards", shards, "--arch", arch, "--out", student,
                                 "--epochs", "1", "--batch", "2"], in: folder)
        XCTAssertEqual(train.status, 0, train.stderr)
        XCTAssertTrue(train.stdout.contains("run folder: \(student) (1/1 epochs"), train.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: student + "/model.safetensors"))
    }

    /// Files that cannot be imported are skipped with their reason (or stop the import with --strict);
    /// bad stores and bad arguments give one line naming the file, and verify's exit codes.
    func testBadInputIsSkippedOrOneLineNamingTheFile() throws {
        let folder = TemporaryFolder("images-bad")
        let root = folder.file("tree")
        let fm = FileManager.default
        for name in ["cats", "dogs", "empty"] { try fm.createDirectory(atPath: root + "/" + name, withIntermediateDirectories: true) }
        let image = try RGBImage(width: 40, height: 30, pixels: (0..<(40 * 30 * 3)).map { UInt8($0 % 251) })
        try Data(try PNGCodec.encode(image)).write(to: URL(fileURLWithPath: root + "/cats/a.png"))
        try Data(try JPEGCodec.encode(image)).write(to: URL(fileURLWithPath: root + "/dogs/b.jpg"))
        try Data(try PNGCodec.encode(image).prefix(40)).write(to: URL(fileURLWithPath: root + "/cats/cut.png"))
        try Data("not a jpeg".utf8).write(to: URL(fileURLWithPath: root + "/dogs/text.jpg"))
        var huge = try JPEGCodec.encode(image)   // its frame header claims 60000x60000
        let sof = huge.indices.first { huge[$0] == 0xFF && huge[$0 + 1] == 0xC0 }!
        huge.replaceSubrange((sof + 5)..<(sof + 9), with: [0xEA, 0x60, 0xEA, 0x60])
        try Data(huge).write(to: URL(fileURLWithPath: root + "/dogs/huge.jpg"))

        let store = folder.file("s.tsimg")
        let result = try CLI.run(["images", "import", root, "--out", store], in: folder)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("imported 2 images in 3 classes"), result.stdout)
        XCTAssertTrue(result.stdout.contains("skipped 3 files:"), result.stdout)
        XCTAssertTrue(result.stdout.contains("cats/cut.png: [bad-input]"), result.stdout)
        XCTAssertTrue(result.stdout.contains("dogs/huge.jpg: [bad-input] JPEG size 60000x60000 is over the limit of 67108864 pixels"), result.stdout)
        XCTAssertTrue(result.stdout.contains("dogs/text.jpg: [bad-input]"), result.stdout)
        XCTAssertTrue(result.stdout.contains("empty classes (kept, no images): empty"), result.stdout)

        let strict = try CLI.run(["images", "import", root, "--out", folder.file("t.tsimg"), "--strict"], in: folder)
        XCTAssertEqual(strict.status, 2)
        XCTAssertEqual(strict.stderrLines.count, 1, strict.stderr)
        XCTAssertTrue(strict.stderr.contains(root + "/cats/cut.png: [bad-input]"), strict.stderr)
        XCTAssertFalse(fm.fileExists(atPath: folder.file("t.tsimg")))
        let again = try CLI.run(["images", "import", root, "--out", store], in: folder)
        XCTAssertEqual(again.status, 2)
        XCTAssertTrue(again.stderr.contains("exists; pass --overwrite"), again.stderr)

        // .npy whose labels do not match the images.
        try Data(npy("|u1", [2, 3, 4, 3], [UInt8](repeating: 9, count: 72))).write(to: URL(fileURLWithPath: folder.file("x.npy")))
        try Data(npy("|u1", [3], [0, 1, 1])).write(to: URL(fileURLWithPath: folder.file("y.npy")))
        let npyRun = try CLI.run(["images", "import", folder.file("x.npy"), "--labels", folder.file("y.npy"), "--out", folder.file("n.tsimg")], in: folder)
        XCTAssertEqual(npyRun.status, 2)
        XCTAssertEqual(npyRun.stderr, "tinyshard: error: \(folder.file("y.npy")): [bad-input] labels must have shape [2], got [3]\n")

        // verify: 0 clean, 1 problems (each bad image named), 2 unreadable.
        XCTAssertEqual(try CLI.run(["images", "verify", store], in: folder).status, 0)
        let jpegStore = folder.file("j.tsimg")
        XCTAssertEqual(try CLI.run(["images", "import", root, "--out", jpegStore, "--encoding", "jpeg"], in: folder).status, 0)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: jpegStore)))
        bytes[64 + 300] ^= 0x01  // inside image 0's JPEG
        try Data(bytes).write(to: URL(fileURLWithPath: jpegStore))
        let damaged = try CLI.run(["images", "verify", jpegStore], in: folder)
        XCTAssertEqual(damaged.status, 1)
        XCTAssertTrue(damaged.stdout.contains("FAILED: 1 problem"), damaged.stdout)
        XCTAssertTrue(damaged.stdout.contains("\(jpegStore): image 0 (key cats/a.png): [pixel-crc] JPEG checksum mismatch"), damaged.stdout)
        let missing = try CLI.run(["images", "verify", folder.file("nope.tsimg")], in: folder)
        XCTAssertEqual(missing.status, 2)
        XCTAssertEqual(missing.stderr, "tinyshard: error: \(folder.file("nope.tsimg")): [io] no such file\n")
        let notAStore = try CLI.run(["images", "verify", folder.file("x.npy"), "--json"], in: folder)
        XCTAssertEqual(notAStore.status, 1)
        XCTAssertTrue(notAStore.stdout.contains("\"code\":\"bad-magic\""), notAStore.stdout)
        let usage = try CLI.run(["images", "import", root, "--out", folder.file("u.tsimg"), "--jpeg-quality", "80"], in: folder)
        XCTAssertEqual(usage.status, 2)
        XCTAssertTrue(usage.stderr.contains("--jpeg-quality and --jpeg-subsampling need --encoding jpeg"), usage.stderr)
    }

    /// `images import --idx IMAGES --labels LABELS` (MNIST's layout, plain here; the library tests cover
    /// gzip): the summary, --limit, --class-names, and one-line errors naming the file.
    func testIdxImportFromTheCommandLine() throws {
        let folder = TemporaryFolder("images-idx")
        func idx(_ dimensions: [Int], _ data: [UInt8]) -> [UInt8] {
            [0, 0, 8, UInt8(dimensions.count)] + dimensions.flatMap { d in [24, 16, 8, 0].map { UInt8(d >> $0 & 0xFF) } } + data
        }
        let pixels = (0..<(6 * 28 * 28)).map { UInt8($0 % 256) }
        try Data(idx([6, 28, 28], pixels)).write(to: URL(fileURLWithPath: folder.file("train-images-idx3-ubyte")))
        try Data(idx([6], [9, 0, 3, 9, 1, 0])).write(to: URL(fileURLWithPath: folder.file("train-labels-idx1-ubyte")))
        let names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
        try names.joined(separator: "\n").write(toFile: folder.file("names.txt"), atomically: true, encoding: .utf8)
        let store = folder.file("f.tsimg")
        let result = try CLI.run(["images", "import", "--idx", folder.file("train-images-idx3-ubyte"), "--labels",
                                  folder.file("train-labels-idx1-ubyte"), "--class-names", folder.file("names.txt"),
                                  "--key-prefix", "fashion", "--limit", "4", "--out", store], in: folder)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.hasPrefix("imported 4 images in 10 classes"), result.stdout)
        XCTAssertTrue(result.stdout.contains("classes: T-shirt/top 1, Trouser 0, Pullover 0, Dress 1,"), result.stdout)
        let opened = try ImageStore(path: store)
        XCTAssertEqual(opened.keys(), ["fashion_00000", "fashion_00001", "fashion_00002", "fashion_00003"])
        XCTAssertEqual(opened.labels(), [9, 0, 3, 9])
        XCTAssertEqual(try opened.image(at: 1).pixels, pixels[784..<1568].flatMap { [$0, $0, $0] })
        XCTAssertEqual(try CLI.run(["images", "verify", store], in: folder).status, 0)

        // A truncated file: one line naming it and the image; no store.
        try Data(idx([6, 28, 28], Array(pixels.prefix(3000)))).write(to: URL(fileURLWithPath: folder.file("cut")))
        let cut = try CLI.run(["images", "import", "--idx", folder.file("cut"), "--out", folder.file("c.tsimg")], in: folder)
        XCTAssertEqual(cut.status, 2)
        XCTAssertEqual(cut.stderr, "tinyshard: error: \(folder.file("cut")): image 3: [bad-input] the data ends inside image 3 (the header says 6 images of 28x28)\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("c.tsimg")))
        // Labels that do not match the images.
        try Data(idx([5], [1, 2, 3, 4, 5])).write(to: URL(fileURLWithPath: folder.file("five")))
        let mismatch = try CLI.run(["images", "import", "--idx", folder.file("train-images-idx3-ubyte"), "--labels", folder.file("five"),
                                    "--out", folder.file("m.tsimg")], in: folder)
        XCTAssertEqual(mismatch.status, 2)
        XCTAssertEqual(mismatch.stderr, "tinyshard: error: \(folder.file("five")): [bad-input] the header says 5 labels, the images file holds 6 images\n")
        // Usage: SOURCE and --idx together, --limit without --idx.
        let both = try CLI.run(["images", "import", folder.file("names.txt"), "--idx", folder.file("cut"), "--out", folder.file("b.tsimg")], in: folder)
        XCTAssertEqual(both.status, 2)
        XCTAssertTrue(both.stderr.contains("give SOURCE or --idx IMAGES, not both"), both.stderr)
        let limit = try CLI.run(["images", "import", folder.file("names.txt"), "--format", "npy", "--limit", "3", "--out", folder.file("l.tsimg")],
                                in: folder)
        XCTAssertEqual(limit.status, 2)
        XCTAssertTrue(limit.stderr.contains("--limit and --skip are for IDX input"), limit.stderr)
    }

    static func cropped(_ image: RGBImage, inset: Double) throws -> RGBImage {
        let dx = Int(Double(image.width) * inset), dy = Int(Double(image.height) * inset)
        let width = image.width - 2 * dx, height = image.height - 2 * dy
        var pixels: [UInt8] = []
        pixels.reserveCapacity(width * height * 3)
        for y in dy..<(dy + height) {
            let start = (y * image.width + dx) * 3
            pixels += image.pixels[start..<(start + width * 3)]
        }
        return try RGBImage(width: width, height: height, pixels: pixels)
    }

    static func mirrored(_ image: RGBImage) throws -> RGBImage {
        var pixels = image.pixels
        for y in 0..<image.height {
            for x in 0..<image.width {
                let from = (y * image.width + (image.width - 1 - x)) * 3, to = (y * image.width + x) * 3
                for c in 0..<3 { pixels[to + c] = image.pixels[from + c] }
            }
        }
        return try RGBImage(width: image.width, height: image.height, pixels: pixels)
    }

    /// A version 1.0 `.npy` file.
    func npy(_ descr: String, _ shape: [Int], _ data: [UInt8]) -> [UInt8] {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)] + Array(header.utf8) + data
    }
}
