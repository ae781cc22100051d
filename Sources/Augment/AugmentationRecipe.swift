import ShardFormat

/// What the sampler draws: TinyViT's training augmentation (timm's `create_transform` with
/// `rand-m9-mstd0.5-inc1`, `reprob=0.25`, `remode='pixel'`, mixup 0.8 / cutmix 1.0) unless changed.
///
/// Only the *sampling* lives here; what each drawn value means is fixed by Spec/FORMAT.md section 4, so a
/// record can be replayed without knowing the recipe that drew it. Spec/SAMPLER.md 1 lists every field,
/// its range and the presets.
public struct AugmentationRecipe: Sendable, Equatable {
    /// RandomResizedCrop: fraction of the source area, torchvision's `scale`.
    public var cropScale: ClosedRange<Double> = 0.08...1.0
    /// RandomResizedCrop: width / height, torchvision's `ratio`, drawn log-uniformly.
    public var cropRatio: ClosedRange<Double> = (3.0 / 4)...(4.0 / 3)
    /// Probability of a horizontal flip, 0...1.
    public var horizontalFlipProbability = 0.5
    /// nil: no RandAugment ops.
    public var randAugment: RandAugmentRecipe? = RandAugmentRecipe()
    /// nil: no random erasing.
    public var erasing: ErasingRecipe? = ErasingRecipe()
    /// nil: no mixup / cutmix (the default; TinyViT's pretraining turns it on with `MixRecipe/tinyViT`).
    public var mix: MixRecipe?

    /// TinyViT's recipe without mixing (the field defaults); see ``tinyViT`` and the other presets.
    public init() {}

    /// TinyViT's ImageNet recipe without mixing (crop, flip, RandAugment, erasing).
    public static let tinyViT = AugmentationRecipe()

    /// TinyViT's ImageNet recipe with mixup 0.8 / cutmix 1.0.
    public static var tinyViTWithMix: AugmentationRecipe {
        var recipe = AugmentationRecipe()
        recipe.mix = MixRecipe()
        return recipe
    }

    /// For small centred glyphs such as the 8×8 digits: no flip (a mirrored 2, 3, 7 or 9 is not that
    /// digit), a mild crop (70–100% of the area: an 8%-area crop of an 8×8 digit is noise), no
    /// RandAugment, no erasing, no mixing. Chosen on the validation part of the training split
    /// (`Tools/distill_tuning.sh`, README "How the main job was tuned"): it beat a RandAugment variant
    /// (magnitude 5, no invert/solarize, light erasing), a stronger crop and mixup/cutmix for the teacher
    /// and for hard-label and distilled students alike.
    public static var digits: AugmentationRecipe {
        var recipe = AugmentationRecipe()
        recipe.cropScale = 0.7...1.0
        recipe.horizontalFlipProbability = 0
        recipe.randAugment = nil
        recipe.erasing = nil
        return recipe
    }

    /// The named recipes, by the name the CLI and shard provenance use.
    public static let presets: [(name: String, recipe: AugmentationRecipe)] = [
        ("tinyvit", .tinyViT), ("tinyvit-mix", .tinyViTWithMix), ("digits", .digits),
    ]

    /// The preset called `name` (`tinyvit`, `tinyvit-mix`, `digits`), or nil.
    public static func preset(_ name: String) -> AugmentationRecipe? { presets.first { $0.name == name }?.recipe }
}

/// timm's `rand-m9-mstd0.5-inc1`: `layers` ops drawn uniformly with replacement from the 15 increasing
/// ops, each applied with `probability`, magnitude `gauss(magnitude, magnitudeStd)` clipped to [0, 10].
public struct RandAugmentRecipe: Sendable, Equatable {
    /// Ops drawn per image (timm's `n`, 2 in `rand-m9`).
    public var layers = 2
    /// Mean magnitude on timm's 0...10 scale (9 in `rand-m9`).
    public var magnitude = 9.0
    /// Standard deviation of the Gaussian noise on the magnitude (`mstd0.5`).
    public var magnitudeStd = 0.5
    /// timm's `RandAugment` applies each chosen op with probability 0.5 by default.
    public var probability = 0.5
    /// The ops to choose from (timm's `_RAND_INCREASING_TRANSFORMS`, all 15).
    public var ops: [RandAugmentOp] = RandAugmentOp.allCases

    /// timm's `rand-m9-mstd0.5-inc1`.
    public init() {}
}

/// timm's `RandomErasing(probability=0.25, mode='pixel', max_count=1)`.
public struct ErasingRecipe: Sendable, Equatable {
    /// Probability that an image gets an erased box, 0...1.
    public var probability = 0.25
    /// Fraction of the output area.
    public var area: ClosedRange<Double> = 0.02...(1.0 / 3)
    /// Height / width of the box (timm's `min_aspect=0.3`, `max_aspect=1/0.3`), drawn log-uniformly.
    public var aspect: ClosedRange<Double> = 0.3...(1 / 0.3)
    /// Boxes drawn before giving up when none fits (timm's 10); no erase then.
    public var attempts = 10

    /// timm's defaults, as above.
    public init() {}
}

/// timm's `Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, correct_lam=True)`.
public struct MixRecipe: Sendable, Equatable {
    /// α of the Beta(α, α) that λ is drawn from for mixup; 0 disables mixup.
    public var mixupAlpha = 0.8
    /// α of the Beta(α, α) that λ is drawn from for cutmix; 0 disables cutmix.
    public var cutmixAlpha = 1.0
    /// Probability that a sample is mixed at all.
    public var probability = 1.0
    /// Probability of cutmix rather than mixup when both alphas are positive.
    public var switchProbability = 0.5

    /// timm's defaults, as above.
    public init() {}
}
