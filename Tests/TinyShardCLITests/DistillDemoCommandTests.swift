import Foundation
import XCTest
import ImageStore

/// `tinyshard distill-demo --images STORE`: the main job on a store made by `images import --idx`, at toy
/// size (three 28 px classes told apart by where the bright bar is, tiny models, one epoch each).
final class DistillDemoCommandTests: XCTestCase {
    func testDistillDemoOnAnImportedIdxStore() throws {
        let folder = TemporaryFolder("demo-images")
        let n = 180
        var pixels = [UInt8](repeating: 0, count: n * 28 * 28)
        var labels: [UInt8] = []
        for i in 0..<n {
            let label = i % 3
            labels.append(UInt8(label))
            for y in (label * 9)..<(label * 9 + 9) { for x in 4..<24 { pixels[i * 784 + y * 28 + x] = UInt8(150 + (i * 7 + x) % 100) } }
        }
        func idx(_ dimensions: [Int], _ data: [UInt8]) -> Data {
            Data([0, 0, 8, UInt8(dimensions.count)] + dimensions.flatMap { d in [24, 16, 8, 0].map { UInt8(d >> $0 & 0xFF) } } + data)
        }
        try idx([n, 28, 28], pixels).write(to: URL(fileURLWithPath: folder.file("images")))
        try idx([n], labels).write(to: URL(fileURLWithPath: folder.file("labels")))
        let store = folder.file("bars.tsimg")
        let imported = try CLI.run(["images", "import", "--idx", folder.file("images"), "--labels", folder.file("labels"), "--out", store], in: folder)
        XCTAssertEqual(imported.status, 0, imported.stderr)
        // The arch files say 10 classes; the job takes the store's 3.
        let arch = folder.file("tiny.json")
        try DistillCLITests.tinyArch.write(toFile: arch, atomically: true, encoding: .utf8)
        let out = folder.file("demo")
        let demo = try CLI.run(["distill-demo", "--images", store, "--out", out, "--teacher-arch", arch, "--student-arch", arch,
                                "--teacher-epochs", "1", "--epochs", "1", "--k", "2"], in: folder)
        XCTAssertEqual(demo.status, 0, demo.stderr)
        XCTAssertTrue(demo.stdout.contains("| student (") && demo.stdout.contains("from shards"), demo.stdout)
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))) as? [String: Any])
        XCTAssertEqual(summary["images"] as? String, store)
        XCTAssertEqual((summary["shards"] as? [String: Any])?["verified"] as? Bool, true)
        XCTAssertEqual((summary["shards"] as? [String: Any])?["k"] as? Int, 2)
        let student = try String(contentsOfFile: out + "/student-arch.json", encoding: .utf8)
        XCTAssertTrue(student.contains("\"num_classes\" : 3"), student)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/digits.tis"))

        let both = try CLI.run(["distill-demo", "--images", store, "--digits", "Tools/data/digits.csv.gz", "--out", folder.file("x")], in: folder)
        XCTAssertEqual(both.status, 2)
        XCTAssertEqual(both.stderr, "tinyshard: error: [usage] give --images STORE or --digits CSV, not both\n")
        let missing = try CLI.run(["distill-demo", "--images", folder.file("nope.tsimg"), "--out", folder.file("y")], in: folder)
        XCTAssertEqual(missing.status, 2)
        XCTAssertEqual(missing.stderrLines.count, 1, missing.stderr)
        XCTAssertTrue(missing.stderr.contains(folder.file("nope.tsimg")), missing.stderr)
    }

    /// `distill-demo --dataset fashion-mnist` on small IDX files written here (the importer reads any IDX): the
    /// stores are imported into --cache, the teacher is trained on the rest and cached; a second run reuses both;
    /// every model is evaluated on the t10k store; --k-sweep and --hard-samples add their rows. A missing package
    /// is one line naming what to install.
    func testFashionMNISTPresetOnSyntheticIdx() throws {
        let folder = TemporaryFolder("demo-fashion")
        let source = folder.file("idx")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        func idx(_ dimensions: [Int], _ data: [UInt8]) -> Data {
            Data([0, 0, 8, UInt8(dimensions.count)] + dimensions.flatMap { d in [24, 16, 8, 0].map { UInt8(d >> $0 & 0xFF) } } + data)
        }
        for (name, n) in [("train", 300), ("t10k", 40)] {
            var pixels = [UInt8](repeating: 0, count: n * 784)
            var labels: [UInt8] = []
            for i in 0..<n {
                let label = i % 10
                labels.append(UInt8(label))
                for y in (label * 2 + 4)..<(label * 2 + 8) { for x in 4..<24 { pixels[i * 784 + y * 28 + x] = UInt8(150 + (i * 7 + x) % 100) } }
            }
            try idx([n, 28, 28], pixels).write(to: URL(fileURLWithPath: "\(source)/\(name)-images-idx3-ubyte.gz"))
            try idx([n], labels).write(to: URL(fileURLWithPath: "\(source)/\(name)-labels-idx1-ubyte.gz"))
        }
        let arch = folder.file("tiny.json")
        try DistillCLITests.tinyArch.write(toFile: arch, atomically: true, encoding: .utf8)
        let cache = folder.file("cache")
        let arguments = ["distill-demo", "--dataset", "fashion-mnist", "--dataset-dir", source, "--cache", cache, "--student-images", "100",
                         "--teacher-arch", arch, "--student-arch", arch, "--teacher-epochs", "3", "--epochs", "1",
                         "--k-sweep", "1,3", "--hard-samples", "1"]
        let first = try CLI.run(arguments + ["--out", folder.file("a")], in: folder)
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(first.stdout.contains("| model | test top-1 |"), first.stdout)
        XCTAssertTrue(first.stdout.contains("K sweep: one pass of K = 5") && first.stdout.contains("hard samples"), first.stdout)
        XCTAssertFalse(first.stdout.contains("--dataset fashion-mnist`"), "the hint is the digits job's")
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder.file("a/summary.json")))) as? [String: Any])
        XCTAssertEqual(summary["split"] as? String, "test")
        XCTAssertEqual(summary["evaluation_images"] as? Int, 40)
        XCTAssertEqual((summary["k_sweep"] as? [[String: Any]])?.map { $0["k"] as? Int }, [1, 3])
        XCTAssertEqual((summary["shards"] as? [String: Any])?["records"] as? Int, 100, "the students' 100 images, one epoch")
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.file("a/k-sweep.svg")))
        XCTAssertTrue(FileManager.default.fileExists(atPath: cache + "/fashion-t10k.tsimg"))
        let second = try CLI.run(arguments + ["--out", folder.file("b"), "--seeds", "1,2"], in: folder)
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertFalse(second.stdout.contains("imported"), second.stdout)
        XCTAssertEqual(second.stdout.components(separatedBy: "cached in \(cache)/teachers/teacher-").count, 3, second.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.file("b/k-sweep.svg")))

        let missing = try CLI.run(["distill-demo", "--dataset", "fashion-mnist", "--dataset-dir", folder.file("none"), "--cache", cache,
                                   "--out", folder.file("c")], in: folder)
        XCTAssertEqual(missing.status, 2, missing.stderr)
        XCTAssertEqual(missing.stderrLines.count, 1, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("apt-get install -y dataset-fashion-mnist"), missing.stderr)
        let unknown = try CLI.run(["distill-demo", "--dataset", "cifar", "--out", folder.file("d")], in: folder)
        XCTAssertEqual(unknown.status, 2)
        XCTAssertEqual(unknown.stderr, "tinyshard: error: [usage] --dataset knows fashion-mnist, got \"cifar\"\n")
    }
}
