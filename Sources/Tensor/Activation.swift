import CTensorKernels

/// GELU (erf form) forward and backward, split across workers; the arithmetic is CTensorKernels' (8 lanes
/// wide, AVX2 where the CPU has it).
public enum GELU {
    /// `output = gelu(input)` element-wise (a new tensor of the same shape).
    public static func forward(_ input: Tensor) -> Tensor {
        let out = Tensor(uninitialized: input.shape)
        let x = input.pointer, y = out.pointer
        Parallel.forRanges(input.count, grain: 32768) { r in
            tinyshard_gelu_forward(x + r.lowerBound, y + r.lowerBound, r.count)
        }
        return out
    }

    /// `gradInput = gradOutput · gelu'(input)`; `input` is the pre-activation saved by ``forward(_:)``.
    public static func backward(_ gradOutput: Tensor, input: Tensor) -> Tensor {
        let out = Tensor(uninitialized: input.shape)
        let x = input.pointer, g = gradOutput.pointer, y = out.pointer
        Parallel.forRanges(input.count, grain: 32768) { r in
            tinyshard_gelu_backward(g + r.lowerBound, x + r.lowerBound, y + r.lowerBound, r.count)
        }
        return out
    }
}

/// Element-wise helpers used by residual connections and drop path.
public enum Elementwise {
    /// `a + b` (same element count), shape of `a`.
    public static func add(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.count == b.count, "add: \(a.shape) + \(b.shape)")
        let out = Tensor(uninitialized: a.shape)
        let x = a.pointer, y = b.pointer, z = out.pointer
        Parallel.forRanges(a.count, grain: 65536) { r in
            tinyshard_add(x + r.lowerBound, y + r.lowerBound, z + r.lowerBound, r.count)
        }
        return out
    }

    /// In place `a += b` (same element count).
    public static func addInPlace(_ a: Tensor, _ b: Tensor) {
        precondition(a.count == b.count, "addInPlace: \(a.shape) += \(b.shape)")
        let x = a.pointer, y = b.pointer
        Parallel.forRanges(a.count, grain: 65536) { r in
            tinyshard_add(x + r.lowerBound, y + r.lowerBound, x + r.lowerBound, r.count)
        }
    }

    /// `residual + scale[n] · branch` where the outermost dimension (samples) picks `scale[n]`;
    /// with `scale == nil` plain `residual + branch`. This is drop path fused into the residual add.
    public static func addScaled(residual: Tensor, branch: Tensor, sampleScale: [Float]?) -> Tensor {
        guard let scale = sampleScale else { return add(residual, branch) }
        precondition(residual.count == branch.count && residual.count % scale.count == 0)
        let out = Tensor(uninitialized: residual.shape)
        let per = residual.count / scale.count
        let (r0, b0, o0) = (residual.pointer, branch.pointer, out.pointer)
        Parallel.forRanges(scale.count) { samples in
            for n in samples {
                tinyshard_add_scaled(r0 + n * per, b0 + n * per, scale[n], o0 + n * per, per)
            }
        }
        return out
    }

    /// `scale[n] · t` per sample (outermost dimension); a copy-free pass-through when `scale == nil`.
    public static func scaleSamples(_ t: Tensor, _ sampleScale: [Float]?) -> Tensor {
        guard let scale = sampleScale else { return t }
        let out = Tensor(uninitialized: t.shape)
        let per = t.count / scale.count
        let (src, dst) = (t.pointer, out.pointer)
        Parallel.forRanges(scale.count) { samples in
            for n in samples {
                let s = scale[n]
                for i in 0..<per { dst[n * per + i] = s * src[n * per + i] }
            }
        }
        return out
    }
}

/// Stochastic depth: per-sample keep/drop factors for a residual branch.
public enum DropPath {
    /// Returns `nil` when nothing is dropped (rate 0 or not training); otherwise, for each sample,
    /// `0` with probability `rate` and `1/(1-rate)` otherwise (timm's `drop_path` with scale_by_keep).
    public static func sampleScales<G: RandomNumberGenerator>(batch: Int, rate: Float, training: Bool,
                                                                using generator: inout G) -> [Float]? {
        guard training, rate > 0 else { return nil }
        let keep = 1 - rate
        return (0..<batch).map { _ in Float.random(in: 0..<1, using: &generator) < keep ? 1 / keep : 0 }
    }
}
