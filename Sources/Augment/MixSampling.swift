import ShardFormat

/// One sample's draw of timm's `Mixup`: mix with `probability`; cutmix with `switchProbability` (when
/// both alphas are positive), λ ~ Beta(α, α). Two differences from timm, both forced by per-sample
/// records: the decision and λ are drawn per sample (timm's `mode='elem'`; TinyViT's default
/// `mode='batch'` draws them once per batch, same distribution), and the partner is drawn uniformly from
/// the sampler's partner pool — the training samples (timm pairs element i of a shuffled batch with
/// element B−1−i: also a uniformly random training sample, but one that is itself in the batch).
///
/// Cutmix follows timm's `rand_bbox` + `cutmix_bbox_and_lam(correct_lam=True)`: cut size
/// `int(H·√(1−λ)) × int(W·√(1−λ))`, centre uniform over the image, box clipped to it, λ replaced by
/// 1 − box area / image area. λ is then put on the spec's 1/65535 grid (round to nearest).
///
/// A cutmix box clipped to nothing pastes no pixels and gives λ = 1: the sample is recorded unmixed,
/// since the grid has no empty box and the result is the same. Spec/SAMPLER.md 8.
struct MixDraw {
    var mode: MixMode
    var lambdaCode: UInt16
    /// Position in the partner pool (0..<partnerCount); the sampler maps it to a sample id.
    var partnerPosition: Int
    var box: PixelBox?
}

enum MixSampling {
    static func draw(_ recipe: MixRecipe, partnerCount: Int, outputWidth: Int, outputHeight: Int,
                     random: inout SampleRandom) -> MixDraw? {
        guard partnerCount > 0, random.uniform() < recipe.probability else { return nil }
        let useCutmix: Bool
        let alpha: Double
        if recipe.mixupAlpha > 0, recipe.cutmixAlpha > 0 {
            useCutmix = random.uniform() < recipe.switchProbability
            alpha = useCutmix ? recipe.cutmixAlpha : recipe.mixupAlpha
        } else if recipe.mixupAlpha > 0 {
            useCutmix = false
            alpha = recipe.mixupAlpha
        } else if recipe.cutmixAlpha > 0 {
            useCutmix = true
            alpha = recipe.cutmixAlpha
        } else {
            return nil
        }
        var lambda = random.beta(alpha, alpha)
        let partner = random.integer(0, partnerCount - 1)
        var box: PixelBox?
        if useCutmix {
            let cut = (1 - lambda).squareRoot()
            let cutH = Int(Double(outputHeight) * cut)
            let cutW = Int(Double(outputWidth) * cut)
            let cy = random.integer(0, outputHeight - 1)
            let cx = random.integer(0, outputWidth - 1)
            let yl = min(max(cy - cutH / 2, 0), outputHeight)
            let yh = min(max(cy + cutH / 2, 0), outputHeight)
            let xl = min(max(cx - cutW / 2, 0), outputWidth)
            let xh = min(max(cx + cutW / 2, 0), outputWidth)
            guard yh > yl, xh > xl else { return nil }
            box = PixelBox(x: UInt16(xl), y: UInt16(yl), width: UInt16(xh - xl), height: UInt16(yh - yl))
            lambda = 1 - Double((yh - yl) * (xh - xl)) / Double(outputWidth * outputHeight)
        }
        let code = UInt16(min(65535, max(0, (lambda * 65535).rounded())))
        return MixDraw(mode: useCutmix ? .cutmix : .mixup, lambdaCode: code, partnerPosition: partner, box: box)
    }
}
