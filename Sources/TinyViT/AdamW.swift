import Foundation
import Tensor

/// AdamW exactly as PyTorch's `torch.optim.AdamW` (decoupled weight decay, bias-corrected
/// moments), with TinyViT's parameter groups (weight decay only where
/// ``Parameter/usesWeightDecay``), optional gradient-norm clipping as `clip_grad_norm_`, and
/// per-parameter learning-rate scales (layer-wise decay, see ``TinyViT/setLayerLearningRateDecay(_:)``).
public final class AdamW {
    /// The step size of the next update (the trainer sets it from the schedule every step).
    public var learningRate: Float
    /// Decay of the first-moment (mean) estimate.
    public var beta1: Float
    /// Decay of the second-moment (uncentred variance) estimate.
    public var beta2: Float
    /// Added to the square root of the second moment, for numerical safety.
    public var epsilon: Float
    /// Decoupled weight decay: each update also multiplies the decayed parameters (tensors of 2 or more
    /// dimensions, not biases) by `1 − learningRate · weightDecay`.
    public var weightDecay: Float
    /// Clip the global gradient L2 norm to this value before the update (`nil`: no clipping).
    public var maxGradientNorm: Float?
    /// Updates applied so far (the bias corrections use it; checkpointed).
    public private(set) var stepCount = 0
    /// Moments by parameter name (timm's names are unique), so that they can be checkpointed.
    private var moments: [String: (m: Tensor, v: Tensor)] = [:]

    /// An optimiser with PyTorch's AdamW defaults except weight decay 0.05 and gradient clipping at norm 5 (TinyViT's
    /// recipe).
    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 0.05, maxGradientNorm: Float? = 5.0) {
        self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
        self.weightDecay = weightDecay; self.maxGradientNorm = maxGradientNorm
    }

    /// The global L2 norm of the gradients.
    public static func gradientNorm(_ parameters: [Parameter]) -> Float {
        var total = 0.0
        for p in parameters {
            var s = 0.0
            let g = p.gradient.pointer
            for i in 0..<p.gradient.count { s += Double(g[i]) * Double(g[i]) }
            total += s
        }
        return Float(total.squareRoot())
    }

    /// Clips (if configured) and applies one update. Returns the gradient norm before clipping.
    @discardableResult
    public func step(_ parameters: [Parameter]) -> Float {
        let norm = AdamW.gradientNorm(parameters)
        var clip: Float = 1
        if let maxNorm = maxGradientNorm { clip = min(1, maxNorm / (norm + 1e-6)) }
        stepCount += 1
        let bc1 = 1 - pow(Double(beta1), Double(stepCount))
        let bc2Sqrt = (1 - pow(Double(beta2), Double(stepCount))).squareRoot()
        for p in parameters {
            let state = moments[p.name] ?? (Tensor(zeros: p.value.shape), Tensor(zeros: p.value.shape))
            moments[p.name] = state
            let lr = learningRate * p.learningRateScale
            let decay: Float = p.usesWeightDecay ? 1 - lr * weightDecay : 1
            let stepSize = Float(Double(lr) / bc1)
            let (b1, b2, eps, c2) = (beta1, beta2, epsilon, Float(bc2Sqrt))
            AdamWKernel.update(weights: p.value, gradients: p.gradient, m: state.m, v: state.v, clip: clip, decay: decay,
                               beta1: b1, beta2: b2, stepSize: stepSize, c2: c2, epsilon: eps)
        }
        return norm
    }
}

extension AdamW {
    /// The optimizer's state for a checkpoint: `m.<name>` / `v.<name>` moments and the step count.
    public func stateDict() -> SafeTensors {
        var st = SafeTensors()
        for (name, state) in moments {
            st.tensors["m." + name] = state.m
            st.tensors["v." + name] = state.v
        }
        st.integers["step"] = ([], [Int64(stepCount)])
        return st
    }

    /// Restores ``stateDict()`` for `parameters`, so that the next ``step(_:)`` continues bit-exactly.
    /// Throws naming `source` and the parameter when a moment is missing or misshapen.
    public func load(_ st: SafeTensors, parameters: [Parameter], source: String) throws {
        guard let step = st.integers["step"]?.values.first, step >= 0 else {
            throw TinyViTError.missingKey(key: "step", file: source)
        }
        var restored: [String: (m: Tensor, v: Tensor)] = [:]
        if step > 0 {
            for p in parameters {
                for key in ["m." + p.name, "v." + p.name] {
                    guard let t = st.tensors[key] else { throw TinyViTError.missingKey(key: key, file: source) }
                    guard t.count == p.value.count else {
                        throw TinyViTError.shapeMismatch(key: key, expected: p.value.shape, found: t.shape, file: source)
                    }
                }
                restored[p.name] = (st.tensors["m." + p.name]!.reshaped(p.value.shape).copy(),
                                    st.tensors["v." + p.name]!.reshaped(p.value.shape).copy())
            }
        }
        moments = restored
        stepCount = Int(step)
    }
}

extension TinyViT {
    /// Layer-wise learning-rate decay as in the TinyViT training recipe: with `d` blocks in all
    /// (MBConv and transformer blocks), block `i` gets `decay^(d-1-i)`; the patch embed counts as
    /// the first block; the patch merging that starts stage s+1 (`stages.{s+1}.downsample`, which
    /// the original code places at the end of stage s) gets the scale of stage s's last block;
    /// the head gets 1.
    public func setLayerLearningRateDecay(_ decay: Float) {
        let depth = configuration.depths.reduce(0, +)
        let scales = (0..<depth).map { pow(decay, Float(depth - $0 - 1)) }
        func scale(_ i: Int) -> Float { scales.isEmpty ? 1 : scales[max(0, min(depth - 1, i))] }
        for p in patchEmbed.parameters { p.learningRateScale = scale(0) }
        var i = 0
        for b in convBlocks { for p in b.parameters { p.learningRateScale = scale(i) }; i += 1 }
        for (down, blocks) in zip(downsamples, transformerStages) {
            for p in down.parameters { p.learningRateScale = scale(i - 1) }
            for b in blocks { for p in b.parameters { p.learningRateScale = scale(i) }; i += 1 }
        }
        for p in head.parameters { p.learningRateScale = 1 }
    }
}
