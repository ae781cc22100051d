import DistillTestSupport
import Foundation
import ImageStore
import ShardFormat
import XCTest
@testable import Distill
@testable import Reports

final class DistillDemoTests: XCTestCase {
    /// The whole main job at toy size: every stage runs, shards verify, three students come back, and
    /// the summary carries the keys the README and issue promise.
    func testDistillDemoRunsEndToEnd() throws {
        guard FileManager.default.fileExists(atPath: Fixture.digitsPath) else { throw XCTSkip("no digits") }
        let dir = try Fixture.temporaryDirectory("demo")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = DistillDemo.Options()
        options.upscale = 2
        options.maxImages = 300
        options.teacherEpochs = 1
        options.studentEpochs = 2
        options.curvePoints = 2
        options.k = 3
        options.batchSize = 64
        options.teacher = Fixture.tinyConfig()
        options.student = Fixture.tinyConfig()
        let result = try DistillDemo.run(digitsCSV: Fixture.digitsPath, outputDirectory: dir, options: options, log: { _ in })
        XCTAssertTrue(result.verifiedClean)
        XCTAssertGreaterThan(result.records, 200)
        XCTAssertGreaterThan(result.bytesPerRecord, 0)
        for e in [result.teacher, result.hard.evaluation, result.online.evaluation, result.shards.evaluation] {
            XCTAssertGreaterThan(e.count, 30)
            XCTAssertTrue((0...1).contains(e.top1))
        }
        XCTAssertGreaterThan(result.online.teacherShare, 0)
        XCTAssertEqual(result.shards.teacherShare, 0)
        XCTAssertEqual(result.shards.curve.count, 2)
        for run in ["teacher", "student-hard", "student-online", "student-shards"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/\(run)/model.safetensors"), run)
        }
        let summary = DemoReport.summary(result)
        try DemoReport.writeSummary(summary, to: dir + "/summary.json")
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/summary.json"))) as? [String: Any])
        func value(_ path: String) -> Any? {
            var node: Any? = object
            for part in path.split(separator: ".") { node = (node as? [String: Any])?[String(part)] }
            return node
        }
        for key in ["teacher.top1", "teacher.parameters", "teacher.macs", "students.hard.top1", "students.online.top1",
                    "students.shards.top1", "students.hard.train_seconds", "students.online.train_seconds",
                    "students.shards.train_seconds", "students.shards.macs", "shards.bytes_per_record", "shards.verified", "seed"] {
            XCTAssertNotNil(value(key), key)
        }
        XCTAssertEqual(value("shards.verified") as? Bool, true)
        XCTAssertEqual(value("students.shards.top1") as? Double ?? -1, result.shards.evaluation.top1, accuracy: 1e-12)
        let svg = DemoReport.svg(result)
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.contains("polyline") && svg.contains("from shards"))
        let table = DemoReport.table([result, result])
        XCTAssertTrue(table.contains("mean ± std") && table.contains("shards − hard"), table)
    }

    /// `--images STORE`: the job runs on any labelled store, with the models' class count the store's
    /// (here 4 classes, while the configurations given say 10); a store with an unlabelled image or a
    /// single class is a one-line error naming the store.
    func testDistillDemoRunsOnAnImageStore() throws {
        guard FileManager.default.fileExists(atPath: Fixture.digitsPath) else { throw XCTSkip("no digits") }
        let dir = try Fixture.temporaryDirectory("demo-store")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let digits = try DigitsImport.read(Fixture.digitsPath, upscale: 2).filter { $0.label < 4 }.prefix(240)
        func write(_ path: String, names: [String], label: (DigitsImport.Digit) -> Int) throws {
            let writer = try ImageStoreWriter(path: path, classNames: names, classCount: 4)
            for d in digits { try writer.append(key: d.key, label: label(d), image: d.image) }
            try writer.finish()
        }
        let store = dir + "/four.tsimg"
        try write(store, names: ["zero", "one", "two", "three"]) { $0.label }
        var options = DistillDemo.Options()
        options.teacherEpochs = 1
        options.studentEpochs = 1
        options.curvePoints = 1
        options.k = 2
        options.batchSize = 32
        options.teacher = Fixture.tinyConfig()
        options.student = Fixture.tinyConfig()
        let result = try DistillDemo.run(images: .store(path: store), outputDirectory: dir + "/run", options: options, log: { _ in })
        XCTAssertTrue(result.verifiedClean)
        XCTAssertEqual(result.images, store)
        XCTAssertEqual(result.records, 240 - result.teacher.count, "one record per training image and epoch")
        XCTAssertEqual(DemoReport.summary(result)["images"] as? String, store)
        for arch in ["teacher-arch.json", "student-arch.json"] {
            let config = try ModelArchitecture.configuration(dir + "/run/" + arch)
            XCTAssertEqual(config.numClasses, 4, arch)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/run/digits.tis"), "a store is used in place")

        // A given teacher (here the one just trained) is used as it is: same evaluation, no training.
        var given = options
        given.teacherWeights = dir + "/run/teacher/model.safetensors"
        let reused = try DistillDemo.run(images: .store(path: store), outputDirectory: dir + "/given", options: given, log: { _ in })
        XCTAssertEqual(reused.teacher, result.teacher)
        XCTAssertEqual(reused.teacherTrainSeconds, 0)
        XCTAssertEqual(reused.teacherWeights, given.teacherWeights)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/given/teacher"))
        XCTAssertTrue(DemoReport.table(reused).contains("given weights"))
        XCTAssertEqual(reused.shards.evaluation, result.shards.evaluation, "same teacher, same views, same student seed")
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/junk.safetensors"))
        given.teacherWeights = dir + "/junk.safetensors"
        XCTAssertThrowsError(try DistillDemo.run(images: .store(path: store), outputDirectory: dir + "/junk", options: given, log: { _ in })) {
            XCTAssertTrue("\($0)".hasPrefix("\(dir)/junk.safetensors: [bad_weights]"), "\($0)")
        }

        let unlabelled = dir + "/unlabelled.tsimg"
        try write(unlabelled, names: []) { $0.key == digits[7].key ? -1 : $0.label }
        XCTAssertThrowsError(try DistillDemo.run(images: .store(path: unlabelled), outputDirectory: dir + "/u", options: options, log: { _ in })) {
            XCTAssertEqual("\($0)", "\(unlabelled): image 7 (key \(digits[7].key)): [no_label] the main job needs a label on every image")
        }
        let single = dir + "/single.tsimg"
        let writer = try ImageStoreWriter(path: single, classNames: ["only"])
        for d in digits.prefix(40) { try writer.append(key: d.key, label: 0, image: d.image) }
        try writer.finish()
        XCTAssertThrowsError(try DistillDemo.run(images: .store(path: single), outputDirectory: dir + "/s", options: options, log: { _ in })) {
            XCTAssertTrue("\($0)".hasPrefix("\(single): [usage] the store has 1 classes"), "\($0)")
        }
    }
}
