// tinyshard-paired: the few numbers that compare two builds of the libraries, for
// Tools/bench_flag_free.sh, which builds this target against the previous commit's libraries and this
// tree's and runs them interleaved. Only public API that both builds have is used, so the baseline
// builds this source unchanged (the script adds the target to the baseline's manifest).
//
//   tinyshard-paired [METRICS] [--seconds S] [--work DIR] [--fixtures DIR]
//
// METRICS: comma-separated, of dense, sparse, convert, train64, train224 (default: all). Prints
// `PAIRED <metric> <value> <unit>` and `PAIRED-CHECK <name> <value>` lines.
import Foundation

struct PairedOptions {
    var metrics = "all"
    var seconds = 1.0
    var work = NSTemporaryDirectory() + "tinyshard-paired"
    var fixtures = "../shared/fixtures/official_logits"

    init(_ arguments: [String]) throws {
        var rest = arguments.dropFirst()
        while let argument = rest.popFirst() {
            switch argument {
            case "--seconds": seconds = Double(rest.popFirst() ?? "") ?? seconds
            case "--work": work = rest.popFirst() ?? work
            case "--fixtures": fixtures = rest.popFirst() ?? fixtures
            case let list where !list.hasPrefix("-"): metrics = list
            default: throw PairedError("usage: tinyshard-paired [METRICS] [--seconds S] [--work DIR] [--fixtures DIR]")
            }
        }
    }

    /// The fixtures' generator of official-layout logits (numpy), which makes the larger speed set.
    var generator: String { (fixtures as NSString).deletingLastPathComponent + "/make_official_logits.py" }
}

struct PairedError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

do {
    let options = try PairedOptions(CommandLine.arguments)
    try FileManager.default.createDirectory(atPath: options.work, withIntermediateDirectories: true)
    try PairedSpeed.run(options)
} catch {
    print("tinyshard-paired: \(error)")
    exit(1)
}
