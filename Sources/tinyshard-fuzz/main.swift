import Foundation
import ImageStore
import Interchange
import ShardFormat

// tinyshard-fuzz: the project's fuzzing harness (Fuzz/README.md).
//
//   tinyshard-fuzz campaign TARGET --seeds DIR... --cases N [--seed S] [--case-limit-ms MS] [--rss-limit-mb MB]
//       structure-aware mutation campaign in this process (works in any build); exit 1 on a slow case or
//       too much memory (a crash ends the process, which the caller sees).
//   tinyshard-fuzz emit TARGET --seeds DIR... --cases N --seed S --out DIR
//       writes the mutated cases instead of running them (input of the Swift/Python differential).
//   tinyshard-fuzz check shard|keys|manifest FILE...
//       one JSON line per file: what the reader and the verifier say (the differential's Swift side).
//   tinyshard-fuzz seeds DIR
//       writes the generated seed corpora (image store, .npy, safetensors, official layout).
//   tinyshard-fuzz libfuzzer TARGET [libFuzzer flags] [CORPUS...]
//       coverage-guided run; needs a build with -sanitize=fuzzer and -DLIBFUZZER (Fuzz/run.sh).

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("tinyshard-fuzz: \(message)\n".utf8))
    exit(2)
}

guard let command = CommandLine.arguments.dropFirst().first else { fail("usage: tinyshard-fuzz campaign|emit|check|seeds|libfuzzer ...") }
/// The arguments after the command (a constant, so the helpers below can read it from any context).
let arguments = Array(CommandLine.arguments.dropFirst(2))

func option(_ name: String) -> String? {
    guard let at = arguments.firstIndex(of: name), at + 1 < arguments.count else { return nil }
    return arguments[at + 1]
}

func options(_ name: String) -> [String] {
    guard let at = arguments.firstIndex(of: name) else { return [] }
    return Array(arguments[(at + 1)...].prefix { !$0.hasPrefix("--") })
}

func target(_ name: String?) -> FuzzTarget {
    guard let name, let target = FuzzTarget(rawValue: name) else {
        fail("TARGET must be one of \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return target
}

/// Seed files of a target from the given folders.
func seeds(_ target: FuzzTarget, _ folders: [String]) -> [[UInt8]] {
    let suffix: String? = [.shard: ".tshard", .keys: ".tsk", .manifest: ".manifest"][target]
    var out: [[UInt8]] = []
    for folder in folders {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        for name in names.sorted() where suffix.map(name.hasSuffix) ?? !name.hasPrefix(".") {
            if let data = FileManager.default.contents(atPath: folder + "/" + name) { out.append([UInt8](data)) }
        }
    }
    guard !out.isEmpty else { fail("no seeds for \(target.rawValue) in \(folders)") }
    return out
}

func peakRSSMegabytes() -> Int {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return usage.ru_maxrss / 1024
}

switch command {
case "campaign", "emit":
    let fuzzTarget = target(arguments.first)
    let corpus = seeds(fuzzTarget, options("--seeds"))
    let cases = Int(option("--cases") ?? "1000") ?? 1000
    var random = FuzzRandom(seed: UInt64(option("--seed") ?? "1") ?? 1)
    let limit = Double(option("--case-limit-ms") ?? "2000") ?? 2000
    let rssLimit = Int(option("--rss-limit-mb") ?? "1024") ?? 1024
    let out = option("--out")
    if let out { try? FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) }
    var slowest = (ms: 0.0, number: -1)
    let start = Date()
    for number in 0..<cases {
        var bytes = corpus[random.below(corpus.count)]
        for _ in 0...random.below(2) { bytes = fuzzTarget.mutate(bytes, &random) }
        if let out {
            let suffix = [FuzzTarget.shard: ".tshard", .keys: ".tsk", .manifest: ".manifest"][fuzzTarget] ?? ".bin"
            Scratch.write(String(format: "%@/case%06d%@", out, number, suffix), bytes)
            continue
        }
        let caseStart = Date()
        fuzzTarget.run(bytes)
        let ms = Date().timeIntervalSince(caseStart) * 1000
        if ms > slowest.ms { slowest = (ms, number) }
        if ms > limit {
            Scratch.write("fuzz-slow-\(fuzzTarget.rawValue)-\(number).bin", bytes)
            fail("case \(number) took \(Int(ms)) ms (limit \(Int(limit))); saved as fuzz-slow-\(fuzzTarget.rawValue)-\(number).bin")
        }
    }
    Scratch.clean()
    let rss = peakRSSMegabytes()
    print("\(fuzzTarget.rawValue): \(cases) cases \(out == nil ? "run" : "written") in \(String(format: "%.1f", Date().timeIntervalSince(start))) s, "
          + "slowest \(String(format: "%.1f", slowest.ms)) ms (case \(slowest.number)), peak RSS \(rss) MB")
    if rss > rssLimit { fail("peak RSS \(rss) MB is above the \(rssLimit) MB limit") }

case "check":
    guard let kind = arguments.first else { fail("check shard|keys|manifest FILE...") }
    for path in arguments.dropFirst() {
        print(Outcome.check(kind, path: path).jsonLine)
    }

case "seeds":
    guard let folder = arguments.first else { fail("seeds DIR") }
    try SeedCorpus.write(to: folder)

case "libfuzzer":
    #if LIBFUZZER
    LibFuzzer.run(target(arguments.first), arguments: Array(arguments.dropFirst()))
    #else
    fail("this build has no libFuzzer; build with Fuzz/run.sh (swift build -Xswiftc -sanitize=fuzzer -Xswiftc -DLIBFUZZER)")
    #endif

default:
    fail("unknown command \(command)")
}
