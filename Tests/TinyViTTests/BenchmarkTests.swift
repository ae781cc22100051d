import Foundation
import XCTest
import Tensor
@testable import TinyViT

/// Not a timed test: runs only with TINYVIT_BENCH=1 (release build), prints img/s and the op split.
/// TINYVIT_BENCH_CASES picks cases, e.g. "train224,train112,train64,infer224".
final class BenchmarkTests: XCTestCase {
    func testTrainStepThroughput() throws {
        guard ProcessInfo.processInfo.environment["TINYVIT_BENCH"] == "1" else { throw XCTSkip("set TINYVIT_BENCH=1 to run") }
        let cases = (ProcessInfo.processInfo.environment["TINYVIT_BENCH_CASES"] ?? "train224,train112,train64,infer224")
            .split(separator: ",").map(String.init)
        let steps = Int(ProcessInfo.processInfo.environment["TINYVIT_BENCH_STEPS"] ?? "2") ?? 2
        for c in cases {
            let inference = c.hasPrefix("infer")
            let res = Int(c.drop(while: { !$0.isNumber }))!
            let r = try TinyViTBenchmark.run(configuration: .tiny5M(), batch: 32, resolution: res, inference: inference, steps: steps)
            print(String(format: "%@: %.2f img/s, %.3f s/step, %.3f CPU-s/step, peak RSS %.2f GiB", c, r.imagesPerSecond,
                         r.secondsPerStep, r.cpuSecondsPerStep, Double(r.peakResidentBytes ?? 0) / 1_073_741_824))
            let total = r.opSeconds.reduce(0) { $0 + $1.seconds }
            for (name, s) in r.opSeconds {
                print(String(format: "    %-24@ %7.3f s/step  %5.1f%%", name, s / Double(steps), 100 * s / total))
            }
        }
    }
}
