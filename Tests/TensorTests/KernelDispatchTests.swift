import CKernelDispatch
import XCTest
@testable import Tensor

/// Every kernel of CTensorKernels exists as a portable build and (x86-64) an AVX2 build chosen at run
/// time. Each op here runs once with the portable build forced and once as dispatched, on shapes whose
/// channel counts are and are not multiples of 8 (vector body and scalar tails), and the outputs must be
/// equal bit for bit. (Correctness of the math itself is OpGradientTests' and TinyViT's parity tests'.)
/// On a CPU without AVX2 both runs take the portable build; the test says which it compared.
final class KernelDispatchTests: XCTestCase {
    override func tearDown() {
        tinyshard_simd_force_portable(0)
        super.tearDown()
    }

    /// Runs `body` portable, then dispatched, and asserts every returned tensor is bitwise equal.
    private func assertSamePaths(_ name: String, file: StaticString = #filePath, line: UInt = #line, _ body: () -> [Tensor]) {
        tinyshard_simd_force_portable(1)
        let portable = body().map(bits)
        tinyshard_simd_force_portable(0)
        let dispatched = body().map(bits)
        XCTAssertEqual(portable.count, dispatched.count, name, file: file, line: line)
        for (i, (p, d)) in zip(portable, dispatched).enumerated() {
            XCTAssertEqual(p.count, d.count, "\(name) output \(i)", file: file, line: line)
            let differing = zip(p, d).filter { $0 != $1 }.count
            XCTAssertEqual(differing, 0, "\(name) output \(i): \(differing) of \(p.count) values differ between the paths", file: file, line: line)
        }
    }

    private func bits(_ t: Tensor) -> [UInt32] { (0..<t.count).map { t[flat: $0].bitPattern } }
    private func random(_ shape: [Int], _ seed: UInt64, scale: Float = 1) -> Tensor { GradientCheck.random(shape, seed: seed, scale: scale) }

    override class func setUp() {
        super.setUp()
        print("KernelDispatchTests compare portable with \(String(cString: tinyshard_simd_name(tinyshard_simd_active())))")
    }

    func testElementwiseAndGELU() throws {
        for count in [1, 7, 8, 67, 4096 + 13] {
            let x = random([count], 1, scale: 6), y = random([count], 2)
            assertSamePaths("gelu/add \(count)") {
                let sum = Elementwise.add(x, y)
                let inPlace = x.copy()
                Elementwise.addInPlace(inPlace, y)
                return [GELU.forward(x), GELU.backward(y, input: x), sum, inPlace,
                        Elementwise.addScaled(residual: x, branch: y, sampleScale: [0.75])]
            }
        }
        // Extremes: exp's clamps, erf's clamp, zeros of both signs.
        let edges = try Tensor(shape: [12], values: [-100, -87.4, -10, -4.01, -0.0, 0, 1e-30, 3.99, 4.01, 10, 88.8, 200])
        assertSamePaths("gelu edges") { [GELU.forward(edges), GELU.backward(edges, input: edges)] }
    }

    func testBatchNormForwardAndBackward() {
        for (channels, training, residual, gelu) in [(11, true, true, true), (16, true, false, true), (24, false, true, false), (5, true, false, false)] {
            let x = random([2, 3, 70, channels], 3, scale: 2), res = random(x.shape, 4)
            let gamma = random([channels], 5), beta = random([channels], 6), r = random(x.shape, 7)
            let scale: [Float]? = residual ? [2, 0.5] : nil
            assertSamePaths("batchnorm C=\(channels) train=\(training) res=\(residual) gelu=\(gelu)") {
                let rm = Tensor(zeros: [channels]), rv = Tensor(repeating: 1, shape: [channels])
                let (y, st) = BatchNorm.forward(x, gamma: gamma, beta: beta, runningMean: rm, runningVar: rv, training: training,
                                                residual: residual ? res : nil, branchScale: scale, gelu: gelu)
                let dg = Tensor(zeros: [channels]), db = Tensor(zeros: [channels])
                let (dx, dres) = BatchNorm.backward(r, input: x, statistics: st, gamma: gamma, beta: beta, gradGamma: dg, gradBeta: db,
                                                    residual: residual ? res : nil, branchScale: scale, gelu: gelu)
                let sums = Tensor(zeros: [channels])
                Linear.columnSums(x.pointer, rows: x.count / channels, columns: channels, into: sums.pointer)
                let centre = (0..<channels).map { Float($0) * 0.1 }
                let squares = BatchNorm.channelSums(x.pointer, rows: x.count / channels, channels: channels, squaresAbout: centre)
                let squareSums = Tensor(uninitialized: [channels])
                for c in 0..<channels { squareSums[flat: c] = Float(squares[c]) }
                return [y, rm, rv, dx, dg, db, sums, squareSums] + (dres.map { [$0] } ?? [])
            }
        }
    }

    func testLayerNormForwardAndBackward() {
        for channels in [13, 32, 100] {
            let x = random([150, channels], 8, scale: 3), gamma = random([channels], 9), beta = random([channels], 10)
            let r = random(x.shape, 11)
            assertSamePaths("layernorm C=\(channels)") {
                let (y, st) = LayerNorm.forward(x, gamma: gamma, beta: beta)
                let dg = Tensor(zeros: [channels]), db = Tensor(zeros: [channels])
                let dx = LayerNorm.backward(r, input: x, statistics: st, gamma: gamma, gradGamma: dg, gradBeta: db)
                return [y, dx, dg, db]
            }
        }
    }

    func testDepthwiseConvolution() {
        for (channels, stride, kernel) in [(12, 1, 3), (20, 2, 3), (8, 1, 5), (3, 2, 3)] {
            let g = DepthwiseConv.Geometry(batch: 2, channels: channels, height: 9, width: 7, kernel: kernel, stride: stride,
                                           padding: kernel / 2)
            let x = random([2, 9, 7, channels], 12), w = random([channels, 1, kernel, kernel], 13)
            let r = random([2, g.outHeight, g.outWidth, channels], 14)
            assertSamePaths("depthwise C=\(channels) s=\(stride) k=\(kernel)") {
                let dw = Tensor(zeros: w.shape)
                DepthwiseConv.backwardWeights(r, input: x, gradWeight: dw, geometry: g)
                return [DepthwiseConv.forward(x, weight: w, geometry: g), DepthwiseConv.backwardData(r, weight: w, geometry: g), dw]
            }
        }
    }

    func testWindowAttentionSoftmaxAndLoss() {
        for (heads, d, window) in [(2, 4, 3), (3, 8, 7)] {
            let geo = WindowAttention.Geometry(batch: 2, height: 10, width: 9, heads: heads, keyDim: d, window: window)
            let L = heads * 3 * d, N = window * window
            let qkv = random([2 * 10 * 9, L], 15), pad = random([1, L], 16), table = random([heads, N], 17)
            let idx = WindowAttention.biasIndices(window: window)
            let r = random([2 * 10 * 9, heads * d], 18)
            assertSamePaths("attention heads=\(heads) d=\(d) w=\(window)") {
                let (y, p) = WindowAttention.forward(qkv: qkv, padRow: pad, geometry: geo, biasTable: table, indices: idx)
                let dt = Tensor(zeros: table.shape)
                let (dq, dpad) = WindowAttention.backward(r, qkv: qkv, padRow: pad, probabilities: p, geometry: geo, indices: idx,
                                                          gradBiasTable: dt)
                return [y, p, dq, dt] + (dpad.map { [$0] } ?? [])
            }
        }
        let logits = random([4, 1000], 19, scale: 20), targets = Tensor(repeating: 0.001, shape: [4, 1000])
        assertSamePaths("soft-target cross entropy") {
            let (loss, gradient) = SoftTargetCrossEntropy.lossAndGradient(logits: logits, target: targets)
            return [Tensor(repeating: loss, shape: [1]), gradient]
        }
    }

    func testAdamWUpdate() {
        for count in [5, 8, 1000, 70_001] {
            let g = random([count], 20), w0 = random([count], 21), m0 = random([count], 22, scale: 0.1)
            let v0 = random([count], 23, scale: 0.01)
            assertSamePaths("adamw \(count)") {
                let w = w0.copy(), m = m0.copy(), v = Tensor(uninitialized: [count])
                for i in 0..<count { v[flat: i] = abs(v0[flat: i]) }
                AdamWKernel.update(weights: w, gradients: g, m: m, v: v, clip: 0.8, decay: 0.9995, beta1: 0.9, beta2: 0.999,
                                   stepSize: 1e-3, c2: 0.05, epsilon: 1e-8)
                return [w, m, v]
            }
        }
    }
}
