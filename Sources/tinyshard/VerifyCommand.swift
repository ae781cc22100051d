import ArgumentParser
import Foundation
import ShardFormat

/// `tinyshard verify PATH`: every rule of the spec, on a shard or a whole dataset.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a shard or a dataset folder against every rule of the format.",
        discussion: "Exit 0 when clean, 1 when problems were found, 2 when PATH cannot be read.")

    @Argument(help: "A shard file (.tshard, or a .partial left by a killed writer) or a dataset folder.")
    var path: String

    @Flag(help: "Print one JSON object: ok, files, records, bytes, seconds, problems.")
    var json = false

    @Option(help: "List at most this many problems (the rest are counted).")
    var maxProblems = 100

    @Option(help: "checksums: structure, index and every CRC (any byte changed since writing); full: also decode and check every record.")
    var depth: ShardVerifier.Depth = .full

    @Option(help: "Threads that decode blocks at full depth (default: all cores).")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard maxProblems >= 0 else { throw ValidationError("--max-problems must be at least 0") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let input = try InputPath.classify(path)
        let verifier = ShardVerifier(maxProblems: maxProblems, depth: depth, threads: threads)
        let start = Date()
        let report: VerificationReport
        switch input {
        case let .dataset(folder): report = verifier.verifyDataset(directory: folder)
        case let .shard(file): report = verifier.verifyShard(path: file, keys: InputPath.siblingKeys(ofShard: file))
        }
        let seconds = Date().timeIntervalSince(start)
        // The shard or the manifest itself could not be read: an unreadable input, not a problem found in one.
        let entryPoints: Set<String> = [path, path + "/" + DatasetManifest.fileName]
        if report.problems.count == 1, let only = report.problems.first, only.code == ShardErrorCode.io.rawValue,
           let file = only.file, entryPoints.contains(file) {
            throw CLIFailure(only.description)
        }
        if json {
            print(Self.json(report, seconds: seconds).text)
        } else {
            print(Self.human(report, path: path, seconds: seconds), terminator: "")
        }
        if !report.isClean { throw CLIFailure.exit(ExitStatus.problems) }
    }

    static func json(_ report: VerificationReport, seconds: Double) -> JSON {
        .object([
            ("ok", .bool(report.isClean)),
            ("files", .int(report.files)),
            ("records", .int(report.records)),
            ("bytes", .int(report.bytes)),
            ("seconds", .double((seconds * 1e6).rounded() / 1e6)),
            ("problems", .array(report.problems.map(problemJSON))),
            ("omitted_problems", .int(report.omittedProblems)),
        ])
    }

    static func problemJSON(_ problem: ShardProblem) -> JSON {
        .object([
            ("code", .string(problem.code)),
            ("file", problem.file.map(JSON.string)),
            ("block", problem.block.map(JSON.int)),
            ("record", problem.record.map(JSON.int)),
            ("sample_id", problem.sampleID.map { .int(Int($0)) }),
            ("key", problem.sampleKey.map(JSON.string)),
            ("message", .string(problem.message)),
        ] as [(String, JSON?)])
    }

    static func human(_ report: VerificationReport, path: String, seconds: Double) -> String {
        var out = "\(path): \(report.files) file\(report.files == 1 ? "" : "s"), \(report.records) records, "
        out += "\(report.bytes) bytes checked in \(String(format: "%.2f", seconds)) s\n"
        let total = report.problems.count + report.omittedProblems
        if total == 0 {
            out += "OK: no problems\n"
            return out
        }
        out += "FAILED: \(total) problem\(total == 1 ? "" : "s")\n"
        for problem in report.problems { out += "  \(problem)\n" }
        if report.omittedProblems > 0 { out += "  ... and \(report.omittedProblems) more (raise --max-problems to list them)\n" }
        return out
    }
}

extension ShardVerifier.Depth: ExpressibleByArgument {}
