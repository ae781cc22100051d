// `tinyshard-bench --paired METRICS`: the few numbers that compare two builds of the libraries, printed
// as `PAIRED <metric> <value> <unit>` lines for Tools/bench_flag_free.sh, which runs this same source
// against the previous commit's libraries and this tree's, interleaved, and prints one table.
//
// On a shared machine wall-clock rates swing with other jobs, so every number here is the best of many
// short repetitions (the repetition that ran with the least interference), which is what the two builds'
// code can do; the script takes the best over its rounds as well. Only public API that both builds have
// is used, so the baseline compiles this file unchanged.
import Foundation
import ShardConvert
import ShardFormat
import Tensor
import TinyViT

enum PairedSpeed {
    static let metrics = ["dense", "sparse", "convert", "train64", "train224"]

    /// Runs the named metrics (comma-separated; "all" for every one) and prints their lines.
    static func run(_ list: String, options: Options) throws {
        let names = list == "all" ? metrics : list.split(separator: ",").map(String.init)
        for name in names where !metrics.contains(name) {
            throw ConversionError("usage", "unknown --paired metric \(name) (known: \(metrics.joined(separator: ", ")))")
        }
        if names.contains("dense") || names.contains("sparse") {
            try decode(dense: names.contains("dense"), sparse: names.contains("sparse"), options: options)
        }
        if names.contains("convert") { try convert(options: options) }
        for resolution in [64, 224] where names.contains("train\(resolution)") {
            try trainStep(resolution: resolution, steps: resolution >= 224 ? 3 : 8)
        }
    }

    /// Dense and sparse sequential decode of the K=10/C=1000 speed set (100,000 records), batches of 256:
    /// records/s of the fastest full pass within the time budget.
    static func decode(dense: Bool, sparse: Bool, options: Options) throws {
        let set = fixtureSets[0]
        let source = try speedSource(set, options: options)
        let dataset = options.work + "/paired-dataset-" + set.name
        if !FileManager.default.fileExists(atPath: dataset + "/manifest.json") {
            try? FileManager.default.removeItem(atPath: dataset)
            _ = try OfficialImporter.importDataset(from: source, to: dataset, options: OfficialImportOptions(classes: set.classes))
        }
        let data = try ShardDataset(directory: dataset)
        let passes = SequentialPasses(data.shards[0], batch: 256)
        let records = passes.records
        var checksum = 0.0
        func densePass() throws { checksum = try passes.dense() }
        func sparsePass() throws { checksum = try passes.sparse() }
        for (name, pass) in [("dense", densePass), ("sparse", sparsePass)] where name == "dense" ? dense : sparse {
            let (wall, cpu) = try best(budget: options.seconds, pass)
            print("PAIRED \(name) \(fmtRate(Double(records) / wall)) records/s")
            print("PAIRED \(name)-cpu \(fmtRate(Double(records) / cpu)) records/s")
            print("PAIRED-CHECK \(name)-checksum \(String(checksum.bitPattern, radix: 16))")
        }
    }

    /// The writer: converting the K=10/C=1000 speed set from the official layout (parse, float16 checks,
    /// block encoding, zlib, CRC, file writes): records/s of the fastest of three conversions.
    static func convert(options: Options) throws {
        let set = fixtureSets[0]
        let source = try speedSource(set, options: options)
        let output = options.work + "/paired-convert-" + set.name
        var records = 0
        var fastest = Double.infinity
        for _ in 0..<3 {
            try? FileManager.default.removeItem(atPath: output)
            fastest = min(fastest, try seconds {
                records = try OfficialImporter.importDataset(from: source, to: output, options: OfficialImportOptions(classes: set.classes)).recordsWritten
            })
        }
        try? FileManager.default.removeItem(atPath: output)
        print("PAIRED convert \(fmtRate(Double(records) / fastest)) records/s")
    }

    /// TinyViT-5M train steps (forward + soft-target CE + backward + AdamW), batch 32: images/s of the
    /// fastest of `steps` timed steps after one warm-up step, and images per CPU-second of the step that
    /// used the least process CPU time. The losses of the steps are printed as bit
    /// patterns so that the two builds' arithmetic can be compared.
    static func trainStep(resolution: Int, steps: Int) throws {
        let configuration = TinyViTConfiguration.tiny5M()
        let model = try TinyViT(configuration)
        model.initializeWeights(seed: 0)
        var rng = SplitMix64(seed: 1)
        let batch = 32
        let images = Tensor(uninitialized: [batch, configuration.inChannels, resolution, resolution])
        for i in 0..<images.count { images[flat: i] = rng.nextGaussian() }
        let targets = Tensor(repeating: 1 / Float(configuration.numClasses), shape: [batch, configuration.numClasses])
        let optimizer = AdamW()
        var losses: [String] = []
        func step() throws {
            let (loss, _) = try model.trainStep(images: images, targets: targets, optimizer: optimizer, generator: SplitMix64(seed: 2))
            losses.append(String(loss.bitPattern, radix: 16))
        }
        try step()
        var fastest = (wall: Double.infinity, cpu: Double.infinity)
        for _ in 0..<steps {
            let cpuStart = TinyViTBenchmark.cpuSeconds()
            let wall = try seconds(step)
            fastest = (min(fastest.wall, wall), min(fastest.cpu, TinyViTBenchmark.cpuSeconds() - cpuStart))
        }
        print("PAIRED train\(resolution) \(String(format: "%.2f", Double(batch) / fastest.wall)) img/s")
        // Process CPU time (all threads): images per CPU-second, steadier than wall time on a busy machine.
        print("PAIRED train\(resolution)-cpu \(String(format: "%.2f", Double(batch) / fastest.cpu)) img/cpu-s")
        print("PAIRED-CHECK train\(resolution)-losses \(losses.joined(separator: ","))")
    }

    /// The shortest wall-clock and thread-CPU time of `pass` among repetitions filling `budget` seconds
    /// (at least 5), after a warm-up. CPU time leaves out the time other jobs held the core.
    static func best(budget: Double, _ pass: () throws -> Void) throws -> (wall: Double, cpu: Double) {
        try pass()
        var fastest = (wall: Double.infinity, cpu: Double.infinity)
        var total = 0.0
        var count = 0
        while total < budget || count < 5 {
            let cpuStart = threadCPUSeconds()
            let elapsed = try seconds(pass)
            fastest = (min(fastest.wall, elapsed), min(fastest.cpu, threadCPUSeconds() - cpuStart))
            total += elapsed
            count += 1
        }
        return fastest
    }

    static func threadCPUSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    static func fmtRate(_ value: Double) -> String { String(format: "%.0f", value) }
}
