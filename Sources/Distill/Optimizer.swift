import Foundation
import Tensor
import TinyViT

/// AdamW with the same arithmetic as TinyViT's ``AdamW`` (PyTorch's `torch.optim.AdamW`: decoupled weight
/// decay only where ``Parameter/usesWeightDecay``, per-parameter learning-rate scales for layer-wise
/// decay, `clip_grad_norm_`), whose moments and step count can be saved and restored — TinyViT's
/// optimizer keeps them private, and bit-exact resume needs them.
public final class ResumableAdamW {
    public var learningRate: Float
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    public var weightDecay: Float
    public var maxGradientNorm: Float?
    public private(set) var stepCount = 0
    private var moments: [String: (m: Tensor, v: Tensor)] = [:]

    public init(learningRate: Float, weightDecay: Float, maxGradientNorm: Float?) {
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.maxGradientNorm = maxGradientNorm
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
            let w = p.value.pointer, g = p.gradient.pointer, m = state.m.pointer, v = state.v.pointer
            Parallel.forRanges(p.value.count, grain: 32768) { r in
                for i in r {
                    let gi = g[i] * clip
                    let wi = w[i] * decay
                    let mi = m[i] + (gi - m[i]) * (1 - b1)
                    let vi = v[i] * b2 + (1 - b2) * gi * gi
                    m[i] = mi; v[i] = vi
                    w[i] = wi - stepSize * mi / (vi.squareRoot() / c2 + eps)
                }
            }
        }
        return norm
    }

    /// Moments as `m.<name>` / `v.<name>` tensors and the step count.
    public func stateDict() -> SafeTensors {
        var st = SafeTensors()
        for (name, state) in moments {
            st.tensors["m." + name] = state.m
            st.tensors["v." + name] = state.v
        }
        st.integers["step"] = ([], [Int64(stepCount)])
        return st
    }

    public func load(_ st: SafeTensors, parameters: [Parameter], source: String) throws {
        guard let step = st.integers["step"]?.values.first else { throw DistillError("\(source): [bad_checkpoint] no step count") }
        var restored: [String: (m: Tensor, v: Tensor)] = [:]
        if step > 0 {
            for p in parameters {
                guard let m = st.tensors["m." + p.name], let v = st.tensors["v." + p.name],
                      m.count == p.value.count, v.count == p.value.count else {
                    throw DistillError("\(source): [bad_checkpoint] missing or misshapen moments of \(p.name)")
                }
                restored[p.name] = (m.reshaped(p.value.shape).copy(), v.reshaped(p.value.shape).copy())
            }
        }
        moments = restored
        stepCount = Int(step)
    }
}

/// Linear warmup then cosine decay, evaluated per optimizer step (timm's `CosineLRScheduler` with
/// `t_in_epochs=False`, warmup from `warmupStart`).
public struct LearningRateSchedule: Sendable, Equatable {
    public var base: Float
    public var minimum: Float
    public var warmupSteps: Int
    public var totalSteps: Int
    public var warmupStart: Float

    public init(base: Float, minimum: Float, warmupSteps: Int, totalSteps: Int, warmupStart: Float? = nil) {
        self.base = base; self.minimum = minimum; self.warmupSteps = max(0, warmupSteps); self.totalSteps = max(1, totalSteps)
        self.warmupStart = warmupStart ?? minimum
    }

    /// The learning rate of step `step` (0-based).
    public func rate(step: Int) -> Float {
        if step < warmupSteps {
            return warmupStart + (base - warmupStart) * Float(step + 1) / Float(warmupSteps)
        }
        let span = max(1, totalSteps - warmupSteps)
        let t = Double(min(step - warmupSteps, span)) / Double(span)
        return minimum + (base - minimum) * Float(0.5 * (1 + cos(Double.pi * t)))
    }
}
