import XCTest
@testable import Tensor

/// A finite-difference gradient check per op, on tiny shapes (channel counts chosen to exercise
/// both the 8-wide SIMD path and the scalar tail).
final class OpGradientTests: XCTestCase {
    let gc = GradientCheck()

    func testDenseConv3x3Stride2() {
        let g = Conv2d.Geometry(batch: 2, inChannels: 3, outChannels: 5, height: 7, width: 6, kernel: 3, stride: 2, padding: 1)
        let x = GradientCheck.random([2, 7, 6, 3], seed: 1)
        let w = GradientCheck.random([5, 3, 3, 3], seed: 2, scale: 0.5)
        let y = Conv2d.forward(x, weight: w, geometry: g)
        XCTAssertEqual(y.shape, [2, 4, 3, 5])
        let r = GradientCheck.random(y.shape, seed: 3)
        let dx = Conv2d.backwardData(r, weight: w, geometry: g)
        let dw = Tensor(zeros: w.shape)
        Conv2d.backwardWeights(r, input: x, gradWeight: dw, geometry: g)
        gc.check("conv dx", input: x, analytic: dx, probe: r) { Conv2d.forward(x, weight: w, geometry: g) }
        gc.check("conv dw", input: w, analytic: dw, probe: r) { Conv2d.forward(x, weight: w, geometry: g) }
    }

    func testDepthwiseConvStride1And2() {
        for (stride, channels) in [(1, 11), (2, 16), (2, 5)] {
            let g = DepthwiseConv.Geometry(batch: 2, channels: channels, height: 5, width: 6, stride: stride)
            let x = GradientCheck.random([2, 5, 6, channels], seed: 4)
            let w = GradientCheck.random([channels, 1, 3, 3], seed: 5)
            let y = DepthwiseConv.forward(x, weight: w, geometry: g)
            // reference: direct loops
            for n in 0..<2 { for oy in 0..<g.outHeight { for ox in 0..<g.outWidth { for c in 0..<channels {
                var s: Float = 0
                for ky in 0..<3 { for kx in 0..<3 {
                    let iy = oy * stride - 1 + ky, ix = ox * stride - 1 + kx
                    if iy >= 0 && iy < 5 && ix >= 0 && ix < 6 { s += x[flat: ((n * 5 + iy) * 6 + ix) * channels + c] * w[flat: c * 9 + ky * 3 + kx] }
                } }
                XCTAssertEqual(y[flat: ((n * g.outHeight + oy) * g.outWidth + ox) * channels + c], s, accuracy: 1e-5)
            } } } }
            let r = GradientCheck.random(y.shape, seed: 6)
            let dx = DepthwiseConv.backwardData(r, weight: w, geometry: g)
            let dw = Tensor(zeros: w.shape)
            DepthwiseConv.backwardWeights(r, input: x, gradWeight: dw, geometry: g)
            gc.check("dw s\(stride) dx", input: x, analytic: dx, probe: r) { DepthwiseConv.forward(x, weight: w, geometry: g) }
            gc.check("dw s\(stride) dw", input: w, analytic: dw, probe: r) { DepthwiseConv.forward(x, weight: w, geometry: g) }
        }
    }

    func testBatchNormTrainAndEvalWithResidualDropPathAndGELU() {
        for training in [true, false] {
            for (residual, gelu) in [(false, false), (false, true), (true, true)] {
                let C = 11, M = 2 * 3 * 4
                let x = GradientCheck.random([2, 3, 4, C], seed: 7, scale: 2)
                let res = GradientCheck.random([2, 3, 4, C], seed: 8)
                let gamma = GradientCheck.random([C], seed: 9), beta = GradientCheck.random([C], seed: 10)
                let rm = GradientCheck.random([C], seed: 11, scale: 0.1)
                let rv = Tensor(repeating: 0.7, shape: [C])
                let scale: [Float]? = residual ? [2, 0.5] : nil
                func run() -> (Tensor, BatchNormStatistics) {
                    let m = rm.copy(), v = rv.copy()   // keep running stats fixed across probes
                    return BatchNorm.forward(x, gamma: gamma, beta: beta, runningMean: m, runningVar: v, training: training,
                                             residual: residual ? res : nil, branchScale: scale, gelu: gelu)
                }
                let (y, st) = run()
                let r = GradientCheck.random(y.shape, seed: 12)
                let dg = Tensor(zeros: [C]), db = Tensor(zeros: [C])
                let (dx, dres) = BatchNorm.backward(r, input: x, statistics: st, gamma: gamma, beta: beta, gradGamma: dg, gradBeta: db,
                                                    residual: residual ? res : nil, branchScale: scale, gelu: gelu)
                let tag = "bn train=\(training) res=\(residual) gelu=\(gelu)"
                gc.check(tag + " dx", input: x, analytic: dx, probe: r) { run().0 }
                gc.check(tag + " dγ", input: gamma, analytic: dg, probe: r) { run().0 }
                gc.check(tag + " dβ", input: beta, analytic: db, probe: r) { run().0 }
                if residual { gc.check(tag + " dres", input: res, analytic: dres!, probe: r) { run().0 } }
                _ = M
            }
        }
    }

    func testBatchNormRunningStatisticsUpdate() {
        let C = 3
        let x = GradientCheck.random([4, 2, 2, C], seed: 13)
        let rm = Tensor(zeros: [C]), rv = Tensor(repeating: 1, shape: [C])
        _ = BatchNorm.forward(x, gamma: Tensor(repeating: 1, shape: [C]), beta: Tensor(zeros: [C]), runningMean: rm, runningVar: rv,
                              training: true, gelu: false)
        for c in 0..<C {
            var vals: [Double] = []
            for m in 0..<16 { vals.append(Double(x[flat: m * C + c])) }
            let mean = vals.reduce(0, +) / 16
            let unbiased = vals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 15
            XCTAssertEqual(Double(rm[flat: c]), 0.1 * mean, accuracy: 1e-6)
            XCTAssertEqual(Double(rv[flat: c]), 0.9 + 0.1 * unbiased, accuracy: 1e-6)
        }
    }

    func testGELUMatchesErfFormAndGradient() {
        for i in 0..<2000 {
            let x = Float(i - 1000) / 100
            let exact = 0.5 * Double(x) * (1 + erf(Double(x) / 2.0.squareRoot()))
            // absolute error ~1e-7·|x| in the negative tail, as PyTorch's float `0.5·x·(1 + erf(x/√2))`
            XCTAssertEqual(Double(gelu(x)), exact, accuracy: 2e-7 * max(1, abs(Double(x))), "gelu(\(x))")
            let d = 0.5 * (1 + erf(Double(x) / 2.0.squareRoot())) + Double(x) * exp(-Double(x * x) / 2) / (2 * Double.pi).squareRoot()
            XCTAssertEqual(Double(geluDerivative(x)), d, accuracy: 5e-7, "gelu'(\(x))")
        }
        let x = GradientCheck.random([3, 13], seed: 14, scale: 3)
        let r = GradientCheck.random([3, 13], seed: 15)
        gc.check("gelu", input: x, analytic: GELU.backward(r, input: x), probe: r) { GELU.forward(x) }
    }

    func testExpAccuracy() {
        for i in 0..<2000 {
            let x = Float(i - 1000) / 12
            XCTAssertEqual(Double(kernelExp(x)), exp(Double(x)), accuracy: 3e-7 * exp(Double(x)) + 1e-37)
        }
    }

    func testLayerNorm() {
        let C = 13
        let x = GradientCheck.random([5, C], seed: 16, scale: 2)
        let g = GradientCheck.random([C], seed: 17), b = GradientCheck.random([C], seed: 18)
        let (y, st) = LayerNorm.forward(x, gamma: g, beta: b)
        let r = GradientCheck.random(y.shape, seed: 19)
        let dg = Tensor(zeros: [C]), db = Tensor(zeros: [C])
        let dx = LayerNorm.backward(r, input: x, statistics: st, gamma: g, gradGamma: dg, gradBeta: db)
        gc.check("ln dx", input: x, analytic: dx, probe: r) { LayerNorm.forward(x, gamma: g, beta: b).0 }
        gc.check("ln dγ", input: g, analytic: dg, probe: r) { LayerNorm.forward(x, gamma: g, beta: b).0 }
        gc.check("ln dβ", input: b, analytic: db, probe: r) { LayerNorm.forward(x, gamma: g, beta: b).0 }
    }

    func testLinear() {
        let x = GradientCheck.random([6, 9], seed: 20), w = GradientCheck.random([7, 9], seed: 21), b = GradientCheck.random([7], seed: 22)
        let y = Linear.forward(x, weight: w, bias: b)
        let r = GradientCheck.random(y.shape, seed: 23)
        let dw = Tensor(zeros: w.shape), db = Tensor(zeros: b.shape)
        let dx = Linear.backward(r, input: x, weight: w, gradWeight: dw, gradBias: db)!
        gc.check("linear dx", input: x, analytic: dx, probe: r) { Linear.forward(x, weight: w, bias: b) }
        gc.check("linear dw", input: w, analytic: dw, probe: r) { Linear.forward(x, weight: w, bias: b) }
        gc.check("linear db", input: b, analytic: db, probe: r) { Linear.forward(x, weight: w, bias: b) }
    }

    /// 5×4 map, windows of 3 (padded to 6×6: 4 windows per sample), against a direct double-precision
    /// evaluation of timm's padded-window attention; finite differences for qkv, the padded row and the biases.
    func testWindowAttentionWithBiasesAndPadding() {
        let (B, H, W, heads, d, w) = (2, 5, 4, 2, 4, 3)
        let geo = WindowAttention.Geometry(batch: B, height: H, width: W, heads: heads, keyDim: d, window: w)
        XCTAssertTrue(geo.isPadded)
        XCTAssertEqual(geo.windowCount, B * 2 * 2)
        let N = w * w, L = heads * 3 * d
        let qkv = GradientCheck.random([B * H * W, L], seed: 24)
        let pad = GradientCheck.random([1, L], seed: 23)
        let table = GradientCheck.random([heads, N], seed: 25)
        let idx = WindowAttention.biasIndices(window: w)
        let (y, p) = WindowAttention.forward(qkv: qkv, padRow: pad, geometry: geo, biasTable: table, indices: idx)
        // reference: explicit zero-padded partition where every padded token's projection is `pad`
        func row(_ b: Int, _ yy: Int, _ xx: Int) -> (Int) -> Double {
            if yy < H && xx < W { return { Double(qkv[flat: ((b * H + yy) * W + xx) * L + $0]) } }
            return { Double(pad[flat: $0]) }
        }
        for b in 0..<B { for wy in 0..<2 { for wx in 0..<2 { for h in 0..<heads {
            for i in 0..<N where wy * w + i / w < H && wx * w + i % w < W {
                let qi = row(b, wy * w + i / w, wx * w + i % w)
                var logits = [Double](repeating: 0, count: N)
                for j in 0..<N {
                    let kj = row(b, wy * w + j / w, wx * w + j % w)
                    var s = 0.0
                    for k in 0..<d { s += qi(h * 3 * d + k) * kj(h * 3 * d + d + k) }
                    logits[j] = s / Double(d).squareRoot() + Double(table[flat: h * N + abs(i / w - j / w) * w + abs(i % w - j % w)])
                }
                let m = logits.max()!
                let e = logits.map { exp($0 - m) }, z = e.reduce(0, +)
                let token = (b * H + wy * w + i / w) * W + wx * w + i % w
                for k in 0..<d {
                    var o = 0.0
                    for j in 0..<N { o += e[j] / z * row(b, wy * w + j / w, wx * w + j % w)(h * 3 * d + 2 * d + k) }
                    XCTAssertEqual(Double(y[flat: token * heads * d + h * d + k]), o, accuracy: 1e-5)
                }
            }
        } } } }
        let r = GradientCheck.random(y.shape, seed: 26)
        let dt = Tensor(zeros: table.shape)
        let (dqkv, dpad) = WindowAttention.backward(r, qkv: qkv, padRow: pad, probabilities: p, geometry: geo, indices: idx, gradBiasTable: dt)
        let f = { WindowAttention.forward(qkv: qkv, padRow: pad, geometry: geo, biasTable: table, indices: idx).output }
        gc.check("attn dqkv", input: qkv, analytic: dqkv, probe: r, forward: f)
        gc.check("attn dpad", input: pad, analytic: dpad!, probe: r, forward: f)
        gc.check("attn dbias", input: table, analytic: dt, probe: r, forward: f)
        // unpadded map: no pad row needed, none returned
        let geo2 = WindowAttention.Geometry(batch: 1, height: 3, width: 6, heads: heads, keyDim: d, window: 3)
        let q2 = GradientCheck.random([18, L], seed: 27)
        let (y2, p2) = WindowAttention.forward(qkv: q2, padRow: nil, geometry: geo2, biasTable: table, indices: idx)
        let r2 = GradientCheck.random(y2.shape, seed: 28)
        let (d2, noPad) = WindowAttention.backward(r2, qkv: q2, padRow: nil, probabilities: p2, geometry: geo2, indices: idx, gradBiasTable: dt)
        XCTAssertNil(noPad)
        gc.check("attn dqkv unpadded", input: q2, analytic: d2, probe: r2) {
            WindowAttention.forward(qkv: q2, padRow: nil, geometry: geo2, biasTable: table, indices: idx).output
        }
    }

    func testBiasIndicesMatchTimm() throws {
        // timm enumerates offsets (|dy|, |dx|) in first-seen order, which for the first query is dy·w + dx.
        let idx = WindowAttention.biasIndices(window: 7)
        XCTAssertEqual(idx.count, 49 * 49)
        XCTAssertEqual(Set(idx).count, 49)
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../shared/fixtures/timm_tinyvit/attention_bias_idxs_w7.npy")
        guard FileManager.default.fileExists(atPath: fixture.path) else { return }
        let data = try Data(contentsOf: fixture)
        let values = data.suffix(49 * 49 * 8).withUnsafeBytes { raw in (0..<(49 * 49)).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self) } }
        XCTAssertEqual(values.map(Int32.init), idx)
    }

    func testWindowPartitionPadsWithZerosAndReverseIsItsAdjoint() {
        let (B, H, W, C, ws) = (2, 5, 4, 3, 3)
        let x = GradientCheck.random([B, H, W, C], seed: 27)
        let p = WindowPartition.partition(x, batch: B, height: H, width: W, channels: C, window: ws)
        XCTAssertEqual(p.shape, [B * 2 * 2, 9, C])
        // token (y=4, x=3) of sample 0 is padding in window (1,1): position (1, 0) -> zero
        XCTAssertEqual(p[flat: ((3 * 9) + 1 * 3 + 0) * C], x[flat: ((0 * H + 4) * W + 3) * C])
        XCTAssertEqual(p[flat: ((3 * 9) + 2 * 3 + 0) * C], 0)
        let y = GradientCheck.random(p.shape, seed: 28)
        let back = WindowPartition.reverse(y, batch: B, height: H, width: W, channels: C, window: ws)
        XCTAssertEqual(GradientCheck.dot(p, y), GradientCheck.dot(x, back), accuracy: 1e-4)
        let round = WindowPartition.reverse(p, batch: B, height: H, width: W, channels: C, window: ws)
        XCTAssertEqual(round.toArray(), x.toArray())
    }

    func testPoolingSoftTargetCrossEntropyAndDropPath() {
        let x = GradientCheck.random([2, 5, 3], seed: 29)
        let r = GradientCheck.random([2, 3], seed: 30)
        gc.check("gap", input: x, analytic: GlobalAveragePool.backward(r, batch: 2, positions: 5, channels: 3), probe: r) {
            GlobalAveragePool.forward(x, batch: 2, channels: 3)
        }
        let z = GradientCheck.random([3, 7], seed: 31, scale: 3)
        let t = Tensor(uninitialized: [3, 7])
        for n in 0..<3 { for c in 0..<7 { t[flat: n * 7 + c] = Float(c + n + 1) / Float(7 * (7 + 1) / 2 + 7 * n) } }
        let (_, dz) = SoftTargetCrossEntropy.lossAndGradient(logits: z, target: t)
        let one = Tensor(repeating: 1, shape: [1])
        gc.check("soft ce", input: z, analytic: dz, probe: one) {
            (try? Tensor(shape: [1], values: [SoftTargetCrossEntropy.lossAndGradient(logits: z, target: t).loss]))!
        }
        var rng = SystemRandomNumberGenerator()
        XCTAssertNil(DropPath.sampleScales(batch: 4, rate: 0.1, training: false, using: &rng))
        let s = DropPath.sampleScales(batch: 1000, rate: 0.25, training: true, using: &rng)!
        XCTAssertTrue(s.allSatisfy { $0 == 0 || abs($0 - 1 / 0.75) < 1e-6 })
        XCTAssertEqual(Double(s.filter { $0 == 0 }.count) / 1000, 0.25, accuracy: 0.06)
    }
}
