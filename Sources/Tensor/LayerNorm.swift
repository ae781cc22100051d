import CTensorKernels

/// LayerNorm over the last dimension of `(rows, C)` data (PyTorch `nn.LayerNorm(C)`, eps 1e-5).
public enum LayerNorm {
    /// PyTorch's default ε, added to the variance.
    public static let epsilon: Float = 1e-5

    /// Per-row statistics saved for the backward pass.
    public struct Statistics: Sendable {
        /// Mean of each row.
        public var mean: [Float]
        /// 1 / sqrt(variance + ε) of each row.
        public var invStd: [Float]
    }

    /// `(x − mean) · invStd · gamma + beta` for each row of C = `gamma.count` values, and the statistics the backward
    /// needs.
    public static func forward(_ input: Tensor, gamma: Tensor, beta: Tensor) -> (output: Tensor, statistics: Statistics) {
        let C = gamma.count
        let M = input.count / C
        let out = Tensor(uninitialized: input.shape)
        var mean = [Float](repeating: 0, count: M), invStd = [Float](repeating: 0, count: M)
        let x = input.pointer, y = out.pointer, g = gamma.pointer, b = beta.pointer
        mean.withUnsafeMutableBufferPointer { mp in invStd.withUnsafeMutableBufferPointer { rp in
            Parallel.forRanges(M, grain: max(1, 8192 / C)) { rows in
                tinyshard_layernorm_forward_rows(x, y, g, b, epsilon, C, rows.lowerBound, rows.upperBound, mp.baseAddress, rp.baseAddress)
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
        let workers = Parallel.workerCount
        var partial = [Double](repeating: 0, count: workers * 2 * C)
        st.mean.withUnsafeBufferPointer { mp in st.invStd.withUnsafeBufferPointer { rp in
        partial.withUnsafeMutableBufferPointer { pp in
            let P = pp.baseAddress!
            Parallel.forWorkers(M, grain: max(1, 8192 / C)) { w, rows in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * C) { scratch in
                    tinyshard_layernorm_backward_rows(x, dy, d, g, mp.baseAddress, rp.baseAddress, C, rows.lowerBound, rows.upperBound,
                                                      scratch.baseAddress, P + w * 2 * C)
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
    /// `input · weightᵀ + bias` with `weight` of shape `(out, in)`, on rows of `in` values; traps when the input's
    /// count is not a multiple of `in`.
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
