import ArgumentParser
import Foundation
import ShardFormat

/// `tinyshard recover PATH --out PATH`: salvage the intact blocks of a damaged or unfinished shard.
struct Recover: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy every intact block of a damaged or unfinished shard (e.g. a .partial) into a new, valid shard.",
        discussion: "Exit 0 when records were recovered, 1 when none were, 2 when the shard's header cannot be read.")

    @Argument(help: "The damaged shard, or the .partial file a killed writer left.")
    var path: String

    @Option(help: "The shard to write (must not exist).")
    var out: String

    func run() throws {
        guard case .shard = try InputPath.classify(path) else {
            throw CLIFailure(file: path, code: "invalid-argument", "recover works on one shard file, not a dataset folder")
        }
        guard !FileManager.default.fileExists(atPath: out) else {
            throw CLIFailure(file: out, code: "invalid-argument", "already exists; recover never overwrites")
        }
        let report = try ShardRecovery.recover(source: path, output: out)
        var text = "recovered \(report.recordsRecovered) records in \(report.blocksRecovered) blocks from \(path) into \(out)\n"
        if let expected = report.recordsExpected {
            text += "the source's footer promised \(expected) records\n"
        } else {
            text += "the source had no valid footer (an unfinished write): records after the last intact block are unknown\n"
        }
        if report.recordsKnownLost > 0 { text += "lost: \(report.recordsKnownLost) records known lost\n" }
        for damaged in report.damaged {
            text += "skipped: bytes \(damaged.offset)..<\(damaged.offset + damaged.length) (\(damaged.length) bytes): \(damaged.reason)\n"
        }
        print(text, terminator: "")
        if report.recordsRecovered == 0 { throw CLIFailure.exit(ExitStatus.problems) }
    }
}
