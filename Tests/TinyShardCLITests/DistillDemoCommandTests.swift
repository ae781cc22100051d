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
}
