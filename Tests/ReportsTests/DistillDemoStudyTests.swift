import DistillTestSupport
import Foundation
import ImageStore
import ShardFormat
import XCTest
@testable import Distill
@testable import Reports

/// The main job's study options at toy size: the K sweep, the hard-sample students, the analysis and the
/// students' class-correlation similarity; a test store; a cached teacher of another store; the Fashion-MNIST
/// preset's import on small synthetic IDX files.
final class DistillDemoStudyTests: XCTestCase {
    func tinyOptions() -> DistillDemo.Options {
        var options = DistillDemo.Options()
        options.upscale = 2
        options.teacherEpochs = 2
        options.studentEpochs = 2
        options.curvePoints = 1
        options.k = 2
        options.batchSize = 32
        options.teacher = Fixture.tinyConfig()
        options.student = Fixture.tinyConfig()
        return options
    }

    /// `--k-sweep 1,2,3 --k 2 --hard-samples 1`: one pass of K = 3; the k = 2 point is the shards student itself,
    /// k = 3 trains on every stored entry; bytes per record grow with k; the hard-sample students leave out
    /// exactly the analysis's hard images; summary, table and plot carry all of it.
    func testKSweepHardSamplesAndAnalysis() throws {
        guard FileManager.default.fileExists(atPath: Fixture.digitsPath) else { throw XCTSkip("no digits") }
        let dir = try Fixture.temporaryDirectory("demo-study")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = tinyOptions()
        options.maxImages = 200
        options.kSweep = [3, 1, 2]
        options.hardSampleShare = 1
        let result = try DistillDemo.run(digitsCSV: Fixture.digitsPath, outputDirectory: dir, options: options, log: { _ in })
        XCTAssertEqual(result.passK, 3)
        XCTAssertEqual(result.k, 2)
        XCTAssertEqual(result.split, "held-out")
        XCTAssertEqual(result.kSweep.map(\.k), [1, 2, 3])
        XCTAssertEqual(result.kSweep[1].student.evaluation, result.shards.evaluation, "k = --k is the shards student")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/student-shards-k2"))
        for k in [1, 3] { XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/student-shards-k\(k)/model.safetensors"), "k\(k)") }
        let bytes = result.kSweep.compactMap(\.bytesPerRecord)
        XCTAssertEqual(bytes.count, 3)
        XCTAssertEqual(bytes, bytes.sorted())
        XCTAssertLessThan(bytes[0], bytes[2])

        let analysis = try XCTUnwrap(result.analysis)
        XCTAssertEqual(analysis.massByK.count, 3)
        XCTAssertEqual(analysis.massByK.map(\.mean), analysis.massByK.map(\.mean).sorted())
        XCTAssertTrue((0...1).contains(analysis.agreementTop1) && analysis.agreementTop1 <= analysis.agreementTopN)
        XCTAssertEqual(analysis.n, 3)
        XCTAssertEqual(Set(analysis.similarity.keys), ["hard", "shards"])
        for value in analysis.similarity.values { XCTAssertTrue((-1...1).contains(value)) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/analysis/analysis.json"))

        // The hard-sample students leave out what the analysis (and `train --exclude-hard 1`) finds.
        let study = try XCTUnwrap(result.hardSamples)
        var analysisOptions = PassAnalysis.Options()
        analysisOptions.hardShare = 1
        let keys = try PassAnalysis(dataset: try ShardDataset(directory: dir + "/shards"), store: try ImageStore(path: dir + "/digits.tis"),
                                    options: analysisOptions).hardSampleKeys()
        XCTAssertEqual(study.excluded, keys.count)
        XCTAssertEqual(analysis.hardImages, keys.count)
        XCTAssertEqual(study.threshold, 1)
        for name in ["hard-without-hard-samples", "shards-without-hard-samples"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/student-\(name)/model.safetensors"), name)
        }

        let object = try roundTrip(DemoReport.summary(result))
        XCTAssertEqual((object["k_sweep"] as? [[String: Any]])?.map { $0["k"] as? Int }, [1, 2, 3])
        XCTAssertNotNil((object["k_sweep"] as? [[String: Any]])?.first?["bytes_per_record"] as? Double)
        XCTAssertEqual(((object["hard_samples"] as? [String: Any])?["excluded_images"]) as? Int, keys.count)
        XCTAssertNotNil(((object["hard_samples"] as? [String: Any])?["shards"] as? [String: Any])?["without"] as? Double)
        XCTAssertEqual(((object["analysis"] as? [String: Any])?["mass_by_k"] as? [Any])?.count, 3)
        XCTAssertNotNil((object["correlation_similarity"] as? [String: Any])?["shards"] as? Double)
        XCTAssertEqual((object["shards"] as? [String: Any])?["pass_k"] as? Int, 3)
        let table = DemoReport.table(result)
        for text in ["K sweep: one pass of K = 3", "| 1 |", "hard samples", "without − with", "class-correlation similarity", "mass top-3 %"] {
            XCTAssertTrue(table.contains(text), "\(text) in\n\(table)")
        }
        let svg = DemoReport.kSweepSVG([result])
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.contains("k = 3") && svg.contains("hard labels") && svg.hasSuffix("</svg>\n"), svg)
        XCTAssertEqual(svg.components(separatedBy: "<text").count, svg.components(separatedBy: "</text>").count)

        // Several seeds: mean ± std per k, the study's and the analysis's keys.
        let several = try roundTrip(DemoReport.summary([result, result]))
        let sweep = try XCTUnwrap(several["k_sweep"] as? [[String: Any]])
        XCTAssertEqual(sweep.count, 3)
        XCTAssertEqual((sweep[0]["top1"] as? [String: Any])?["std"] as? Double, 0)
        XCTAssertNotNil(several["hard_samples"] as? [String: Any])
        XCTAssertNotNil((several["correlation_similarity"] as? [String: Any])?["shards_above_hard_seeds"] as? Int)
        XCTAssertTrue(DemoReport.table([result, result]).contains("K sweep"))
        let hint = try XCTUnwrap(DemoReport.digitsHint([result]))
        XCTAssertTrue(hint.contains("run `tinyshard distill-demo --dataset fashion-mnist`"), hint)
    }

    /// `--eval-images STORE`: every model on the test store (the whole training store trains); a store of other
    /// classes is refused. A teacher of another store in a cache folder is trained once, then loaded.
    func testTestStoreAndCachedTeacher() throws {
        guard FileManager.default.fileExists(atPath: Fixture.digitsPath) else { throw XCTSkip("no digits") }
        let dir = try Fixture.temporaryDirectory("demo-test-store")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let digits = try DigitsImport.read(Fixture.digitsPath, upscale: 2).filter { $0.label < 4 }
        func write(_ path: String, _ slice: ArraySlice<DigitsImport.Digit>, names: [String] = ["zero", "one", "two", "three"],
                   classes: Int = 4) throws {
            let writer = try ImageStoreWriter(path: path, classNames: names, classCount: classes)
            for d in slice { try writer.append(key: d.key, label: d.label, image: d.image) }
            try writer.finish()
        }
        try write(dir + "/train.tsimg", digits[0..<160])
        try write(dir + "/teacher.tsimg", digits[160..<400])
        try write(dir + "/test.tsimg", digits[400..<500])
        var options = tinyOptions()
        options.evaluationImages = dir + "/test.tsimg"
        options.teacherImages = dir + "/teacher.tsimg"
        options.teacherCache = dir + "/cache"
        options.teacherSeed = 0
        options.studentEpochs = 1
        options.analysis = false
        let first = try DistillDemo.run(images: .store(path: dir + "/train.tsimg"), outputDirectory: dir + "/a", options: options, log: { _ in })
        XCTAssertEqual(first.split, "test")
        XCTAssertNil(first.teacherCached)
        XCTAssertNil(first.analysis)
        for e in [first.teacher, first.hard.evaluation, first.online.evaluation, first.shards.evaluation] { XCTAssertEqual(e.count, 100) }
        XCTAssertEqual(first.records, 160, "no held-out split: every training image, one epoch")
        XCTAssertTrue(DemoReport.table(first).contains("| model | test top-1 |"))
        XCTAssertEqual(DemoReport.summary(first)["split"] as? String, "test")
        let folders = try FileManager.default.contentsOfDirectory(atPath: dir + "/cache")
        XCTAssertEqual(folders.count, 1)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/cache/\(folders[0])/fingerprint.json"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/a/teacher"))

        // Another seed: the same teacher, loaded; its evaluation is the same.
        options.seed = 1
        let second = try DistillDemo.run(images: .store(path: dir + "/train.tsimg"), outputDirectory: dir + "/b", options: options, log: { _ in })
        XCTAssertEqual(second.teacherCached, "\(dir)/cache/\(folders[0])")
        XCTAssertEqual(second.teacher, first.teacher)
        XCTAssertEqual(second.teacherTrainSeconds, first.teacherTrainSeconds)
        // Anything that decides the teacher changes its fingerprint; an unfinished folder is trained again.
        options.teacherEpochs = 1
        let third = try DistillDemo.run(images: .store(path: dir + "/train.tsimg"), outputDirectory: dir + "/c", options: options, log: { _ in })
        XCTAssertNil(third.teacherCached)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/cache").count, 2)
        try FileManager.default.removeItem(atPath: "\(dir)/cache/\(folders[0])/fingerprint.json")
        options.teacherEpochs = 2
        XCTAssertNil(try DistillDemo.run(images: .store(path: dir + "/train.tsimg"), outputDirectory: dir + "/d", options: options, log: { _ in }).teacherCached)

        // A test store of other classes, or other names, is refused before any training.
        try write(dir + "/three.tsimg", digits[400..<500].filter { $0.label < 3 }[...], names: ["zero", "one", "two"], classes: 3)
        try write(dir + "/renamed.tsimg", digits[400..<500], names: ["a", "b", "c", "d"])
        for (store, text) in [("three", "[mismatch] the evaluation store has 3 classes"), ("renamed", "[mismatch] the evaluation store names its classes a, b, c…")] {
            options.evaluationImages = "\(dir)/\(store).tsimg"
            XCTAssertThrowsError(try DistillDemo.run(images: .store(path: dir + "/train.tsimg"), outputDirectory: dir + "/x", options: options, log: { _ in })) {
                XCTAssertTrue("\($0)".hasPrefix("\(dir)/\(store).tsimg: \(text)"), "\($0)")
            }
        }
        options.evaluationImages = dir + "/test.tsimg"
        options.validationFraction = 0.2
        XCTAssertThrowsError(try DistillDemo.run(images: .store(path: dir + "/train.tsimg"), outputDirectory: dir + "/y", options: options, log: { _ in }))
    }

    /// The preset's import from small IDX files written here: the students' first N, the teacher's rest (keys
    /// disjoint), the t10k test store, class names; a second call reuses the stores; a missing package is one
    /// line naming what to install.
    func testFashionMNISTImportAndCache() throws {
        let dir = try Fixture.temporaryDirectory("fashion")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = dir + "/idx"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        func idx(_ dimensions: [Int], _ data: [UInt8]) -> Data {
            Data([0, 0, 8, UInt8(dimensions.count)] + dimensions.flatMap { d in [24, 16, 8, 0].map { UInt8(d >> $0 & 0xFF) } } + data)
        }
        for (name, n) in [("train", 50), ("t10k", 20)] {
            let pixels = (0..<(n * 28 * 28)).map { UInt8(truncatingIfNeeded: $0 * 7) }
            try idx([n, 28, 28], pixels).write(to: URL(fileURLWithPath: "\(source)/\(name)-images-idx3-ubyte.gz"))
            try idx([n], (0..<n).map { UInt8($0 % 10) }).write(to: URL(fileURLWithPath: "\(source)/\(name)-labels-idx1-ubyte.gz"))
        }
        var logged: [String] = []
        let stores = try FashionMNIST.prepare(source: source, cache: dir + "/cache", studentImages: 30, log: { logged.append($0) })
        XCTAssertEqual(logged.count, 3)
        let students = try ImageStore(path: stores.students), teacher = try ImageStore(path: stores.teacher), test = try ImageStore(path: stores.test)
        XCTAssertEqual([students.count, teacher.count, test.count], [30, 20, 20])
        XCTAssertEqual(students.classNames, FashionMNIST.classNames)
        XCTAssertEqual(test.classNames, FashionMNIST.classNames)
        XCTAssertTrue(Set(students.keys()).isDisjoint(with: teacher.keys()))
        XCTAssertEqual(try teacher.key(at: 0), "fashion_00030")
        XCTAssertEqual(try teacher.label(at: 0), 0)
        XCTAssertTrue(Set(test.keys()).isDisjoint(with: students.keys()))
        logged = []
        XCTAssertEqual(try FashionMNIST.prepare(source: source, cache: dir + "/cache", studentImages: 30, log: { logged.append($0) }), stores)
        XCTAssertEqual(logged, [], "imported once")
        _ = try FashionMNIST.prepare(source: source, cache: dir + "/cache", studentImages: 40, log: { logged.append($0) })
        XCTAssertEqual(logged.count, 3, "another split is imported again")

        XCTAssertThrowsError(try FashionMNIST.prepare(source: dir + "/none", cache: dir + "/cache2")) {
            XCTAssertEqual("\($0)", "\(dir)/none/train-images-idx3-ubyte.gz: [missing] Fashion-MNIST is not installed: apt-get install -y dataset-fashion-mnist (Tools/setup.sh installs it)")
        }
        let options = FashionMNIST.options(stores: stores, cache: dir + "/cache")
        XCTAssertEqual(options.teacherRecipe.name, "fashion")
        XCTAssertEqual(options.studentRecipe, options.teacherRecipe)
        XCTAssertEqual(options.teacherRecipe.recipe.horizontalFlipProbability, 0.5)
        XCTAssertTrue(options.teacherRecipe.recipe.canonicalJSON.contains(#""scale":[0.5,1.0]"#), options.teacherRecipe.recipe.canonicalJSON)
        XCTAssertEqual(options.evaluationImages, stores.test)
        XCTAssertEqual(options.teacherImages, stores.teacher)
        XCTAssertEqual([options.teacherEpochs, options.studentEpochs, options.k], [30, 20, 5])
        XCTAssertEqual(options.teacherSeed, 0)
    }

    func roundTrip(_ object: [String: Any]) throws -> [String: Any] {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}
