import CTensorKernels

/// The element-wise AdamW update of one parameter tensor (PyTorch's `torch.optim.AdamW` arithmetic),
/// split across workers; TinyViT's `AdamW` computes the per-step constants.
public enum AdamWKernel {
    /// In place, for every element: `g' = g·clip`, `m = m + (g' − m)(1 − β1)`, `v = v·β2 + (1 − β2)·g'²`,
    /// `w = w·decay − stepSize·m / (√v / c2 + ε)` (c2 = √(1 − β2^t), stepSize = lr / (1 − β1^t)).
    public static func update(weights: Tensor, gradients: Tensor, m: Tensor, v: Tensor, clip: Float, decay: Float,
                              beta1: Float, beta2: Float, stepSize: Float, c2: Float, epsilon: Float) {
        precondition(gradients.count == weights.count && m.count == weights.count && v.count == weights.count,
                     "AdamW: weights \(weights.shape), gradients \(gradients.shape), moments \(m.shape) \(v.shape)")
        let (w0, g0, m0, v0) = (weights.pointer, gradients.pointer, m.pointer, v.pointer)
        Parallel.forRanges(weights.count, grain: 32768) { r in
            let i = r.lowerBound
            tinyshard_adamw_update(w0 + i, g0 + i, m0 + i, v0 + i, r.count, clip, decay, beta1, beta2, stepSize, c2, epsilon)
        }
    }
}
