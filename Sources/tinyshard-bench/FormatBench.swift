// The format tables of tinyshard-bench (main.swift): bytes per record of the fixtures and decode, write and
// verify speed, next to the official layout and its numpy reader.
import DemoData
import Foundation
import ShardConvert
import ShardFormat

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
