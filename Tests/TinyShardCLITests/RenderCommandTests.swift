import Augment
import Foundation
import ImageStore
import ShardFormat
import Tensor
import XCTest

/// `tinyshard render` (--key, --grid, --range), `teacher --recipe tinyvit-mix` with an external teacher and
/// `dump --dense`, on a teacher pass over 12 digits. The external teacher is a shell loop that answers
/// every batch with the same logits file (batches of 4, so every batch has 4 rows).
final class RenderCommandTests: XCTestCase {
    static let digits = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Tools/data/digits.csv.gz").path

    private func teacherPass(_ folder: TemporaryFolder) throws -> (store: String, shards: String) {
        guard FileManager.default.fileExists(atPath: Self.digits) else { throw XCTSkip("no \(Self.digits)") }
        let store = folder.file("digits.tsimg")
        let writer = try ImageStoreWriter(path: store, classNames: DigitsImport.classNames)
        for digit in try DigitsImport.read(Self.digits, upscale: 2).prefix(12) {
            try writer.append(key: digit.key, label: digit.label, image: digit.image)
        }
        _ = try writer.finish()
        let logits = try Tensor(shape: [4, 10], values: (0..<40).map { Float($0 % 10) * 0.3 - Float($0 / 10) })
        try NPY.write(logits, to: URL(fileURLWithPath: folder.file("logits.npy")))
        let teacher = "while read a b; do cp \(folder.file("logits.npy")) \"$b\"; echo ok; done"
        let shards = folder.file("shards")
        let result = try CLI.run(["teacher", "--images", store, "--external", teacher, "--image-size", "16",
                                  "--out", shards, "--epochs", "2", "--k", "3", "--batch", "4", "--held-out", "0",
                                  "--recipe", "tinyvit-mix", "--seed", "3"], in: folder)
        XCTAssertEqual(result.status, 0, result.stderr)
        return (store, shards)
    }

    func testRenderKeyGridRangeAndDenseDump() throws {
        let folder = TemporaryFolder("render")
        let (store, shards) = try teacherPass(folder)
        let dataset = try ShardDataset(directory: shards)
        let shard = dataset.shards(epoch: 1)[0]
        var mixed = 0
        for ordinal in 0..<shard.recordCount where try shard.record(at: ordinal).augmentation[32] != 0 { mixed += 1 }
        XCTAssertGreaterThan(mixed, 0, "--recipe tinyvit-mix draws mixup/cutmix")

        let views = folder.file("views.npy")
        let range = try CLI.run(["render", "--images", store, "--shards", shards, "--epoch", "1", "--range", "0..<12",
                                 "--out", views], in: folder)
        XCTAssertEqual(range.status, 0, range.stderr)
        XCTAssertTrue(range.stdout.contains("wrote 12 views"), range.stdout)
        let stack = try Data(contentsOf: URL(fileURLWithPath: views))
        XCTAssertTrue(String(decoding: stack.prefix(80), as: UTF8.self).contains("'shape': (12, 16, 16, 3)"))
        let pixels = [UInt8](stack.suffix(12 * 16 * 16 * 3))

        // --key writes the same view of that record as a PNG.
        let record = try shard.record(at: 4)
        let key = try dataset.keys.key(Int(record.sampleID))
        let png = folder.file("one.png")
        let one = try CLI.run(["render", "--images", store, "--shards", shards, "--epoch", "1", "--key", key,
                               "--out", png], in: folder)
        XCTAssertEqual(one.status, 0, one.stderr)
        XCTAssertTrue(one.stdout.contains("view of \(key)"), one.stdout)
        let decoded = try Data(contentsOf: URL(fileURLWithPath: png)).withUnsafeBytes { try PNGCodec.decode($0, name: png) }
        XCTAssertEqual(decoded.pixels, Array(pixels[(4 * 768)..<(5 * 768)]))

        let sheet = folder.file("sheet.png")
        let grid = try CLI.run(["render", "--images", store, "--shards", shards, "--epoch", "0", "--grid", "6",
                                "--out", sheet], in: folder)
        XCTAssertEqual(grid.status, 0, grid.stderr)
        let image = try Data(contentsOf: URL(fileURLWithPath: sheet)).withUnsafeBytes { try PNGCodec.decode($0, name: sheet) }
        XCTAssertEqual(image.width, 3 * (96 + 6) + 6)

        // dump --dense: the printed records' dense rows, as the cursor builds them.
        let dense = folder.file("dense.npy")
        let dump = try CLI.run(["dump", shards, "--epoch", "1", "--range", "2..<5", "--dense", dense], in: folder)
        XCTAssertEqual(dump.status, 0, dump.stderr)
        XCTAssertEqual(dump.stdout.split(separator: "\n").count, 3)
        let rows = try NPY.read(URL(fileURLWithPath: dense))
        XCTAssertEqual(rows.shape, [3, 10])
        var expected = [Float](repeating: 0, count: 30)
        try expected.withUnsafeMutableBufferPointer { try shard.makeCursor().dense(2..<5, into: $0) }
        XCTAssertEqual((0..<30).map { rows[flat: $0].bitPattern }, expected.map(\.bitPattern))
    }

    func testRenderUsageAndInputErrorsAreOneLine() throws {
        let folder = TemporaryFolder("render-errors")
        let (store, shards) = try teacherPass(folder)
        func check(_ arguments: [String], _ fragment: String) throws {
            let result = try CLI.run(["render"] + arguments, in: folder)
            XCTAssertEqual(result.status, 2, result.stderr)
            XCTAssertEqual(result.stderrLines.count, 1, result.stderr)
            XCTAssertTrue(result.stderr.contains(fragment), "\(fragment) not in \(result.stderr)")
        }
        let base = ["--images", store, "--shards", shards]
        try check(base + ["--epoch", "0", "--out", folder.file("x.png")], "exactly one of --key, --grid N or --range")
        try check(base + ["--epoch", "0", "--range", "0..<3", "--out", folder.file("x.png")], "give --out FILE.npy")
        try check(base + ["--epoch", "0", "--key", "digits_00001", "--out", folder.file("x.npy")], "give --out FILE.png")
        try check(base + ["--epoch", "5", "--key", "digits_00001", "--out", folder.file("x.png")], "no epoch 5")
        try check(base + ["--epoch", "0", "--grid", "4", "--rank", "3", "--out", folder.file("x.png")], "no shard of rank 3")
        try check(base + ["--epoch", "0", "--range", "50..<60", "--out", folder.file("x.npy")], "no records in 50..<60")
        try check(["--images", folder.file("missing.tsimg"), "--shards", shards, "--epoch", "0", "--key", "k",
                   "--out", folder.file("x.png")], "missing.tsimg")
    }
}
