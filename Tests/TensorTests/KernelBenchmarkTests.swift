import Foundation
import XCTest
@testable import Tensor

/// Kernel throughput probes; run only with TENSOR_BENCH=1 (release build). Not timed tests.
final class KernelBenchmarkTests: XCTestCase {
    func time(_ label: String, flops: Double = 0, bytes: Double = 0, repeats: Int = 5, _ body: () -> Void) {
        body()
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<repeats { body() }
        let s = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 / Double(repeats)
        print(String(format: "%-40@ %8.2f ms  %6.1f GFLOP/s  %6.1f GB/s", label, s * 1e3, flops / s * 1e-9, bytes / s * 1e-9))
    }

    func testKernelThroughput() throws {
        guard ProcessInfo.processInfo.environment["TENSOR_BENCH"] == "1" else { throw XCTSkip("set TENSOR_BENCH=1 to run") }
        let M = 25088, K = 128, N = 512
        let a = Tensor(repeating: 0.5, shape: [M, K]), w = Tensor(repeating: 0.1, shape: [N, K])
        let y = Tensor(zeros: [M, N]), dw = Tensor(zeros: [N, K]), dx = Tensor(zeros: [M, K])
        let f = 2.0 * Double(M * N * K)
        time("gemm NT (fwd) 25088x128 -> 512", flops: f) { Gemm.run(transB: true, m: M, n: N, k: K, a: a.pointer, lda: K, b: w.pointer, ldb: K, c: y.pointer, ldc: N) }
        time("gemm NN (dx)", flops: f) { Gemm.run(m: M, n: K, k: N, a: y.pointer, lda: N, b: w.pointer, ldb: K, c: dx.pointer, ldc: K) }
        time("gemm TN (dw)", flops: f) { Gemm.run(transA: true, m: N, n: K, k: M, a: y.pointer, lda: N, b: a.pointer, ldb: K, c: dw.pointer, ldc: K) }
        let wt = Tensor(repeating: 0.1, shape: [K, N])
        let dwt = Tensor(zeros: [K, N])
        for _ in 0..<3 {
            time("gemm NN (dx)", flops: f) { Gemm.run(m: M, n: K, k: N, a: y.pointer, lda: N, b: w.pointer, ldb: K, c: dx.pointer, ldc: K) }
            time("gemm NT (dx via Wt)", flops: f) { Gemm.run(transB: true, m: M, n: K, k: N, a: y.pointer, lda: N, b: wt.pointer, ldb: N, c: dx.pointer, ldc: K) }
            time("gemm TN (dw)", flops: f) { Gemm.run(transA: true, m: N, n: K, k: M, a: y.pointer, lda: N, b: a.pointer, ldb: K, c: dw.pointer, ldc: K) }
            time("gemm TN (dwT = XT dY)", flops: f) { Gemm.run(transA: true, m: K, n: N, k: M, a: a.pointer, lda: K, b: y.pointer, ldb: N, c: dwt.pointer, ldc: N) }
            time("gemm NT fwd", flops: f) { Gemm.run(transB: true, m: M, n: N, k: K, a: a.pointer, lda: K, b: w.pointer, ldb: K, c: y.pointer, ldc: N) }
        }
        for (side, heads, ws) in [(28, 4, 7), (14, 5, 14)] {
            let d = 32, N = ws * ws
            let geo = WindowAttention.Geometry(batch: 32, height: side, width: side, heads: heads, keyDim: d, window: ws)
            let qkv = Tensor(repeating: 0.01, shape: [32 * side * side, heads * 3 * d])
            let table = Tensor(zeros: [heads, N]), idx = WindowAttention.biasIndices(window: ws)
            let af = 4.0 * Double(geo.windowCount * heads * N * N * d)
            time("attn fwd \(side)px w\(ws)", flops: af) {
                _ = WindowAttention.forward(qkv: qkv, padRow: nil, geometry: geo, biasTable: table, indices: idx)
            }
        }
        if let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) { print(s.split(separator: "\n").filter { $0.hasPrefix("Threads") }) }
        let big = Tensor(repeating: 0.3, shape: [M * N / 8])
        time("gelu fwd 1.6M", bytes: Double(big.count * 8)) { _ = GELU.forward(big) }
        Parallel.workerCount = 1
        time("gelu fwd 1 worker", bytes: Double(big.count * 8)) { _ = GELU.forward(big) }
        Parallel.workerCount = 2
        time("gelu bwd 1.6M", bytes: Double(big.count * 12)) { _ = GELU.backward(big, input: big) }
        let x = Tensor(repeating: 0.3, shape: [100352, 64])
        let g = Tensor(repeating: 1, shape: [64]), b = Tensor(zeros: [64])
        time("bn train fwd+gelu 100352x64", bytes: Double(x.count * 4 * 4)) {
            _ = BatchNorm.forward(x, gamma: g, beta: b, runningMean: Tensor(zeros: [64]), runningVar: Tensor(repeating: 1, shape: [64]), training: true, gelu: true)
        }
        time("bn eval fwd no act", bytes: Double(x.count * 8)) {
            _ = BatchNorm.forward(x, gamma: g, beta: b, runningMean: Tensor(zeros: [64]), runningVar: Tensor(repeating: 1, shape: [64]), training: false, gelu: false)
        }
        time("add", bytes: Double(x.count * 12)) { _ = Elementwise.add(x, x) }
    }
}
