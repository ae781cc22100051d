import Foundation
import Tensor
import TinyViT

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
