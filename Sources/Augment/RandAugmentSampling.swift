import ShardFormat

/// timm's `RandAugment.__call__` and `AugmentOp.__call__` for the increasing ops: choose `layers` ops
/// uniformly with replacement, then for each: apply with `probability`; magnitude `gauss(m, std)` clipped
/// to [0, 10]; a random sign (`-v if random() > 0.5`) for the ops whose level has one. Only the ops that
/// are applied are recorded, with the magnitude rounded to the spec's 0.01 grid. Spec/SAMPLER.md 6.
enum RandAugmentSampling {
    static func draw(_ recipe: RandAugmentRecipe, random: inout SampleRandom) -> [RandAugmentOperation] {
        guard !recipe.ops.isEmpty, recipe.layers > 0 else { return [] }
        let chosen = (0..<recipe.layers).map { _ in recipe.ops[random.integer(0, recipe.ops.count - 1)] }
        var applied: [RandAugmentOperation] = []
        for op in chosen {
            guard random.uniform() < recipe.probability else { continue }
            var magnitude = recipe.magnitude
            if recipe.magnitudeStd > 0 {
                magnitude = recipe.magnitudeStd.isInfinite ? random.uniform(0, recipe.magnitude)
                                                           : random.gauss(mean: recipe.magnitude, std: recipe.magnitudeStd)
            }
            magnitude = max(0, min(magnitude, 10))
            let hundredths = UInt16(min(1000, max(0, (magnitude * 100).rounded(.toNearestOrEven))))
            let negate = op.isSigned ? random.uniform() > 0.5 : false
            applied.append(RandAugmentOperation(op: op, magnitudeHundredths: hundredths, negate: negate))
            if applied.count == AugmentationView.maxOperations { break }  // the grid holds at most 3
        }
        return applied
    }
}

extension RandAugmentOp {
    /// Whether timm's level function draws a random sign for this op (`_randomly_negate`).
    public var isSigned: Bool {
        switch self {
        case .rotate, .colorIncreasing, .contrastIncreasing, .brightnessIncreasing, .sharpnessIncreasing,
             .shearX, .shearY, .translateXRel, .translateYRel:
            return true
        case .autoContrast, .equalize, .invert, .posterizeIncreasing, .solarizeIncreasing, .solarizeAdd:
            return false
        }
    }
}
