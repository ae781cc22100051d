/// LayerNorm over the last dimension of `(rows, C)` data (PyTorch `nn.LayerNorm(C)`, eps 1e-5).
public enum LayerNorm {
    public static let epsilon: Float = 1e-5

    /// Per-row statistics saved for the backward pass.
    public struct Statistics: Sendable {
        public var mean: [Float]
        public var invStd: [Float]
    }

    public static func forward(_ input: Tensor, gamma: Tensor, beta: Tensor) -> (output: Tensor, statistics: Statistics) {
        let C = gamma.count
        let M = input.count / C
        let out = Tensor(uninitialized: input.shape)
        var mean = [Float](repeating: 0, count: M), invStd = [Float](repeating: 0, count: M)
        let x = input.pointer, y = out.pointer, g = gamma.pointer, b = beta.pointer
        let C8 = C / 8 * 8
        mean.withUnsafeMutableBufferPointer { mp in invStd.withUnsafeMutableBufferPointer { rp in
            let MEAN = mp.baseAddress!, RSTD = rp.baseAddress!
            Parallel.forRanges(M, grain: max(1, 8192 / C)) { rows in
                for row in rows {
                    let xr = x + row * C, yr = y + row * C
                    var s8 = Float8(); var c = 0
                    while c < C8 { s8 += load8(xr, c); c += 8 }
                    var s = s8.laneSum
                    while c < C { s += xr[c]; c += 1 }
                    let m = s / Float(C)
                    var v8 = Float8(); c = 0
                    while c < C8 { let d = load8(xr, c) - m; v8 += d * d; c += 8 }
                    var v = v8.laneSum
                    while c < C { let d = xr[c] - m; v += d * d; c += 1 }
                    let r = 1 / (v / Float(C) + epsilon).squareRoot()
                    MEAN[row] = m; RSTD[row] = r
                    c = 0
                    while c < C8 { store8((load8(xr, c) - m) * r * load8(g, c) + load8(b, c), yr, c); c += 8 }
                    while c < C { yr[c] = (xr[c] - m) * r * g[c] + b[c]; c += 1 }
                }
            }
        } }
        return (out, Statistics(mean: mean, invStd: invStd))
    }

    /// Returns the input gradient; writes (overwrites) `gradGamma` and `gradBeta`.
    public static func backward(_ gradOutput: Tensor, input: Tensor, statistics st: Statistics,
                                gamma: Tensor, gradGamma: Tensor, gradBeta: Tensor) -> Tensor {
        let C = gamma.count
        let M = input.count / C
        let dx = Tensor(uninitialized: input.shape)
        let x = input.pointer, dy = gradOutput.pointer, d = dx.pointer, g = gamma.pointer
        let C8 = C / 8 * 8
        let workers = Parallel.workerCount
        var partial = [Double](repeating: 0, count: workers * 2 * C)
        st.mean.withUnsafeBufferPointer { mp in st.invStd.withUnsafeBufferPointer { rp in
        partial.withUnsafeMutableBufferPointer { pp in
            let MEAN = mp.baseAddress!, RSTD = rp.baseAddress!, P = pp.baseAddress!
            Parallel.forWorkers(M, grain: max(1, 8192 / C)) { w, rows in
                let acc = UnsafeMutablePointer<Float>.allocate(capacity: 2 * C)
                defer { acc.deallocate() }
                acc.initialize(repeating: 0, count: 2 * C)
                for row in rows {
                    let o = row * C
                    let m = MEAN[row], r = RSTD[row]
                    var s1 = Float8(), s2 = Float8(); var c = 0
                    while c < C8 {
                        let xh = (load8(x, o + c) - m) * r
                        let gy = load8(dy, o + c)
                        let dxh = gy * load8(g, c)
                        s1 += dxh; s2 += dxh * xh
                        store8(load8(acc, c) + gy * xh, acc, c)
                        store8(load8(acc, C + c) + gy, acc, C + c)
                        c += 8
                    }
                    var a1 = s1.laneSum, a2 = s2.laneSum
                    while c < C {
                        let xh = (x[o + c] - m) * r
                        let dxh = dy[o + c] * g[c]
                        a1 += dxh; a2 += dxh * xh
                        acc[c] += dy[o + c] * xh; acc[C + c] += dy[o + c]
                        c += 1
                    }
                    a1 /= Float(C); a2 /= Float(C)
                    c = 0
                    while c < C8 {
                        let xh = (load8(x, o + c) - m) * r
                        store8(r * (load8(dy, o + c) * load8(g, c) - a1 - xh * a2), d, o + c)
                        c += 8
                    }
                    while c < C {
                        let xh = (x[o + c] - m) * r
                        d[o + c] = r * (dy[o + c] * g[c] - a1 - xh * a2)
                        c += 1
                    }
                    if (row - rows.lowerBound) % 64 == 63 || row == rows.upperBound - 1 {
                        for i in 0..<(2 * C) { P[w * 2 * C + i] += Double(acc[i]); acc[i] = 0 }
                    }
                }
            }
        } } }
        for c in 0..<C {
            var s0 = 0.0, s1 = 0.0
            for w in 0..<workers { s0 += partial[w * 2 * C + c]; s1 += partial[w * 2 * C + C + c] }
            gradGamma.pointer[c] = Float(s0)
            gradBeta.pointer[c] = Float(s1)
        }
        return dx
    }
}

/// Fully connected layer `y = x·Wᵀ + b` on `(rows, in)` data with PyTorch-layout `W (out, in)`.
/// Also serves as the 1×1 convolution on channels-last activations.
public enum Linear {
    public static func forward(_ input: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        let N = weight.shape[0], K = weight.shape[1]
        precondition(input.count % K == 0, "linear input \(input.shape) vs weight \(weight.shape)")
        let M = input.count / K
        var shape = input.shape
        shape[shape.count - 1] = N
        let out = Tensor(uninitialized: shape)
        if let bias {
            let y = out.pointer, b = bias.pointer
            Parallel.forRanges(M, grain: 256) { rows in
                for r in rows { (y + r * N).update(from: b, count: N) }
            }
        }
        Gemm.run(transB: true, m: M, n: N, k: K, a: input.pointer, lda: K, b: weight.pointer, ldb: K,
                 beta: bias == nil ? 0 : 1, c: out.pointer, ldc: N)
        return out
    }

    /// Returns the input gradient (or `nil` when `needInputGradient` is false); writes
    /// (overwrites) `gradWeight` and `gradBias`.
    public static func backward(_ gradOutput: Tensor, input: Tensor, weight: Tensor, gradWeight: Tensor,
                                gradBias: Tensor?, needInputGradient: Bool = true) -> Tensor? {
        let N = weight.shape[0], K = weight.shape[1]
        let M = input.count / K
        Gemm.run(transA: true, m: N, n: K, k: M, a: gradOutput.pointer, lda: N, b: input.pointer, ldb: K,
                 c: gradWeight.pointer, ldc: K)
        if let gradBias { columnSums(gradOutput.pointer, rows: M, columns: N, into: gradBias.pointer) }
        guard needInputGradient else { return nil }
        // dx = dY·W, run as dY·(Wᵀ)ᵀ: oneDNN's SGEMM was measured faster in this form.
        let wt = Tensor(uninitialized: [K, N])
        for n in 0..<N { for k in 0..<K { wt.pointer[k * N + n] = weight.pointer[n * K + k] } }
        let dx = Tensor(uninitialized: input.shape)
        Gemm.run(transB: true, m: M, n: K, k: N, a: gradOutput.pointer, lda: N, b: wt.pointer, ldb: N, c: dx.pointer, ldc: K)
        return dx
    }

    /// `out[c] = Σ_r x[r, c]` with double accumulation of short float partial sums.
    public static func columnSums(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int,
                                  into out: UnsafeMutablePointer<Float>) {
        let sums = BatchNorm.channelSums(x, rows: rows, channels: columns)
        for c in 0..<columns { out[c] = Float(sums[c]) }
    }
}
