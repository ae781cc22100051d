import Foundation
import ShardFormat
import XCTest

/// The `tinyshard` binary end to end, on one small demo dataset shared by the class.
final class TinyShardCLITests: XCTestCase {
    nonisolated(unsafe) static var shared: (folder: TemporaryFolder, dataset: String)?

    /// `tinyshard demo` once per class: 2 epochs × 2 ranks × 300 records, C = 100, K = 5.
    func demo() throws -> String {
        if let shared = Self.shared { return shared.dataset }
        let folder = TemporaryFolder("cli-demo")
        let dataset = folder.file("demo")
        let result = try CLI.run(["demo", "--out", dataset, "--records", "300", "--classes", "100", "--k", "5",
                                  "--records-per-block", "64"], in: folder)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("wrote 1200 records"), result.stdout)
        XCTAssertEqual(result.stderr, "", "no progress bar when stderr is not a terminal")
        Self.shared = (folder, dataset)
        return dataset
    }

    override class func tearDown() {
        shared = nil
        super.tearDown()
    }

    private func assertOneLineError(_ result: CLI.Result, status: Int32 = 2, contains fragment: String,
                                    file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(result.status, status, result.stderr, file: file, line: line)
        XCTAssertEqual(result.stderrLines.count, 1, "one line: \(result.stderr)", file: file, line: line)
        XCTAssertTrue(result.stderr.hasPrefix("tinyshard: error: "), result.stderr, file: file, line: line)
        XCTAssertTrue(result.stderr.contains(fragment), "\(fragment) not in \(result.stderr)", file: file, line: line)
        for trace in ["Fatal error", "Stack", "backtrace", "Current stack"] {
            XCTAssertFalse(result.stderr.contains(trace), result.stderr, file: file, line: line)
        }
    }

    func testDemoVerifiesCleanAndInspectShowsRecords() throws {
        let dataset = try demo()
        let folder = TemporaryFolder()
        let verify = try CLI.run(["verify", dataset], in: folder)
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
        XCTAssertTrue(verify.stdout.contains("OK"), verify.stdout)

        let json = try CLI.run(["verify", dataset, "--json"], in: folder)
        XCTAssertEqual(json.status, 0)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(object["ok"] as? Bool, true)
        XCTAssertEqual(object["records"] as? Int, 1200)
        XCTAssertEqual(object["files"] as? Int, 5)
        XCTAssertNotNil(object["seconds"] as? Double)
        XCTAssertEqual((object["problems"] as? [Any])?.count, 0)

        let inspect = try CLI.run(["inspect", dataset], in: folder)
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        for fragment in ["records 1200", "bytes/record", "values", "indices", "augmentation", "sample ids", "overhead",
                         "key table", "provenance", "params v1"] {
            XCTAssertTrue(inspect.stdout.contains(fragment), "\(fragment) not in:\n\(inspect.stdout)")
        }
        let shard = try CLI.run(["inspect", dataset + "/epoch0001-rank001.tshard"], in: folder)
        XCTAssertEqual(shard.status, 0, shard.stderr)
        XCTAssertTrue(shard.stdout.contains("records 300 in 5 blocks"), shard.stdout)
        XCTAssertTrue(shard.stdout.contains("epoch 1, rank 1"), shard.stdout)
    }

    func testDumpByKeyAndRange() throws {
        let dataset = try demo()
        let folder = TemporaryFolder()
        let byKey = try CLI.run(["dump", dataset, "--key", "img0000042", "--epoch", "1"], in: folder)
        XCTAssertEqual(byKey.status, 0, byKey.stderr)
        let lines = byKey.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 1)
        let record = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        XCTAssertEqual(record["key"] as? String, "img0000042")
        XCTAssertEqual(record["sample_id"] as? Int, 42)
        XCTAssertEqual(record["epoch"] as? Int, 1)
        XCTAssertEqual((record["indices"] as? [Int])?.count, 5)
        let values = try XCTUnwrap(record["values"] as? [Double])
        XCTAssertEqual(values, values.sorted(by: >))
        let augmentation = try XCTUnwrap(record["augmentation"] as? [String: Any])
        XCTAssertNotNil(augmentation["view"] as? [String: Any])

        let range = try CLI.run(["dump", dataset + "/epoch0000-rank001.tshard", "--range", "10..<13"], in: folder)
        XCTAssertEqual(range.status, 0, range.stderr)
        let ordinals = try range.stdout.split(separator: "\n").map {
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])["ordinal"] as? Int
        }
        XCTAssertEqual(ordinals, [10, 11, 12])
        XCTAssertTrue(range.stdout.contains("\"key\":\"img"), "a shard in a dataset folder gets its keys")

        let missing = try CLI.run(["dump", dataset, "--key", "no-such-key", "--epoch", "0"], in: folder)
        assertOneLineError(missing, contains: "no-such-key")
        let ambiguous = try CLI.run(["dump", dataset, "--key", "img0000042"], in: folder)
        assertOneLineError(ambiguous, contains: "--epoch")
    }

    func testCorruptedByteIsReportedWithFileAndBlock() throws {
        let dataset = try demo()
        let folder = TemporaryFolder()
        let copy = folder.file("copy")
        try FileManager.default.copyItem(atPath: dataset, toPath: copy)
        let shard = copy + "/epoch0001-rank000.tshard"
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: shard)))
        let blocks = ShardBytes.completeBlocks(bytes)
        XCTAssertEqual(blocks.count, 5)
        bytes[blocks[2] + 32 + 40] ^= 0x10  // a payload byte of block 2
        try Data(bytes).write(to: URL(fileURLWithPath: shard))

        let verify = try CLI.run(["verify", copy], in: folder)
        XCTAssertEqual(verify.status, 1, verify.stdout + verify.stderr)
        let problem = verify.stdout.split(separator: "\n").first { $0.contains("[block-crc]") }
        XCTAssertNotNil(problem, verify.stdout)
        XCTAssertTrue(problem?.contains(shard + ", block 2") ?? false, verify.stdout)
        XCTAssertTrue(verify.stdout.contains("FAILED"), verify.stdout)

        let json = try CLI.run(["verify", shard, "--json"], in: folder)
        XCTAssertEqual(json.status, 1)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(object["ok"] as? Bool, false)
        let problems = try XCTUnwrap(object["problems"] as? [[String: Any]])
        XCTAssertEqual(problems.first?["code"] as? String, "block-crc")
        XCTAssertEqual(problems.first?["file"] as? String, shard)
        XCTAssertEqual(problems.first?["block"] as? Int, 2)
    }

    func testUnreadableInputAndBadUsageExitTwoWithOneLine() throws {
        let folder = TemporaryFolder()
        let missing = folder.file("no-such-dataset")
        let verify = try CLI.run(["verify", missing], in: folder)
        assertOneLineError(verify, contains: "\(missing): [io]")
        XCTAssertEqual(verify.stdout, "")
        assertOneLineError(try CLI.run(["verify", missing, "--json"], in: folder), contains: "[io]")
        assertOneLineError(try CLI.run(["verify", folder.path], in: folder), contains: "manifest.json")
        assertOneLineError(try CLI.run(["inspect", missing], in: folder), contains: "[io]")

        let garbage = folder.file("garbage.tshard")
        try Data("not a shard at all".utf8).write(to: URL(fileURLWithPath: garbage))
        let notShard = try CLI.run(["verify", garbage], in: folder)
        XCTAssertEqual(notShard.status, 1, "a readable file that is not a shard is a problem found")
        XCTAssertTrue(notShard.stdout.contains("[bad-magic]"), notShard.stdout)
        assertOneLineError(try CLI.run(["inspect", garbage], in: folder), contains: "[bad-magic]")

        assertOneLineError(try CLI.run(["verify"], in: folder), contains: "[usage]")
        assertOneLineError(try CLI.run(["frobnicate"], in: folder), contains: "[usage]")
        assertOneLineError(try CLI.run(["verify", missing, "--bogus"], in: folder), contains: "--bogus")
        assertOneLineError(try CLI.run(["demo", "--out", folder.file("d"), "--records", "many"], in: folder), contains: "many")
        assertOneLineError(try CLI.run(["demo", "--out", folder.file("d"), "--k", "0"], in: folder), contains: "k must be")
        assertOneLineError(try CLI.run(["convert", "official", folder.path, "--out", folder.file("o")], in: folder),
                           contains: "--classes")
        assertOneLineError(try CLI.run(["convert", "official", missing, "--out", folder.file("o"), "--classes", "10"], in: folder),
                           contains: "\(missing): [io]")
        assertOneLineError(try CLI.run(["dump", garbage, "--range", "5..<2"], in: folder), contains: "--range")
        assertOneLineError(try CLI.run(["verify", garbage, "--max-problems", "-1"], in: folder), contains: "max-problems")

        let help = try CLI.run(["--help"], in: folder)
        XCTAssertEqual(help.status, 0)
        for command in ["demo", "convert", "export", "inspect", "verify", "dump", "recover"] {
            XCTAssertTrue(help.stdout.contains(command), help.stdout)
        }
        XCTAssertEqual(try CLI.run(["verify", "--help"], in: folder).status, 0)
        XCTAssertTrue(try CLI.run(["--version"], in: folder).stdout.hasPrefix("tinyshard "))
    }

    func testConvertOfficialFixtureThenInspectAndExport() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/fixtures/official_logits/in1k_top10").path
        guard FileManager.default.fileExists(atPath: root) else {
            throw XCTSkip("shared fixture \(root) is absent (the shared/ folder is not next to this package); skipping")
        }
        let folder = TemporaryFolder()
        let dataset = folder.file("in1k")
        let convert = try CLI.run(["convert", "official", root, "--out", dataset, "--classes", "1000", "--teacher", "fixture"], in: folder)
        XCTAssertEqual(convert.status, 0, convert.stderr)
        XCTAssertTrue(convert.stdout.contains("records written 1204"), convert.stdout)
        XCTAssertTrue(convert.stdout.contains("keys in several ranks of an epoch 2"), convert.stdout)
        XCTAssertTrue(convert.stdout.contains("bytes/record"), convert.stdout)

        let inspect = try CLI.run(["inspect", dataset], in: folder)
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("records 1204"), inspect.stdout)
        XCTAssertTrue(inspect.stdout.contains("source=official-tinyvit"), inspect.stdout)

        let exported = folder.file("exported")
        let export = try CLI.run(["export", "official", dataset, "--out", exported], in: folder)
        XCTAssertEqual(export.status, 0, export.stderr)
        let name = "logits_top10_epoch0/rank0-values.bin"
        XCTAssertEqual(FileManager.default.contents(atPath: exported + "/" + name), FileManager.default.contents(atPath: root + "/" + name))

        let tooFew = try CLI.run(["convert", "official", root, "--out", folder.file("bad"), "--classes", "500"], in: folder)
        assertOneLineError(tooFew, contains: "[index-out-of-range]")
        XCTAssertTrue(tooFew.stderr.contains("-values.bin, record "), tooFew.stderr)
    }

    /// A writer killed mid-shard leaves only `NAME.partial`: nothing under the final name, `verify` says
    /// incomplete, and `recover` keeps exactly the complete blocks.
    func testSigkilledWriterLeavesARecoverablePartialFile() throws {
        let folder = TemporaryFolder("cli-kill")
        let dataset = folder.file("big")
        let recordsPerBlock = 64
        let (process, _, errPath) = try CLI.start(
            ["demo", "--out", dataset, "--records", "30000", "--epochs", "1", "--ranks", "1", "--classes", "50", "--k", "3",
             "--records-per-block", String(recordsPerBlock)], in: folder)
        let final = dataset + "/epoch0000-rank000.tshard"
        let partial = final + ".partial"
        let deadline = Date().addingTimeInterval(120)
        var size = 0
        while Date() < deadline, process.isRunning {
            if let bytes = try? Data(contentsOf: URL(fileURLWithPath: partial)),
               ShardBytes.completeBlocks([UInt8](bytes)).count >= 4 {
                size = bytes.count
                break
            }
            usleep(2000)
        }
        XCTAssertTrue(process.isRunning, "the writer finished before it could be killed: \((try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .uncaughtSignal)
        XCTAssertGreaterThan(size, 0)

        XCTAssertFalse(FileManager.default.fileExists(atPath: final), "no file under the final name")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dataset + "/manifest.json"), "no manifest: not a finished dataset")
        let verify = try CLI.run(["verify", partial], in: folder)
        XCTAssertEqual(verify.status, 1, verify.stdout + verify.stderr)
        XCTAssertTrue(verify.stdout.contains("[incomplete]"), verify.stdout)

        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: partial)))
        let complete = ShardBytes.completeBlocks(bytes).count
        XCTAssertGreaterThanOrEqual(complete, 4)
        let recovered = folder.file("recovered.tshard")
        let recover = try CLI.run(["recover", partial, "--out", recovered], in: folder)
        XCTAssertEqual(recover.status, 0, recover.stdout + recover.stderr)
        XCTAssertTrue(recover.stdout.contains("recovered \(complete * recordsPerBlock) records in \(complete) blocks"), recover.stdout)
        let reader = try ShardReader(path: recovered)
        XCTAssertEqual(reader.recordCount, complete * recordsPerBlock)
        XCTAssertEqual(reader.blockCount, complete)
        let clean = try CLI.run(["verify", recovered], in: folder)
        XCTAssertEqual(clean.status, 0, clean.stdout + clean.stderr)

        let again = try CLI.run(["recover", partial, "--out", recovered], in: folder)
        assertOneLineError(again, contains: "already exists")
        // A new demo run into the same folder replaces the leftovers of the killed one.
        let rerun = try CLI.run(["demo", "--out", dataset, "--records", "50", "--epochs", "1", "--ranks", "1", "--classes", "50",
                                 "--k", "3"], in: folder)
        XCTAssertEqual(rerun.status, 0, rerun.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: partial))
    }
}
