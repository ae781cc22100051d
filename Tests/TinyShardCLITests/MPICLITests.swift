import Foundation
import ImageStore
import ShardFormat
import Tensor
import XCTest

/// `mpirun -np 2 tinyshard teacher|train` against the single-process commands, as CI runs them
/// (`mpirun --allow-run-as-root --oversubscribe -np 2`, one thread per process). Skipped with a message
/// when `mpirun` is not installed (Tools/setup.sh installs openmpi-bin).
final class MPICLITests: XCTestCase {
    // MARK: Running

    /// `mpirun` on PATH.
    static func mpirun() throws -> String {
        for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = String(folder) + "/mpirun"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw XCTSkip("mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev, as Tools/setup.sh does)")
    }

    /// `mpirun -np N` as CI runs it, or nothing (one process) without `ranks`. Shared memory goes without
    /// the single-copy path (process_vm_readv), which containers with a default seccomp profile refuse:
    /// these tests check results, not speed.
    func launcher(_ ranks: Int?) throws -> [String] {
        guard let ranks else { return [] }
        return [try Self.mpirun(), "--allow-run-as-root", "--oversubscribe", "--mca", "btl_vader_single_copy_mechanism", "none",
                "-np", String(ranks), "-x", "OMP_NUM_THREADS"]
    }

    /// Starts `tinyshard ARGS` (under mpirun with `ranks`) with one thread per process, so that both sides of
    /// a comparison run the kernels' sums in the same order.
    func start(_ arguments: [String], ranks: Int?, in folder: TemporaryFolder) throws -> (Process, stdout: String, stderr: String) {
        try CLI.start(arguments, in: folder, launcher: try launcher(ranks), environment: ["OMP_NUM_THREADS": "1"])
    }

    func run(_ arguments: [String], ranks: Int? = nil, in folder: TemporaryFolder) throws -> CLI.Result {
        try CLI.run(arguments, in: folder, launcher: try launcher(ranks), environment: ["OMP_NUM_THREADS": "1"])
    }

    /// 60 digits at 16 px and the tiny architecture of DistillCLITests.
    func setUp(_ folder: TemporaryFolder) throws -> (store: String, arch: String) {
        _ = try Self.mpirun()
        return try DistillCLITests.digitsAndArch(folder)
    }

    /// A teacher for the passes: one epoch on hard labels, weights in FOLDER/teacher/model.safetensors.
    func trainTeacher(store: String, arch: String, in folder: TemporaryFolder, file: StaticString = #filePath, line: UInt = #line) throws {
        let teach = try run(["train", "--images", store, "--arch", arch, "--recipe", "digits", "--hard-labels", "--epochs", "1",
                             "--batch", "8", "--out", folder.file("teacher")], in: folder)
        XCTAssertEqual(teach.status, 0, teach.stderr, file: file, line: line)
    }

    /// Trainable parameters of a run's model (BatchNorm running statistics are not parameters).
    func parameters(_ path: String) throws -> [String: [Float]] {
        let file = try SafeTensors(contentsOf: URL(fileURLWithPath: path))
        var out: [String: [Float]] = [:]
        for (name, tensor) in file.tensors where !name.contains("running_") { out[name] = tensor.toArray() }
        return out
    }

    /// The per-step losses of a run folder's metrics.csv.
    func losses(_ run: String) throws -> [Double] {
        let lines = try String(contentsOfFile: run + "/metrics.csv", encoding: .utf8).split(separator: "\n").dropFirst()
        return lines.compactMap { Double($0.split(separator: ",", omittingEmptySubsequences: false)[2]) }
    }

    /// ‖a − b‖ / ‖b‖ over all parameters.
    func relativeDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> Double {
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        var difference = 0.0, norm = 0.0
        for (name, values) in b {
            guard let other = a[name], other.count == values.count else { return .infinity }
            for (x, y) in zip(other, values) { difference += Double(x - y) * Double(x - y); norm += Double(y) * Double(y) }
        }
        return (difference / max(norm, 1e-30)).squareRoot()
    }

    // MARK: Teacher pass

    /// Records of a dataset by (epoch, sample id), each as its JSON object without rank and ordinal.
    func records(_ dataset: String, in folder: TemporaryFolder) throws -> [[Int]: [NSDictionary]] {
        let dump = try run(["dump", dataset], in: folder)
        XCTAssertEqual(dump.status, 0, dump.stderr)
        var out: [[Int]: [NSDictionary]] = [:]
        for line in dump.stdout.split(separator: "\n") {
            guard var object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let epoch = object["epoch"] as? Int, let id = object["sample_id"] as? Int else {
                XCTFail("not a record: \(line)")
                continue
            }
            object["rank"] = nil
            object["ordinal"] = nil
            out[[epoch, id], default: []].append(object as NSDictionary)
        }
        return out
    }

    /// Two ranks write the single-process pass's records for every (epoch, sample) — the padding
    /// duplicates of the distributed sampler included — and the dataset verifies clean.
    func testTeacherPassOnTwoRanksWritesTheSingleProcessRecords() throws {
        let folder = TemporaryFolder("mpi-teacher")
        let (store, arch) = try setUp(folder)
        try trainTeacher(store: store, arch: arch, in: folder)
        // A held-out fraction that leaves an odd number of training images, so rank 1 gets a padding duplicate.
        let keys = try ImageStore(path: store).keys()
        let heldOut = try XCTUnwrap([0.2, 0.21, 0.22, 0.23, 0.24, 0.25, 0.26].first { f in
            keys.filter { HeldOutSplit.unitHash($0) >= f }.count % 2 == 1
        })
        let trainCount = keys.filter { HeldOutSplit.unitHash($0) >= heldOut }.count
        let common = ["teacher", "--images", store, "--weights", folder.file("teacher/model.safetensors"), "--arch", arch, "--k", "3",
                      "--epochs", "2", "--batch", "8", "--seed", "5", "--recipe", "digits", "--held-out", String(heldOut)]
        let single = try run(common + ["--out", folder.file("single")], in: folder)
        XCTAssertEqual(single.status, 0, single.stderr)
        let pair = try run(common + ["--out", folder.file("pair")], ranks: 2, in: folder)
        XCTAssertEqual(pair.status, 0, pair.stdout + pair.stderr)
        let written = 2 * (trainCount + 1)
        XCTAssertEqual(pair.stdout.components(separatedBy: "wrote \(written) records in 4 shards").count, 2,
                       "rank 0 alone prints: \(pair.stdout)")
        let verify = try run(["verify", folder.file("pair")], in: folder)
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)

        let one = try records(folder.file("single"), in: folder), two = try records(folder.file("pair"), in: folder)
        XCTAssertEqual(Set(one.keys), Set(two.keys))
        XCTAssertEqual(one.count, 2 * trainCount)
        XCTAssertEqual(two.values.reduce(0) { $0 + $1.count }, written, "one padding duplicate per epoch")
        for (key, copies) in two {
            for copy in copies { XCTAssertEqual(copy, one[key]?.first, "epoch \(key[0]), sample \(key[1])") }
        }
        let manifest = try DatasetManifest.read(directory: folder.file("pair"))
        XCTAssertEqual(manifest.shards.map { [$0.epoch, $0.rank, $0.records] },
                       [[0, 0, trainCount / 2 + 1], [0, 1, trainCount / 2 + 1], [1, 0, trainCount / 2 + 1], [1, 1, trainCount / 2 + 1]])
    }

    // MARK: Training

    /// `mpirun -np 2 train --batch 16` and `train --batch 16 --accumulate 2` end with the same parameters;
    /// one batch of 16 does not (BatchNorm normalises over other images), but two ranks with
    /// --sync-batchnorm do (to rounding; without drop path, whose draws follow the micro-batch). A run stopped after one epoch resumes on two ranks bit-exactly,
    /// and refuses to resume in one process.
    func testTwoRanksTrainLikeOneProcessAccumulatingTwo() throws {
        let folder = TemporaryFolder("mpi-train")
        let (store, arch) = try setUp(folder)
        let common = ["train", "--images", store, "--arch", arch, "--recipe", "digits", "--hard-labels", "--epochs", "2",
                      "--batch", "16", "--lr", "3e-3", "--seed", "4", "--drop-path", "0.1"]
        let pair = try run(common + ["--out", folder.file("pair")], ranks: 2, in: folder)
        XCTAssertEqual(pair.status, 0, pair.stdout + pair.stderr)
        XCTAssertTrue(pair.stdout.contains("allreduce") && pair.stdout.contains("2 ranks × 1 micro-batch of 8"), pair.stdout)
        XCTAssertEqual(pair.stdout.components(separatedBy: "run folder:").count, 2, "rank 0 alone prints: \(pair.stdout)")
        let accumulated = try run(common + ["--accumulate", "2", "--out", folder.file("accumulated")], in: folder)
        XCTAssertEqual(accumulated.status, 0, accumulated.stderr)
        let plain = try run(common + ["--out", folder.file("plain")], in: folder)
        XCTAssertEqual(plain.status, 0, plain.stderr)
        // Synchronised BatchNorm normalises like one batch; drop path would not draw alike (its draws follow
        // the micro-batch), so these two runs go without it.
        // Both read the stored order by global batch, so that the two ranks' images are the one batch's.
        let noDropPath = Array(common.dropLast(2)) + ["--order", "batchwise"]
        let plainNoDropPath = try run(noDropPath + ["--out", folder.file("plain-no-drop-path")], in: folder)
        XCTAssertEqual(plainNoDropPath.status, 0, plainNoDropPath.stderr)
        let synced = try run(noDropPath + ["--sync-batchnorm", "--out", folder.file("synced")], ranks: 2, in: folder)
        XCTAssertEqual(synced.status, 0, synced.stdout + synced.stderr)

        let p = try parameters(folder.file("pair/model.safetensors"))
        let equivalence = relativeDifference(p, try parameters(folder.file("accumulated/model.safetensors")))
        print("np=2 vs --accumulate 2: relative parameter difference \(equivalence)")
        XCTAssertLessThanOrEqual(equivalence, 1e-5)
        let oneBatch = relativeDifference(p, try parameters(folder.file("plain/model.safetensors")))
        XCTAssertGreaterThan(oneBatch, 1e-4, "per-rank BatchNorm is not one batch of 16")
        // Synchronised statistics are summed in another order than one batch's, so the weights differ by
        // rounding — which Adam turns into ±lr steps on parameters whose gradient is analytically zero (a
        // bias right before a BatchNorm). The losses, which those parameters cannot change, must agree.
        let syncedLosses = try losses(folder.file("synced")), plainLosses = try losses(folder.file("plain-no-drop-path"))
        XCTAssertEqual(syncedLosses.count, 6)
        XCTAssertEqual(syncedLosses.count, plainLosses.count)
        let worst = zip(syncedLosses, plainLosses).map { abs($0 - $1) / abs($1) }.max() ?? .infinity
        print("np=2 --sync-batchnorm vs one batch of 16: worst relative loss difference \(worst) over \(syncedLosses.count) steps")
        XCTAssertLessThanOrEqual(worst, 1e-5)
        let perRank = zip(try losses(folder.file("pair")), try losses(folder.file("plain"))).map { abs($0 - $1) / abs($1) }.max() ?? 0
        XCTAssertGreaterThan(perRank, 1e-4, "per-rank BatchNorm's losses are not one batch's")

        let stopped = try run(common + ["--out", folder.file("resumed"), "--stop-after", "1"], ranks: 2, in: folder)
        XCTAssertEqual(stopped.status, 0, stopped.stdout + stopped.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("resumed/model.safetensors")))
        let alone = try run(common + ["--out", folder.file("resumed"), "--resume"], in: folder)
        XCTAssertEqual(alone.status, 2)
        XCTAssertTrue(alone.stderr.contains("[mismatch] the checkpoint was written by a run of 2 processes") && alone.stderr.contains("mpirun -np 2"),
                      alone.stderr)
        let resumed = try run(common + ["--out", folder.file("resumed"), "--resume"], ranks: 2, in: folder)
        XCTAssertEqual(resumed.status, 0, resumed.stdout + resumed.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: folder.file("resumed/model.safetensors"))),
                       try Data(contentsOf: URL(fileURLWithPath: folder.file("pair/model.safetensors"))))
    }

    /// SIGUSR1 to mpirun reaches every rank: all stop after the same step, rank 0 writes a mid-epoch
    /// checkpoint, and `--resume` on two ranks ends exactly like an uninterrupted run.
    func testSIGUSR1ToMpirunStopsEveryRankResumably() throws {
        let folder = TemporaryFolder("mpi-signal")
        let (store, arch) = try setUp(folder)
        let common = ["train", "--images", store, "--arch", arch, "--recipe", "digits", "--hard-labels", "--epochs", "5",
                      "--batch", "8", "--seed", "6", "--eval-every", "0"]
        let whole = try run(common + ["--out", folder.file("whole")], ranks: 2, in: folder)
        XCTAssertEqual(whole.status, 0, whole.stdout + whole.stderr)
        let run = folder.file("stopped")
        let (process, outPath, errPath) = try start(common + ["--out", run], ranks: 2, in: folder)
        let deadline = Date().addingTimeInterval(300)
        while Date() < deadline, process.isRunning, !FileManager.default.fileExists(atPath: run + "/checkpoint/state.json") { usleep(2000) }
        XCTAssertTrue(process.isRunning, "training ended before the signal")
        kill(process.processIdentifier, SIGUSR1)
        process.waitUntilExit()
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "", err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        XCTAssertNotEqual(process.terminationStatus, 0)
        XCTAssertTrue(out.contains("interrupted by SIGUSR1") && out.contains("continue with --resume"), out + err)
        XCTAssertFalse(err.contains("MPI_ABORT"), "an agreed stop, not an abort: \(err)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/model.safetensors"))
        let resumed = try self.run(common + ["--out", run, "--resume"], ranks: 2, in: folder)
        XCTAssertEqual(resumed.status, 0, resumed.stdout + resumed.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: run + "/model.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: folder.file("whole/model.safetensors"))))
    }

    /// A record whose parameters are valid but do not fit its image (a hostile file with good checksums),
    /// in rank 1's half of the first batch: rank 1 reports the file and record, rank 0 that rank 1 failed,
    /// both exit without aborting the job, and no checkpoint or model is written.
    func testARecordOnlyRankOneReadsStopsEveryRank() throws {
        let folder = TemporaryFolder("mpi-failure")
        let (store, arch) = try setUp(folder)
        try trainTeacher(store: store, arch: arch, in: folder)
        let pass = try run(["teacher", "--images", store, "--weights", folder.file("teacher/model.safetensors"), "--arch", arch,
                            "--k", "3", "--epochs", "1", "--recipe", "digits", "--out", folder.file("shards")], in: folder)
        XCTAssertEqual(pass.status, 0, pass.stderr)
        // Copy the dataset, giving one record a source 1 px wider than its image (its crop still inside): the
        // second record of rank 1's share (the record-order sampler gives rank 1 the second half of the epoch).
        let source = try ShardDataset(directory: folder.file("shards"))
        let reader = source.shards[0]
        let hostileOrdinal = (reader.recordCount + 1) / 2 + 1
        var schema = reader.schema
        schema.provenance["dataset_checksum"] = nil
        let hostile = folder.file("hostile")
        let writer = try DatasetWriter(directory: hostile, keys: source.keys.loadAll(), schema: schema)
        let shard = try writer.shardWriter(epoch: 0, rank: 0)
        guard case let .params(h, w) = schema.augmentation else { return XCTFail("not a params shard") }
        try reader.forEachRecord { ordinal, record in
            var code = record.augmentation
            if ordinal == hostileOrdinal {
                var parameters = try code.withUnsafeBytes { try AugmentationParameters(code: $0, outputHeight: h, outputWidth: w) }
                parameters.view.sourceWidth += 1
                code = try parameters.encoded(outputHeight: h, outputWidth: w)
            }
            try shard.append(sampleID: record.sampleID, indices: record.indices, values: record.values, augmentation: code)
        }
        try writer.finish(shard)
        _ = try writer.finish()
        let hostileShard = hostile + "/" + DatasetWriter.shardFileName(epoch: 0, rank: 0)

        let args = ["train", "--images", store, "--shards", hostile, "--arch", arch, "--epochs", "1", "--batch", "16"]
        let alone = try run(args + ["--out", folder.file("alone")], in: folder)
        XCTAssertEqual(alone.status, 2)
        XCTAssertEqual(alone.stderrLines.count, 1, alone.stderr)
        XCTAssertTrue(alone.stderr.contains("\(hostileShard): record \(hostileOrdinal)") && alone.stderr.contains("[mismatch]"), alone.stderr)

        let out = folder.file("pair")
        let pair = try run(args + ["--out", out], ranks: 2, in: folder)
        XCTAssertNotEqual(pair.status, 0)
        let lines = pair.stderr.split(separator: "\n").filter { $0.hasPrefix("tinyshard: error: ") }
        XCTAssertEqual(lines.count, 2, pair.stderr)
        XCTAssertTrue(lines.contains { $0.contains("rank 1 of 2: \(hostileShard): record \(hostileOrdinal)") && $0.contains("[mismatch]") }, pair.stderr)
        XCTAssertTrue(lines.contains { $0.contains("rank 0 of 2: [peer_failed] rank 1 of 2 failed during step 1") }, pair.stderr)
        XCTAssertFalse(pair.stderr.contains("MPI_ABORT"), "an agreed exit, not an abort: \(pair.stderr)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/checkpoint"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
    }
}
