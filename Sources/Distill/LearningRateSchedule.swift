import Foundation
import Tensor
import TinyViT

/// Linear warmup then cosine decay, evaluated per optimizer step (timm's `CosineLRScheduler` with
/// `t_in_epochs=False`, warmup from `warmupStart`).
public struct LearningRateSchedule: Sendable, Equatable {
    /// The peak learning rate, reached at the end of warmup.
    public var base: Float
    /// The learning rate the cosine decays to at ``totalSteps``.
    public var minimum: Float
    /// Optimizer steps of linear warmup (0 for none).
    public var warmupSteps: Int
    /// Optimizer steps of the whole run, at least 1.
    public var totalSteps: Int
    /// The learning rate at step 0, where warmup starts.
    public var warmupStart: Float

    /// A schedule; negative warmup counts as 0, a total below 1 as 1, and a nil `warmupStart` starts warmup at
    /// `minimum`.
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
