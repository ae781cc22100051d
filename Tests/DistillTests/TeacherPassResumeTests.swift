import DistillTestSupport
import Foundation
import ImageStore
import ShardFormat
import XCTest
@testable import Distill

/// Spec/PASS.md: a pass stopped by a request or cut by a crash, resumed, ends byte for byte as one that never
/// stopped; epochs are committed as they finish and can be added later; another pass's folder is refused.
final class TeacherPassResumeTests: XCTestCase {
    /// Blocks of 4 and batches of 3: a resume meets block boundaries inside batches.
    static func options(epochs: Int = 2, seed: UInt64 = 11, resume: Bool = false) -> TeacherPass.Options {
        TeacherPass.Options(epochs: epochs, k: 3, seed: seed, batchSize: 3, recordsPerBlock: 4, resume: resume)
    }

    func pass(_ store: ImageStore, _ directory: String, _ options: TeacherPass.Options, stopAfter batches: Int? = nil) throws
        -> TeacherPass.Summary
    {
        let stop = StopRequest()
        var seen = 0
        return try TeacherPass.run(store: store, teacher: try Fixture.teacher(), outputDirectory: directory, options: options,
                                   stop: stop) { _, _ in
            seen += 1
            if let batches, seen >= batches { stop.request() }
        }
    }

    /// Every file of the two folders, byte for byte (temporary files excluded: a finished pass has none).
    func assertSameFolders(_ a: String, _ b: String, _ message: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: a).sorted()
        XCTAssertEqual(names, try FileManager.default.contentsOfDirectory(atPath: b).sorted(), message, file: file, line: line)
        for name in names {
            XCTAssertEqual(FileManager.default.contents(atPath: a + "/" + name), FileManager.default.contents(atPath: b + "/" + name),
                           "\(message): \(name) differs", file: file, line: line)
        }
    }

    func testStoppedPassesResumeToTheSameBytes() throws {
        let dir = try Fixture.temporaryDirectory("resume")
        let store = try Fixture.store(count: 40, in: dir)
        let whole = dir + "/whole"
        let summary = try pass(store, whole, Self.options())
        XCTAssertFalse(summary.interrupted)
        XCTAssertEqual(summary.committedEpochs, 2)
        XCTAssertTrue(ShardVerifier().verifyDataset(directory: whole).isClean)
        XCTAssertNotNil(try PassRecord.read(directory: whole))
        // ~32 training images: 11 batches an epoch. Stop inside epoch 0, on its last batch, and inside epoch 1.
        for stopAfter in [1, 4, 11, 15] {
            let cut = dir + "/cut\(stopAfter)"
            let stopped = try pass(store, cut, Self.options(), stopAfter: stopAfter)
            XCTAssertTrue(stopped.interrupted, "stop after \(stopAfter)")
            let names = try FileManager.default.contentsOfDirectory(atPath: cut)
            XCTAssertTrue(names.contains { $0.hasSuffix(".partial") }, "\(names)")
            if stopped.committedEpochs > 0 {
                // The finished epoch is a dataset already, while the next one is unfinished.
                let dataset = try ShardDataset(directory: cut)
                XCTAssertEqual(dataset.epochs, Array(0..<stopped.committedEpochs))
                XCTAssertTrue(ShardVerifier().verifyDataset(directory: cut).isClean)
            }
            let resumed = try pass(store, cut, Self.options(resume: true))
            XCTAssertFalse(resumed.interrupted)
            XCTAssertGreaterThan(resumed.records, resumed.computedRecords, "records were kept from the stopped run")
            try assertSameFolders(whole, cut, "stopped after \(stopAfter) batches, resumed")
        }
    }

    /// A crash leaves a `.partial` cut anywhere (a torn block) and no tail: the complete blocks are kept.
    func testCrashesAnywhereInAShardResumeToTheSameBytes() throws {
        let dir = try Fixture.temporaryDirectory("crash")
        let store = try Fixture.store(count: 40, in: dir)
        let whole = dir + "/whole"
        _ = try pass(store, whole, Self.options(epochs: 1))
        let stopped = dir + "/stopped"
        _ = try pass(store, stopped, Self.options(epochs: 1), stopAfter: 9)
        let partial = stopped + "/" + DatasetWriter.shardFileName(epoch: 0, rank: 0) + ".partial"
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: partial))
        var rng = SystemRandomNumberGenerator()
        var lengths = [0, 10, bytes.count - 1, bytes.count] + (0..<6).map { _ in Int.random(in: 0...bytes.count, using: &rng) }
        lengths.append(bytes.count)  // the whole partial, with its tail removed below
        for (trial, length) in lengths.enumerated() {
            let crashed = dir + "/crash\(trial)"
            try FileManager.default.copyItem(atPath: stopped, toPath: crashed)
            try Data(bytes.prefix(length)).write(to: URL(fileURLWithPath: crashed + "/" + DatasetWriter.shardFileName(epoch: 0, rank: 0) + ".partial"))
            try? FileManager.default.removeItem(atPath: crashed + "/" + DatasetWriter.shardFileName(epoch: 0, rank: 0) + ".tail")
            _ = try pass(store, crashed, Self.options(epochs: 1, resume: true))
            try assertSameFolders(whole, crashed, "partial cut to \(length) of \(bytes.count) bytes")
        }
        // A damaged block (a bit flipped on disk) is dropped with everything after it, and recomputed.
        let flipped = dir + "/flipped"
        try FileManager.default.copyItem(atPath: stopped, toPath: flipped)
        var damaged = bytes
        damaged[damaged.count / 2] ^= 0x10
        try Data(damaged).write(to: URL(fileURLWithPath: flipped + "/" + DatasetWriter.shardFileName(epoch: 0, rank: 0) + ".partial"))
        _ = try pass(store, flipped, Self.options(epochs: 1, resume: true))
        try assertSameFolders(whole, flipped, "a damaged block in the partial")
    }

    func testEpochsCanBeAddedToAFinishedPass() throws {
        let dir = try Fixture.temporaryDirectory("append")
        let store = try Fixture.store(count: 30, in: dir)
        let three = dir + "/three"
        _ = try pass(store, three, Self.options(epochs: 3))
        let grown = dir + "/grown"
        _ = try pass(store, grown, Self.options(epochs: 2))
        XCTAssertEqual(try ShardDataset(directory: grown).epochs, [0, 1])
        let summary = try pass(store, grown, Self.options(epochs: 3, resume: true))
        XCTAssertEqual(summary.committedEpochs, 3)
        try assertSameFolders(three, grown, "2 epochs, then 3")
        XCTAssertEqual(try PassRecord.read(directory: grown)?.epochs, 3)
    }

    func testAnotherPassOrADamagedFinishedShardIsRefused() throws {
        let dir = try Fixture.temporaryDirectory("refuse")
        let store = try Fixture.store(count: 24, in: dir)
        let folder = dir + "/pass"
        _ = try pass(store, folder, Self.options(epochs: 2))
        let before = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        func message(_ body: () throws -> Void) -> String {
            do { try body() } catch { return String(describing: error) }
            return "no error"
        }
        let seed = message { _ = try self.pass(store, folder, Self.options(epochs: 2, seed: 12, resume: true)) }
        XCTAssertTrue(seed.contains("[mismatch]") && seed.contains("seed is \"11\" in the folder, \"12\" in this run"), seed)
        let fresh = message { _ = try self.pass(store, folder, Self.options(epochs: 2)) }
        XCTAssertTrue(fresh.contains("--resume"), fresh)
        let fewer = message { _ = try self.pass(store, folder, Self.options(epochs: 1, resume: true)) }
        XCTAssertTrue(fewer.contains("committed 2 epochs"), fewer)
        let notAPass = dir + "/empty"
        try FileManager.default.createDirectory(atPath: notAPass, withIntermediateDirectories: true)
        let none = message { _ = try self.pass(store, notAPass, Self.options(resume: true)) }
        XCTAssertTrue(none.contains("not a teacher pass folder"), none)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).sorted(), before, "refusals change nothing")

        // A finished shard damaged on disk: reported, never rewritten.
        let shard = folder + "/" + DatasetWriter.shardFileName(epoch: 1, rank: 0)
        var bytes = try XCTUnwrap(FileManager.default.contents(atPath: shard))
        bytes[bytes.count / 2] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: shard))
        let damaged = message { _ = try self.pass(store, folder, Self.options(epochs: 2, resume: true)) }
        XCTAssertTrue(damaged.contains("block-crc") && damaged.contains(shard), damaged)
        XCTAssertEqual(FileManager.default.contents(atPath: shard), bytes)
    }
}
