import CTensorKernels
import Foundation

/// The per-channel statistics a BatchNorm forward used, kept for its backward.
public struct BatchNormStatistics: Sendable {
    /// Mean and 1/sqrt(var + eps) per channel (batch statistics in training, running ones in eval).
    public var mean: [Float]
    /// 1 / sqrt(variance + ``BatchNorm/epsilon``) per channel.
    public var invStd: [Float]
    /// Whether the statistics came from the batch (then they depend on the input, which the
    /// backward accounts for).
    public var fromBatch: Bool
    /// Rows the batch statistics cover: this input's, or with a ``BatchNormReducer`` every process's.
    public var rows: Int = 0
}

/// Sums per-channel statistics across the processes of a data-parallel run, for synchronised BatchNorm
/// (PyTorch's `SyncBatchNorm`): each process normalises its rows with the mean and variance of the whole
/// global batch, and the backward sums the two per-channel gradient terms likewise. `sum` is collective:
/// every process calls it with vectors of the same length, in the same order, and gets the element-wise
/// sum (the same on every process). The trainer passes it only in training mode.
public protocol BatchNormReducer: AnyObject {
    /// Replaces `values` (per-channel sums) by their sum over every process, the same on each.
    func sum(_ values: UnsafeMutableBufferPointer<Double>)
}

/// BatchNorm2d over channels-last rows `(M, C)` (M = N·H·W), fused with what follows it in
/// TinyViT: an optional per-sample-scaled residual add (drop path) and an optional GELU:
/// `out = act(scale[n] · (γ·x̂ + β) + residual)`.
///
/// Training mode uses batch statistics (biased variance for normalisation) and updates the
/// running statistics in place with `momentum` and the unbiased variance, as PyTorch does.
public enum BatchNorm {
    /// PyTorch's default ε, added to the variance.
    public static let epsilon: Float = 1e-5

    /// Forward pass. `runningMean`/`runningVar` are read in eval mode and updated in training mode.
    public static func forward(_ input: Tensor, gamma: Tensor, beta: Tensor,
                               runningMean: Tensor, runningVar: Tensor,
                               training: Bool, momentum: Float = 0.1,
                               residual: Tensor? = nil, branchScale: [Float]? = nil,
                               gelu applyGELU: Bool, reducer: BatchNormReducer? = nil) -> (output: Tensor, statistics: BatchNormStatistics) {
        let C = gamma.count
        let M = input.count / C
        var rows = M
        var mean = [Float](repeating: 0, count: C), invStd = [Float](repeating: 0, count: C)
        if training {
            let m: [Float], v: [Float]
            if let reducer {
                (m, v, rows) = globalMoments(input.pointer, rows: M, channels: C, reducer: reducer)
            } else {
                (m, v) = batchMoments(input.pointer, rows: M, channels: C)
            }
            let unbiased = rows > 1 ? Float(rows) / Float(rows - 1) : 1
            for c in 0..<C {
                mean[c] = m[c]
                invStd[c] = 1 / (v[c] + epsilon).squareRoot()
                runningMean.pointer[c] = (1 - momentum) * runningMean.pointer[c] + momentum * m[c]
                runningVar.pointer[c] = (1 - momentum) * runningVar.pointer[c] + momentum * v[c] * unbiased
            }
        } else {
            for c in 0..<C {
                mean[c] = runningMean.pointer[c]
                invStd[c] = 1 / (runningVar.pointer[c] + epsilon).squareRoot()
            }
        }
        var a = [Float](repeating: 0, count: C), b = [Float](repeating: 0, count: C)
        for c in 0..<C {
            a[c] = gamma.pointer[c] * invStd[c]
            b[c] = beta.pointer[c] - mean[c] * a[c]
        }
        let out = Tensor(uninitialized: input.shape)
        let rowsPerSample = branchScale.map { M / $0.count } ?? M
        let x = input.pointer, y = out.pointer, res = residual?.pointer
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
        withOptionalBuffer(branchScale) { scale in
            Parallel.forRanges(M, grain: max(1, 16384 / C)) { rows in
                tinyshard_batchnorm_forward_rows(x, y, res, ap.baseAddress, bp.baseAddress, C, rows.lowerBound, rows.upperBound,
                                                 scale, rowsPerSample, applyGELU ? 1 : 0)
            }
        } } }
        return (out, BatchNormStatistics(mean: mean, invStd: invStd, fromBatch: training, rows: rows))
    }

    /// Backward pass. Writes `gradGamma`/`gradBeta` (overwriting) and returns the input gradient
    /// and, when the forward had a residual, the residual's gradient. With the forward's `reducer`, the
    /// input gradient uses the global sums of dbn and dbn·x̂ (as `SyncBatchNorm`), while `gradGamma` and
    /// `gradBeta` stay this process's own sums (the data-parallel gradient average combines them).
    public static func backward(_ gradOutput: Tensor, input: Tensor, statistics st: BatchNormStatistics,
                                gamma: Tensor, beta: Tensor, gradGamma: Tensor, gradBeta: Tensor,
                                residual: Tensor? = nil, branchScale: [Float]? = nil,
                                gelu applyGELU: Bool, reducer: BatchNormReducer? = nil) -> (gradInput: Tensor, gradResidual: Tensor?) {
        let C = gamma.count
        let M = input.count / C
        let rowsPerSample = branchScale.map { M / $0.count } ?? M
        var a = [Float](repeating: 0, count: C), b = [Float](repeating: 0, count: C)
        for c in 0..<C {
            a[c] = gamma.pointer[c] * st.invStd[c]
            b[c] = beta.pointer[c] - st.mean[c] * a[c]
        }
        let dBranch = Tensor(uninitialized: input.shape)           // d(BN output), later d(input)
        let dResidual = residual == nil ? nil : Tensor(uninitialized: input.shape)
        let x = input.pointer, dz = gradOutput.pointer, db = dBranch.pointer
        let res = residual?.pointer, dres = dResidual?.pointer
        let workers = Parallel.workerCount
        var sums = [Double](repeating: 0, count: workers * 2 * C)   // per worker: Σ dbn, Σ dbn·x̂
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
        st.mean.withUnsafeBufferPointer { mp in st.invStd.withUnsafeBufferPointer { rp in
        sums.withUnsafeMutableBufferPointer { sp in withOptionalBuffer(branchScale) { scale in
            let S = sp.baseAddress!
            Parallel.forWorkers(M, grain: max(1, 16384 / C)) { w, rows in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * C) { scratch in
                    tinyshard_batchnorm_backward_accumulate(x, dz, res, dres, db, ap.baseAddress, bp.baseAddress, mp.baseAddress,
                                                            rp.baseAddress, C, rows.lowerBound, rows.upperBound, scale,
                                                            rowsPerSample, applyGELU ? 1 : 0, scratch.baseAddress, S + w * 2 * C)
                }
            }
        } } } } } }
        var sumG = [Float](repeating: 0, count: C), sumGX = [Float](repeating: 0, count: C)
        var local = [Double](repeating: 0, count: 2 * C)
        for c in 0..<C {
            var s0 = 0.0, s1 = 0.0
            for w in 0..<workers { s0 += sums[w * 2 * C + c]; s1 += sums[w * 2 * C + C + c] }
            local[c] = s0; local[C + c] = s1
            sumG[c] = Float(s0); sumGX[c] = Float(s1)
            gradBeta.pointer[c] = sumG[c]
            gradGamma.pointer[c] = sumGX[c]
        }
        var rows = M
        if let reducer, st.fromBatch {
            local.withUnsafeMutableBufferPointer { reducer.sum($0) }
            for c in 0..<C { sumG[c] = Float(local[c]); sumGX[c] = Float(local[C + c]) }
            rows = st.rows
        }
        // d input = γ·rstd·(dbn − [mean(dbn) + x̂·mean(dbn·x̂)] if batch statistics)
        var k = [Float](repeating: 0, count: C), m1 = [Float](repeating: 0, count: C), m2 = [Float](repeating: 0, count: C)
        for c in 0..<C {
            k[c] = gamma.pointer[c] * st.invStd[c]
            if st.fromBatch { m1[c] = sumG[c] / Float(rows); m2[c] = sumGX[c] / Float(rows) }
        }
        k.withUnsafeBufferPointer { kp in m1.withUnsafeBufferPointer { m1p in m2.withUnsafeBufferPointer { m2p in
        st.mean.withUnsafeBufferPointer { mp in st.invStd.withUnsafeBufferPointer { rp in
            Parallel.forRanges(M, grain: max(1, 16384 / C)) { rows in
                tinyshard_batchnorm_backward_input_rows(x, db, kp.baseAddress, m1p.baseAddress, m2p.baseAddress, mp.baseAddress,
                                                        rp.baseAddress, C, rows.lowerBound, rows.upperBound)
            }
        } } } } }
        return (dBranch, dResidual)
    }

    /// Per-channel mean and biased variance of `(rows, C)` data in one pass: sums of `x − s` and
    /// `(x − s)²` with the shift `s` = the first row (which keeps the variance free of
    /// cancellation), 64-row float partial sums flushed into doubles.
    static func batchMoments(_ x: UnsafeMutablePointer<Float>, rows M: Int, channels C: Int) -> ([Float], [Float]) {
        let workers = Parallel.workerCount
        var partial = [Double](repeating: 0, count: workers * 2 * C)
        let shift = x   // row 0
        partial.withUnsafeMutableBufferPointer { pp in
            let P = pp.baseAddress!
            Parallel.forWorkers(M, grain: max(1, 16384 / C)) { w, rows in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * C) { scratch in
                    tinyshard_channel_moments(x, shift, C, rows.lowerBound, rows.upperBound, scratch.baseAddress, P + w * 2 * C)
                }
            }
        }
        var mean = [Float](repeating: 0, count: C), variance = [Float](repeating: 0, count: C)
        for c in 0..<C {
            var s1 = 0.0, s2 = 0.0
            for w in 0..<workers { s1 += partial[w * 2 * C + c]; s2 += partial[w * 2 * C + C + c] }
            let m = s1 / Double(M)
            mean[c] = Float(Double(shift[c]) + m)
            variance[c] = Float(max(0, s2 / Double(M) - m * m))
        }
        return (mean, variance)
    }

    /// Mean and biased variance over every process's rows (two collective sums: the count and Σx, then
    /// Σ(x − mean)², which keeps the variance free of cancellation), and the global row count.
    static func globalMoments(_ x: UnsafeMutablePointer<Float>, rows M: Int, channels C: Int,
                              reducer: BatchNormReducer) -> ([Float], [Float], Int) {
        var first = [Double(M)] + channelSums(x, rows: M, channels: C)
        first.withUnsafeMutableBufferPointer { reducer.sum($0) }
        let rows = Int(first[0])
        let meanD = (0..<C).map { first[1 + $0] / max(first[0], 1) }
        let mean = meanD.map { Float($0) }
        var second = channelSums(x, rows: M, channels: C, squaresAbout: mean)
        second.withUnsafeMutableBufferPointer { reducer.sum($0) }
        return (mean, second.map { Float($0 / max(first[0], 1)) }, rows)
    }

    /// `Σ_rows x` per channel of `(rows, C)` data, or with `mean` `Σ_rows (x − mean)²` (64-row float
    /// partial sums flushed into doubles).
    static func channelSums(_ x: UnsafeMutablePointer<Float>, rows M: Int, channels C: Int, squaresAbout mean: [Float]? = nil) -> [Double] {
        let workers = Parallel.workerCount
        var partial = [Double](repeating: 0, count: workers * C)
        let centre = mean ?? []
        partial.withUnsafeMutableBufferPointer { pp in centre.withUnsafeBufferPointer { mp in
            let P = pp.baseAddress!, MEAN = mean == nil ? nil : mp.baseAddress  // (an empty array may have an address)
            Parallel.forWorkers(M, grain: max(1, 16384 / C)) { w, rows in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: C) { scratch in
                    tinyshard_channel_sums(x, MEAN, C, rows.lowerBound, rows.upperBound, scratch.baseAddress, P + w * C)
                }
            }
        } }
        var out = [Double](repeating: 0, count: C)
        for w in 0..<workers { for c in 0..<C { out[c] += partial[w * C + c] } }
        return out
    }
}

/// Calls `body` with a pointer to `array`'s elements, or nil when there is no array (the C kernels'
/// optional inputs).
func withOptionalBuffer<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}
