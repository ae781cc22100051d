// The measurements of tinyshard-paired (see main.swift). On a shared machine wall-clock rates swing
// with other jobs, so every number here is the best of many short repetitions (the repetition that ran
// with the least interference), beside the same measured in CPU time; the script takes the best over its
// rounds as well.
import Foundation
import ShardConvert
import ShardFormat
import Tensor
import TinyViT

enum PairedSpeed {
    static let metrics = ["dense", "sparse", "convert", "train64", "train224"]

    /// Runs the named metrics (comma-separated; "all" for every one) and prints their lines.
    static func run(_ options: PairedOptions) throws {
        let names = options.metrics == "all" ? metrics : options.metrics.split(separator: ",").map(String.init)
        for name in names where !metrics.contains(name) {
            throw PairedError("unknown metric \(name) (known: \(metrics.joined(separator: ", ")))")
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
    static func decode(dense: Bool, sparse: Bool, options: PairedOptions) throws {
        let source = try speedSource(options)
        let dataset = options.work + "/paired-dataset-in1k"
        if !FileManager.default.fileExists(atPath: dataset + "/manifest.json") {
            try? FileManager.default.removeItem(atPath: dataset)
            _ = try OfficialImporter.importDataset(from: source, to: dataset, options: OfficialImportOptions(classes: 1000))
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
    static func convert(options: PairedOptions) throws {
        let source = try speedSource(options)
        let output = options.work + "/paired-convert-in1k"
        var records = 0
        var fastest = Double.infinity
        for _ in 0..<3 {
            try? FileManager.default.removeItem(atPath: output)
            fastest = min(fastest, try seconds {
                records = try OfficialImporter.importDataset(from: source, to: output, options: OfficialImportOptions(classes: 1000)).recordsWritten
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

    /// The K=10/C=1000 speed set in the official layout (100,000 records from the fixtures' generator),
    /// made once in the work folder.
    static func speedSource(_ options: PairedOptions) throws -> String {
        let folder = options.work + "/speed-in1k_top10-100000"
        if FileManager.default.fileExists(atPath: folder + "/" + OfficialLayout.epochFolderName(k: 10, epoch: 0)) { return folder }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", options.generator, "--out", folder, "--k", "10", "--classes", "1000", "--images", "100000",
                             "--epochs", "1", "--ranks", "1", "--keys", "index", "--seed", "1"]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw PairedError("could not run \(options.generator) (needs python3 with numpy)") }
        return folder
    }

    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = ContinuousClock.now
        try body()
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }
}
