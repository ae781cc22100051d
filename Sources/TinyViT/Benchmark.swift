import Foundation
import Tensor

/// Timing of TinyViT training steps and inference, for the benchmark executable.
///
/// A train step is forward (BatchNorm in training mode) + soft-target cross entropy + backward
/// + AdamW (lr 1e-3, wd 0.05, clip 5), on random images and soft targets. The first
/// `warmupSteps` are not timed (they create oneDNN primitives and fill the buffer pool).
public enum TinyViTBenchmark {
    /// What one benchmark measured.
    public struct Result: Sendable {
        /// Images per second over the timed steps.
        public var imagesPerSecond: Double
        /// Wall seconds per timed step.
        public var secondsPerStep: Double
        /// Peak resident set size of the process so far (`VmHWM`), in bytes, when available.
        public var peakResidentBytes: Int?
        /// Process CPU time (user + system) per step; with 2 cores an idle machine's wall time is
        /// about half of it, so it tells throughput apart from contention with other jobs.
        public var cpuSecondsPerStep: Double
        /// Seconds per op category over the timed steps, largest first.
        public var opSeconds: [(name: String, seconds: Double)]
    }

    /// Times `steps` train steps (or forward passes when `inference`) at `batch × in_chans × resolution²`.
    public static func run(configuration: TinyViTConfiguration, batch: Int, resolution: Int, inference: Bool = false,
                           warmupSteps: Int = 1, steps: Int = 2, profileOps: Bool = true) throws -> Result {
        let model = try TinyViT(configuration)
        model.initializeWeights(seed: 0)
        var rng = SplitMix64(seed: 1)
        let images = Tensor(uninitialized: [batch, configuration.inChannels, resolution, resolution])
        for i in 0..<images.count { images[flat: i] = rng.nextGaussian() }
        let targets = Tensor(repeating: 1 / Float(configuration.numClasses), shape: [batch, configuration.numClasses])
        let optimizer = AdamW()
        func once() throws {
            if inference {
                _ = try model.forward(images, context: ForwardContext(training: false, recordsGradients: false))
            } else {
                _ = try model.trainStep(images: images, targets: targets, optimizer: optimizer, generator: rng)
            }
        }
        for _ in 0..<warmupSteps { try once() }
        OpProfiler.reset()
        OpProfiler.isEnabled = profileOps
        defer { OpProfiler.isEnabled = false }
        let start = DispatchTime.now().uptimeNanoseconds
        let cpuStart = cpuSeconds()
        for _ in 0..<steps { try once() }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        let cpu = cpuSeconds() - cpuStart
        return Result(imagesPerSecond: Double(batch * steps) / seconds, secondsPerStep: seconds / Double(steps),
                      peakResidentBytes: peakResidentBytes(), cpuSecondsPerStep: cpu / Double(steps),
                      opSeconds: OpProfiler.report())
    }

    /// User + system CPU seconds of this process so far.
    public static func cpuSeconds() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6
    }

    /// `VmHWM` from /proc/self/status (Linux), in bytes.
    public static func peakResidentBytes() -> Int? {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return nil }
        let kb = line.split(separator: " ").compactMap { Int($0) }.first
        return kb.map { $0 * 1024 }
    }
}
