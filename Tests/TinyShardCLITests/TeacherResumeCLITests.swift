import Foundation
import ShardFormat
import XCTest

/// `tinyshard teacher` stopped by a signal (one process: SIGTERM; two ranks under mpirun: SIGUSR1) and
/// continued with `--resume` ends byte for byte as an uninterrupted pass (Spec/PASS.md); a resume with
/// another world size is refused, naming it.
final class TeacherResumeCLITests: XCTestCase {
    /// `mpirun -np N` as MPICLITests runs it, or nothing for one process; one thread per process, so that both
    /// passes of a comparison run the kernels' sums in the same order.
    func launcher(_ ranks: Int?) throws -> [String] {
        guard let ranks else { return [] }
        return [try MPICLITests.mpirun(), "--allow-run-as-root", "--oversubscribe", "--mca", "btl_vader_single_copy_mechanism", "none",
                "-np", String(ranks), "-x", "OMP_NUM_THREADS"]
    }

    func run(_ arguments: [String], ranks: Int? = nil, in folder: TemporaryFolder) throws -> CLI.Result {
        try CLI.run(arguments, in: folder, launcher: try launcher(ranks), environment: ["OMP_NUM_THREADS": "1"])
    }

    func start(_ arguments: [String], ranks: Int?, in folder: TemporaryFolder) throws -> (Process, stdout: String, stderr: String) {
        try CLI.start(arguments, in: folder, launcher: try launcher(ranks), environment: ["OMP_NUM_THREADS": "1"])
    }

    func setUp(_ folder: TemporaryFolder, ranks: Int?) throws -> (store: String, arch: String) {
        if ranks != nil { _ = try MPICLITests.mpirun() }
        return try DistillCLITests.digitsAndArch(folder)
    }

    func trainTeacher(store: String, arch: String, in folder: TemporaryFolder) throws {
        let teach = try run(["train", "--images", store, "--arch", arch, "--recipe", "digits", "--hard-labels", "--epochs", "1",
                             "--batch", "8", "--out", folder.file("teacher")], in: folder)
        XCTAssertEqual(teach.status, 0, teach.stderr)
    }

    /// Every file of a finished pass folder, by name.
    func files(_ folder: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder) {
            out[name] = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + name))
        }
        return out
    }

    func stopAndResume(ranks: Int?, signal: Int32, _ name: String) throws {
        let folder = TemporaryFolder(name)
        let (store, arch) = try setUp(folder, ranks: ranks)
        try trainTeacher(store: store, arch: arch, in: folder)
        let common = ["teacher", "--images", store, "--weights", folder.file("teacher/model.safetensors"), "--arch", arch,
                      "--k", "3", "--epochs", "12", "--batch", "3", "--records-per-block", "4", "--seed", "5", "--recipe", "digits"]
        let whole = try run(common + ["--out", folder.file("whole")], ranks: ranks, in: folder)
        XCTAssertEqual(whole.status, 0, whole.stdout + whole.stderr)

        let stopped = folder.file("stopped")
        let (process, outPath, errPath) = try start(common + ["--out", stopped], ranks: ranks, in: folder)
        let deadline = Date().addingTimeInterval(300)
        while Date() < deadline, process.isRunning, !FileManager.default.fileExists(atPath: stopped + "/manifest.json") { usleep(1000) }
        XCTAssertTrue(process.isRunning, "the pass ended before the signal")
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "", err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        XCTAssertNotEqual(process.terminationStatus, 0)
        XCTAssertTrue(out.contains("continue with the same command and --resume"), out + err)
        XCTAssertFalse(err.contains("MPI_ABORT"), "an agreed stop, not an abort: \(err)")
        // The epochs committed so far are a dataset already.
        let verify = try run(["verify", stopped], in: folder)
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)

        if ranks != nil {
            let alone = try run(common + ["--out", stopped, "--resume"], in: folder)
            XCTAssertEqual(alone.status, 2)
            XCTAssertTrue(alone.stderr.contains("[mismatch]") && alone.stderr.contains("world_size is \"2\" in the folder, \"1\" in this run"),
                          alone.stderr)
        }
        let resumed = try run(common + ["--out", stopped, "--resume"], ranks: ranks, in: folder)
        XCTAssertEqual(resumed.status, 0, resumed.stdout + resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("kept from the interrupted run"), resumed.stdout)
        XCTAssertEqual(try files(stopped), try files(folder.file("whole")))
    }

    func testSIGTERMStopsAPassThatResumesToTheSameBytes() throws {
        try stopAndResume(ranks: nil, signal: SIGTERM, "resume-one")
    }

    func testSIGUSR1ToMpirunStopsEveryRankAndTheyResumeToTheSameBytes() throws {
        try stopAndResume(ranks: 2, signal: SIGUSR1, "resume-two")
    }
}
