import Foundation
import ImageStore
import XCTest

/// `tinyshard train` / `teacher` / `recipe` end to end: a signal stops training with a resumable
/// checkpoint, online distillation runs, bad input gets one line.
final class DistillCLITests: XCTestCase {
    static let digits = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Tools/data/digits.csv.gz").path
    static let tinyArch = #"{"embed_dims":[8,16,16,16],"depths":[1,1,1,1],"num_heads":[1,1,1,1],"window_sizes":[2,2,2,2],"num_classes":10,"img_size":16}"#

    /// 60 digits at 16 px and a tiny architecture in `folder`.
    func setUp(_ folder: TemporaryFolder) throws -> (store: String, arch: String) { try Self.digitsAndArch(folder) }

    static func digitsAndArch(_ folder: TemporaryFolder) throws -> (store: String, arch: String) {
        guard FileManager.default.fileExists(atPath: Self.digits) else { throw XCTSkip("no \(Self.digits)") }
        let store = folder.file("digits.tis")
        let writer = try ImageStoreWriter(path: store, classNames: DigitsImport.classNames)
        for d in try DigitsImport.read(Self.digits, upscale: 2).prefix(60) { try writer.append(key: d.key, label: d.label, image: d.image) }
        _ = try writer.finish()
        let arch = folder.file("tiny.json")
        try Self.tinyArch.write(toFile: arch, atomically: true, encoding: .utf8)
        return (store, arch)
    }

    private func assertOneLine(_ result: CLI.Result, contains fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(result.status, 2, result.stdout + result.stderr, file: file, line: line)
        XCTAssertEqual(result.stderrLines.count, 1, result.stderr, file: file, line: line)
        XCTAssertTrue(result.stderr.hasPrefix("tinyshard: error: ") && result.stderr.contains(fragment),
                      "\(fragment) not in \(result.stderr)", file: file, line: line)
    }

    /// SIGINT to a real `tinyshard train`: it finishes the step, writes a mid-epoch checkpoint, says so and
    /// exits 130; `--resume` ends with exactly the weights of an uninterrupted run.
    func testSIGINTWritesAResumableCheckpointAndResumeIsBitExact() throws {
        let folder = TemporaryFolder("cli-signal")
        let (store, arch) = try setUp(folder)
        let common = ["train", "--images", store, "--arch", arch, "--recipe", "digits", "--hard-labels", "--epochs", "4",
                      "--batch", "8", "--lr", "3e-3", "--seed", "4"]
        let whole = try CLI.run(common + ["--out", folder.file("whole")], in: folder)
        XCTAssertEqual(whole.status, 0, whole.stderr)
        let run = folder.file("interrupted")
        let (process, outPath, errPath) = try CLI.start(common + ["--out", run], in: folder)
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, process.isRunning, !FileManager.default.fileExists(atPath: run + "/config.json") { usleep(2000) }
        XCTAssertTrue(process.isRunning, "training ended before the signal: \((try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")")
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        XCTAssertEqual(process.terminationStatus, 130, out + ((try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""))
        XCTAssertTrue(out.contains("interrupted by SIGINT") && out.contains("continue with --resume"), out)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/model.safetensors"))
        let state = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/checkpoint/state.json"))) as? [String: Any])
        XCTAssertLessThan(state["step"] as? Int ?? 999, 4 * 6, "stopped early")
        let resumed = try CLI.run(common + ["--out", run, "--resume"], in: folder)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: run + "/model.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: folder.file("whole") + "/model.safetensors")))
    }

    /// A teacher pass with a recipe file, online distillation with the teacher in the loop, and the bad
    /// inputs of these commands: each one line naming the file.
    func testRecipeFileOnlineTeacherAndBadInputs() throws {
        let folder = TemporaryFolder("cli-online")
        let (store, arch) = try setUp(folder)
        let teacherRun = folder.file("teacher")
        let teach = try CLI.run(["train", "--images", store, "--arch", arch, "--recipe", "digits", "--hard-labels", "--epochs", "1",
                                 "--batch", "8", "--out", teacherRun], in: folder)
        XCTAssertEqual(teach.status, 0, teach.stderr)
        let weights = teacherRun + "/model.safetensors"
        let recipe = folder.file("recipe.json")
        try #"{"horizontal_flip": 0, "crop": {"scale": [0.6, 1]}, "mix": {"cutmix_alpha": 0}}"#.write(toFile: recipe, atomically: true, encoding: .utf8)
        let pass = try CLI.run(["teacher", "--images", store, "--weights", weights, "--arch", arch, "--out", folder.file("shards"),
                                "--k", "3", "--epochs", "1", "--recipe", recipe, "--seed", "9"], in: folder)
        XCTAssertEqual(pass.status, 0, pass.stderr)
        let inspect = try CLI.run(["inspect", folder.file("shards")], in: folder)
        let hash = try CLI.run(["recipe", recipe, "--hash"], in: folder).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(hash.count, 64)
        XCTAssertTrue(inspect.stdout.contains(hash), inspect.stdout)

        let online = try CLI.run(["train", "--images", store, "--arch", arch, "--recipe", recipe, "--seed", "9", "--teacher", weights,
                                  "--teacher-arch", arch, "--teacher-k", "3", "--epochs", "1", "--batch", "8", "--out", folder.file("online")], in: folder)
        XCTAssertEqual(online.status, 0, online.stderr)
        XCTAssertTrue(online.stdout.contains("teacher ") && online.stdout.contains("step time"), online.stdout)

        let bad = folder.file("bad.json")
        try #"{"crop": {"scale": [0.6, 1]}, "flip": 0}"#.write(toFile: bad, atomically: true, encoding: .utf8)
        assertOneLine(try CLI.run(["train", "--images", store, "--arch", arch, "--recipe", bad, "--hard-labels", "--out", folder.file("x")], in: folder),
                      contains: "bad.json: [bad_recipe] key flip: unknown key")
        let broken = folder.file("broken.json")
        try "{\"crop\": ".write(toFile: broken, atomically: true, encoding: .utf8)
        assertOneLine(try CLI.run(["teacher", "--images", store, "--weights", weights, "--arch", arch, "--out", folder.file("y"),
                                   "--recipe", broken], in: folder), contains: "broken.json: [bad_recipe] not valid JSON")
        let seven = folder.file("seven.json")
        try Self.tinyArch.replacingOccurrences(of: "\"num_classes\":10", with: "\"num_classes\":7").write(toFile: seven, atomically: true, encoding: .utf8)
        assertOneLine(try CLI.run(["train", "--images", store, "--arch", arch, "--hard-labels", "--out", folder.file("z"), "--teacher", weights,
                                   "--teacher-arch", seven], in: folder), contains: "[usage] --teacher and --hard-labels")
        assertOneLine(try CLI.run(["train", "--images", store, "--arch", arch, "--out", folder.file("z"), "--teacher", weights,
                                   "--teacher-arch", seven], in: folder), contains: "the teacher has 7 classes, the store")
        let wider = folder.file("wider.json")
        try Self.tinyArch.replacingOccurrences(of: "[8,16,16,16]", with: "[8,16,16,24]").write(toFile: wider, atomically: true, encoding: .utf8)
        assertOneLine(try CLI.run(["train", "--images", store, "--arch", arch, "--out", folder.file("z"), "--teacher", weights,
                                   "--teacher-arch", wider], in: folder), contains: "model.safetensors: tensor")
    }
}
