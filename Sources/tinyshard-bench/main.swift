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
//    lossless check (export back to the official layout and compare bytes).
// 2. Speed, one core: dense and sparse decode of a larger dataset drawn from the same synthetic teacher,
//    next to the official numpy reader (Tools/python/official_numpy_reader.py) run in the same process
//    tree; writer records/s; verify MB/s.
// 3. TinyViT-5M train step and inference (TinyViT target), next to PyTorch.
// 4. Image store: bytes/image and read time per image, raw against JPEG, on the fixture photos
//    (ImageStoreBench.swift).
import Foundation
import ShardConvert
import ShardFormat
import TinyViT

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

// MARK: Measurements

struct SizeRow {
    var name = ""
    var records = 0
    var official = 0.0
    var zstd: Double?
    var ours = 0.0
    var lossless = false
    var split: [(String, Double)] = []
}

func measureSize(_ set: FixtureSet, options: Options) throws -> SizeRow {
    let source = options.fixtures + "/" + set.name
    let dataset = options.work + "/size-" + set.name
    let exported = options.work + "/export-" + set.name
    try? FileManager.default.removeItem(atPath: dataset)
    try? FileManager.default.removeItem(atPath: exported)
    var row = SizeRow(name: "\(set.name) (K=\(set.k), C=\(set.classes))")
    let officialRecords = recordCount(official: source, k: set.k)
    row.official = Double(files(under: source).map(size).reduce(0, +)) / Double(officialRecords)
    var zstdBytes = 0
    for file in files(under: source) {
        let result = run(["sh", "-c", "zstd -19 -q -c '\(file)' | wc -c"])
        guard result.status == 0, let bytes = Int(result.output.trimmingCharacters(in: .whitespacesAndNewlines)), bytes > 0 else {
            zstdBytes = -1
            break
        }
        zstdBytes += bytes
    }
    row.zstd = zstdBytes > 0 ? Double(zstdBytes) / Double(officialRecords) : nil

    let summary = try OfficialImporter.importDataset(from: source, to: dataset, options: OfficialImportOptions(classes: set.classes))
    row.records = summary.recordsWritten
    let ourBytes = files(under: dataset).map(size).reduce(0, +)
    row.ours = Double(ourBytes) / Double(row.records)
    let statistics = try ShardDataset(directory: dataset).shards.reduce(ShardStatistics()) { $0 + (try $1.statistics()) }
    let perRecord = { (bytes: Int) in Double(bytes) / Double(row.records) }
    row.split = ShardStatistics.Section.allCases.map { ("\($0)", perRecord(statistics[$0].stored)) }
    row.split.append(("overhead", perRecord(ourBytes - statistics.sections.reduce(0) { $0 + $1.stored })))

    _ = try OfficialExporter.export(dataset: dataset, to: exported)
    let expected = try deduplicatedOfficial(source, k: set.k)
    row.lossless = try expected.allSatisfy { path, bytes in try Data(contentsOf: URL(fileURLWithPath: exported + "/" + path)) == bytes }
        && files(under: exported).count == expected.count
    return row
}

struct SpeedRow {
    var name = ""
    var records = 0
    var denseSequential = 0.0
    var sparseSequential = 0.0
    var sparseRandom = 0.0
    var numpyDense: Double?
    var numpySparse: Double?
    var writer = 0.0
    var verifyFull1 = 0.0
    var verifyFull2 = 0.0
    var verifyChecksums = 0.0
}

/// Makes (once) a larger official-layout set from the fixtures' own generator, so that decode runs are
/// not just a cache-resident loop over 1,200 records.
func speedSource(_ set: FixtureSet, options: Options) throws -> String {
    let folder = options.work + "/speed-\(set.name)-\(set.speedImages)"
    if FileManager.default.fileExists(atPath: folder + "/" + OfficialLayout.epochFolderName(k: set.k, epoch: 0)) { return folder }
    let result = run([options.pythonExecutable, options.generator, "--out", folder, "--k", "\(set.k)", "--classes", "\(set.classes)",
                      "--images", "\(set.speedImages)", "--epochs", "1", "--ranks", "1", "--keys", set.keyStyle, "--seed", "1"])
    guard result.status == 0 else { throw ConversionError("io", "could not run \(options.generator) (needs python3 with numpy)") }
    return folder
}

func measureSpeed(_ set: FixtureSet, options: Options) throws -> SpeedRow {
    var row = SpeedRow(name: "\(set.name) (K=\(set.k), C=\(set.classes))")
    let source = try speedSource(set, options: options)
    let dataset = options.work + "/speed-dataset-" + set.name
    try? FileManager.default.removeItem(atPath: dataset)
    var records = 0
    let convertSeconds = try seconds {
        records = try OfficialImporter.importDataset(from: source, to: dataset, options: OfficialImportOptions(classes: set.classes)).recordsWritten
    }
    row.records = records
    row.writer = Double(records) / convertSeconds

    let data = try ShardDataset(directory: dataset)
    let shard = data.shards[0]
    let cursor = shard.makeCursor()
    let batch = set.classes > 10_000 ? 32 : 256  // a training batch of rows that stays in cache
    var rows = [Float](repeating: 0, count: batch * set.classes)
    var indices = [Int32](repeating: 0, count: batch * set.k)
    var values = [Float](repeating: 0, count: batch * set.k)
    row.denseSequential = try rate(items: records, budget: options.seconds) {
        var start = 0
        while start < records {
            let count = min(batch, records - start)
            try rows.withUnsafeMutableBufferPointer {
                try cursor.dense(start..<(start + count), into: UnsafeMutableBufferPointer(rebasing: $0[0..<(count * set.classes)]))
            }
            start += count
        }
    }
    row.sparseSequential = try rate(items: records, budget: options.seconds) {
        var start = 0
        while start < records {
            let count = min(batch, records - start)
            try indices.withUnsafeMutableBufferPointer { i in
                try values.withUnsafeMutableBufferPointer { v in
                    try cursor.sparse(start..<(start + count), indices: UnsafeMutableBufferPointer(rebasing: i[0..<(count * set.k)]),
                                      values: UnsafeMutableBufferPointer(rebasing: v[0..<(count * set.k)]))
                }
            }
            start += count
        }
    }
    // Random access by key, one record at a time: the official reader's access pattern. The official
    // reader holds every record in memory; the like-for-like cursor keeps every decoded block (the
    // warm-up pass of `rate` decodes them).
    var generator = SeededGenerator(seed: 7)
    let allKeys = try data.keys.loadAll()
    let sample = allKeys.keys.shuffled(using: &generator)
    let randomCursor = shard.makeCursor(cachedBlocks: shard.blockCount)
    row.sparseRandom = try rate(items: sample.count, budget: options.seconds) {
        for key in sample {
            guard let (reader, ordinal) = try data.locate(epoch: 0, key: key) else { continue }
            try indices.withUnsafeMutableBufferPointer { i in
                try values.withUnsafeMutableBufferPointer { v in
                    try (reader === shard ? randomCursor : reader.makeCursor()).sparse(
                        [ordinal], indices: UnsafeMutableBufferPointer(rebasing: i[0..<set.k]),
                        values: UnsafeMutableBufferPointer(rebasing: v[0..<set.k]))
                }
            }
        }
    }

    // Verify throughput per shard (a dataset adds one key-table parse and the manifest's whole-file CRCs).
    let bytes = Double(shard.fileSize)
    for (depth, threads) in [(ShardVerifier.Depth.full, 1), (.full, 2), (.checksums, 1)] {
        let verifier = ShardVerifier(depth: depth, threads: threads)
        var clean = true
        let mbps = bytes / 1e6 * (rate(items: 1, budget: options.seconds / 2) { clean = verifier.verifyShard(path: shard.path).isClean && clean })
        guard clean else { throw ConversionError("verify", "the benchmark shard did not verify clean") }
        switch (depth, threads) {
        case (.full, 1): row.verifyFull1 = mbps
        case (.full, _): row.verifyFull2 = mbps
        default: row.verifyChecksums = mbps
        }
    }

    if options.python {
        let result = run([options.pythonExecutable, "Tools/python/official_numpy_reader.py", source, "--classes", "\(set.classes)",
                          "--seconds", "\(options.seconds * 2)"])
        // "epoch 0: N keys, sparse X records/s, dense Y records/s"
        if result.status == 0, let line = result.output.split(separator: "\n").first(where: { $0.contains("sparse") }) {
            let numbers = line.split(whereSeparator: { !$0.isNumber && $0 != "," }).map { $0.replacingOccurrences(of: ",", with: "") }
                .compactMap(Double.init)
            if numbers.count >= 4 {
                row.numpySparse = numbers[2]
                row.numpyDense = numbers[3]
            }
        }
    }
    return row
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

/// TinyViT-5M train steps (forward + soft-target CE + backward + AdamW) and inference, batch 32, next to
/// PyTorch 2.15 + timm on this machine with 2 threads (measured by the project's CEO; quoted in issue 3)
/// and, when torch and timm are installed, PyTorch measured in this same run.
func modelTable(options: Options) throws {
    let reference: [String: Double] = ["train 224": 3.8, "train 112": 11.5, "train 64": 16.4, "inference 224": 9.9]
    print("\n## TinyViT-5M, 1000 classes, batch 32 (img/s; train step = forward + soft CE + backward + AdamW)\n")
    print("| case | TinyShard img/s | s/step | CPU-s/step | PyTorch img/s (reference, 2 threads) | PyTorch img/s (this run) | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    var splits: [(String, [(name: String, seconds: Double)])] = []
    for (name, resolution, inference) in [("train 64", 64, false), ("train 112", 112, false), ("train 224", 224, false),
                                          ("inference 224", 224, true)] {
        let result = try TinyViTBenchmark.run(configuration: .tiny5M(), batch: 32, resolution: resolution,
                                              inference: inference, warmupSteps: 1, steps: 2)
        var torch: Double?
        if options.python {
            let run = run([options.pythonExecutable, "Tools/bench_torch_tinyvit.py", "--resolution", "\(resolution)", "--batch", "32"]
                          + (inference ? ["--inference"] : []))
            if run.status == 0 { torch = Double(run.output.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        let ref = reference[name]!
        print("| \(name) | \(fmt(result.imagesPerSecond, 2)) | \(fmt(result.secondsPerStep, 2)) | \(fmt(result.cpuSecondsPerStep, 2)) | \(fmt(ref, 1)) | \(torch.map { fmt($0, 2) } ?? "n/a (no torch in \(options.pythonExecutable))") | \(fmt(result.imagesPerSecond / (torch ?? ref), 2))x |")
        splits.append((name, result.opSeconds))
    }
    if let peak = TinyViTBenchmark.peakResidentBytes() {
        print("\nPeak resident memory of this process: \(fmt(Double(peak) / Double(1 << 30), 2)) GiB (PyTorch reference at 224 px: 4.4 GiB).")
    }
    if let (name, ops) = splits.first(where: { $0.0 == "train 224" }) {
        let total = ops.reduce(0) { $0 + $1.seconds }
        print("\nTime split of \(name) (share of profiled op time):\n")
        print("| op | share |")
        print("|---|---:|")
        for op in ops.sorted(by: { $0.seconds > $1.seconds }).prefix(12) {
            print("| \(op.name) | \(fmt(100 * op.seconds / max(total, 1e-9), 1))% |")
        }
    }
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
