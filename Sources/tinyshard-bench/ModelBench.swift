import Foundation
import TinyViT

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
