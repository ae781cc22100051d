// tinyshard-bench: the format's numbers, measured in one run and printed as one table (README.md quotes it).
//
//   swift run -c release tinyshard-bench [--fixtures DIR] [--seconds S] [--work DIR] [--no-python]
//   swift run -c release tinyshard-bench scale DATASET [--lookups N] [--rows N]   (ScaleBench.swift)
//   swift run -c release tinyshard-bench scale-write DATASET OUT                  (ScaleWrite.swift)
//
// Python (the numpy baseline, the PyTorch column) runs with $TINYSHARD_PYTHON, else the project's venv
// (.venv/bin/python, made by Tools/setup-python.sh), else python3 from PATH.
//
// 1. Size: bytes/record of the two shared official-layout fixtures, as stored officially (values + key
//    text), compressed with `zstd -19`, and converted to TinyShard (whole dataset folder), plus a
//    lossless check (export back to the official layout and compare bytes) (FormatBench.swift).
// 2. Speed, one core: dense and sparse decode of a larger dataset drawn from the same synthetic teacher,
//    next to the official numpy reader (Tools/python/official_numpy_reader.py) run in the same process
//    tree; writer records/s; verify MB/s (FormatBench.swift).
// 3. TinyViT-5M train step and inference (TinyViT target), next to PyTorch (ModelBench.swift).
// 4. Image store: bytes/image and read time per image, raw against JPEG, on the fixture photos
//    (ImageStoreBench.swift).
import Foundation
import ShardConvert
import ShardFormat

struct Options {
    var fixtures = "../shared/fixtures/official_logits"
    var generator = "../shared/fixtures/make_official_logits.py"
    var work = NSTemporaryDirectory() + "tinyshard-bench"
    var seconds = 2.0
    var python = true
    /// The interpreter of the Python baselines: $TINYSHARD_PYTHON, else .venv/bin/python, else python3.
    var pythonExecutable = Options.findPython()
    var model = true
    var format = true
    var images = true

    init(_ arguments: [String]) {
        var rest = arguments.dropFirst()
        while let flag = rest.popFirst() {
            switch flag {
            case "--fixtures": fixtures = rest.popFirst() ?? fixtures
            case "--work": work = rest.popFirst() ?? work
            case "--seconds": seconds = Double(rest.popFirst() ?? "") ?? seconds
            case "--no-python": python = false
            case "--no-model": model = false
            case "--model-only": format = false; images = false
            case "--no-images": images = false
            case "--images-only": format = false; model = false
            default:
                FileHandle.standardError.write("usage: tinyshard-bench [--fixtures DIR] [--seconds S] [--work DIR] [--no-python] [--no-model | --model-only] [--no-images | --images-only]\n".data(using: .utf8)!)
                exit(2)
            }
        }
        generator = (fixtures as NSString).deletingLastPathComponent + "/make_official_logits.py"
    }

    static func findPython() -> String {
        if let chosen = ProcessInfo.processInfo.environment["TINYSHARD_PYTHON"], !chosen.isEmpty { return chosen }
        let venv = FileManager.default.currentDirectoryPath + "/.venv/bin/python"
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : "python3"
    }
}

/// One fixture set: where it is and what it holds.
struct FixtureSet {
    var name: String
    var k: Int
    var classes: Int
    /// Images in the larger synthetic set for the speed runs (same teacher, same layout).
    var speedImages: Int
    var keyStyle: String
}

let fixtureSets = [
    FixtureSet(name: "in1k_top10", k: 10, classes: 1000, speedImages: 100_000, keyStyle: "index"),
    FixtureSet(name: "in22k_top100", k: 100, classes: 21841, speedImages: 10_000, keyStyle: "wnid"),
]

// MARK: Helpers

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
}

/// Repeats `pass` (which handles `items` records) until `budget` seconds have passed; records per second.
func rate(items: Int, budget: Double, _ pass: () throws -> Void) rethrows -> Double {
    try pass()  // warm-up: page in the files, fill caches
    var done = 0
    var elapsed = 0.0
    while elapsed < budget {
        elapsed += try seconds(pass)
        done += items
    }
    return Double(done) / elapsed
}

func run(_ arguments: [String]) -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return (127, "") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

func files(under directory: String) -> [String] {
    guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return [] }
    return enumerator.compactMap { $0 as? String }.map { directory + "/" + $0 }.filter {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: $0, isDirectory: &isDirectory) && !isDirectory.boolValue
    }.sorted()
}

func size(_ path: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0 }

func recordCount(official directory: String, k: Int) -> Int {
    files(under: directory).filter { $0.hasSuffix("-values.bin") }.reduce(0) { $0 + size($1) / OfficialLayout.recordSize(k: k) }
}

/// The official files with the sampler's duplicate keys dropped (lowest rank wins), as export must
/// reproduce them: [relative path: bytes].
func deduplicatedOfficial(_ directory: String, k: Int) throws -> [String: Data] {
    var result: [String: Data] = [:]
    let recordSize = OfficialLayout.recordSize(k: k)
    for epochFolder in try FileManager.default.contentsOfDirectory(atPath: directory).sorted() where epochFolder.hasPrefix("logits_top") {
        var seen = Set<Substring>()
        var rank = 0
        while FileManager.default.fileExists(atPath: "\(directory)/\(epochFolder)/\(OfficialLayout.keysFileName(rank: rank))") {
            let keysText = try String(contentsOfFile: "\(directory)/\(epochFolder)/\(OfficialLayout.keysFileName(rank: rank))", encoding: .utf8)
            let values = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(epochFolder)/\(OfficialLayout.valuesFileName(rank: rank))"))
            var keptKeys = ""
            var keptValues = Data()
            for (row, key) in keysText.split(separator: "\n").enumerated() where seen.insert(key).inserted {
                keptKeys += key + "\n"
                keptValues.append(values[(row * recordSize)..<((row + 1) * recordSize)])
            }
            result["\(epochFolder)/\(OfficialLayout.keysFileName(rank: rank))"] = Data(keptKeys.utf8)
            result["\(epochFolder)/\(OfficialLayout.valuesFileName(rank: rank))"] = keptValues
            rank += 1
        }
    }
    return result
}

// MARK: Report

func fmt(_ value: Double, _ digits: Int = 0) -> String {
    let text = String(format: "%.\(digits)f", value)
    guard digits == 0, value >= 10_000 else { return text }
    var grouped = ""
    for (i, character) in text.reversed().enumerated() {
        if i > 0 && i % 3 == 0 { grouped.append(",") }
        grouped.append(character)
    }
    return String(grouped.reversed())
}

if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "scale" {
    exit(ScaleBench.main(Array(CommandLine.arguments.dropFirst(2))))
}
if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "scale-write" {
    exit(ScaleWrite.main(Array(CommandLine.arguments.dropFirst(2))))
}
let options = Options(CommandLine.arguments)
try? FileManager.default.createDirectory(atPath: options.work, withIntermediateDirectories: true)
guard FileManager.default.fileExists(atPath: options.fixtures) else {
    print("tinyshard-bench: fixtures not found at \(options.fixtures) (run from the package root, or pass --fixtures)")
    exit(2)
}

do {
    if !options.format {
        if options.model { try modelTable(options: options) }
        if options.images { try imageStoreTable(options: options) }
        exit(0)
    }
    print("## Size: bytes per record (whole dataset folder: shards + key table + manifest)\n")
    print("| fixture | records | official (values + keys) | zstd -19 of official | TinyShard | TinyShard / official | lossless |")
    print("|---|---:|---:|---:|---:|---:|---|")
    var sizeRows: [SizeRow] = []
    for set in fixtureSets {
        let row = try measureSize(set, options: options)
        sizeRows.append(row)
        print("| \(row.name) | \(row.records) | \(fmt(row.official, 1)) | \(row.zstd.map { fmt($0, 1) } ?? "n/a") | \(fmt(row.ours, 1)) | \(fmt(row.ours / row.official, 3)) | \(row.lossless ? "yes" : "NO") |")
    }
    print("\nTinyShard bytes/record by section (stored, after zlib):\n")
    print("| fixture | " + sizeRows[0].split.map(\.0).joined(separator: " | ") + " |")
    print("|---|" + String(repeating: "---:|", count: sizeRows[0].split.count))
    for row in sizeRows { print("| \(row.name) | " + row.split.map { fmt($0.1, 2) }.joined(separator: " | ") + " |") }

    print("\n## Speed (one core unless noted; records/s)\n")
    print("| data | records | dense, sequential | sparse, sequential | sparse, random key (blocks cached) | numpy official dense | numpy official sparse | dense vs numpy | writer (convert) | verify shard, full, 1 thread | verify shard, full, 2 threads | verify shard, checksums |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for set in fixtureSets {
        let row = try measureSpeed(set, options: options)
        let ratio = row.numpyDense.map { fmt(row.denseSequential / $0, 1) + "x" } ?? "n/a"
        print("| \(row.name) | \(fmt(Double(row.records))) | \(fmt(row.denseSequential)) | \(fmt(row.sparseSequential)) | \(fmt(row.sparseRandom)) | \(row.numpyDense.map { fmt($0) } ?? "n/a") | \(row.numpySparse.map { fmt($0) } ?? "n/a") | \(ratio) | \(fmt(row.writer)) | \(fmt(row.verifyFull1)) MB/s | \(fmt(row.verifyFull2)) MB/s | \(fmt(row.verifyChecksums)) MB/s |")
    }
    if options.model { try modelTable(options: options) }
    if options.images { try imageStoreTable(options: options) }
} catch {
    print("tinyshard-bench: \(error)")
    exit(1)
}
