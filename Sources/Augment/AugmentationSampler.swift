import ShardFormat

/// Draws `AugmentationParameters` on the grid of Spec/FORMAT.md section 4, deterministically from
/// (run seed, epoch, sample id): a teacher pass, a student run and a restarted run all get the same
/// parameters for the same sample, whichever worker asks and in whatever order.
///
/// Each decision has its own random stream (``SampleRandom``): crop, flip, RandAugment, erase, mix. A
/// mixed sample's partner view is the partner's *own* view of this epoch (its crop, flip, ops and erase
/// as a primary sample), which is what timm's batch mixing pairs: two augmented images.
///
/// Spec/SAMPLER.md is the contract (section 3 the streams and calls, 5 the flip drawn inline below);
/// Spec/vectors/sampling/augmentation-sampler.json holds cases (`SamplerVectorTests`).
public struct AugmentationSampler: Sendable {
    enum Stream: UInt32 {
        case crop = 1, flip, randAugment, erase, mix
    }

    /// The run's seed: the same seed gives the same parameters for every (epoch, sample).
    public let runSeed: UInt64
    /// What is drawn.
    public let recipe: AugmentationRecipe
    /// Width of the training view in pixels (1...65535).
    public let outputWidth: Int
    /// Height of the training view in pixels (1...65535).
    public let outputHeight: Int

    /// Throws when the output size is not 1...65535 on each side (the grid stores boxes as u16).
    public init(runSeed: UInt64, recipe: AugmentationRecipe = .tinyViT, outputWidth: Int, outputHeight: Int) throws {
        guard (1...65535).contains(outputWidth), (1...65535).contains(outputHeight) else {
            throw AugmentError.outOfRange("output size \(outputWidth)x\(outputHeight) must be 1...65535 on each side")
        }
        self.runSeed = runSeed
        self.recipe = recipe
        self.outputWidth = outputWidth
        self.outputHeight = outputHeight
    }

    /// One sample's view (no mix): crop, flip, RandAugment ops, erase.
    public func view(epoch: UInt32, sample: UInt32, sourceWidth: Int, sourceHeight: Int) throws -> AugmentationView {
        guard (1...65535).contains(sourceWidth), (1...65535).contains(sourceHeight) else {
            throw AugmentError.outOfRange("sample \(sample): source size \(sourceWidth)x\(sourceHeight) must be 1...65535 on each side")
        }
        var crop = random(.crop, epoch, sample)
        let box = CropSampling.draw(sourceWidth: sourceWidth, sourceHeight: sourceHeight, scale: recipe.cropScale,
                                    ratio: recipe.cropRatio, random: &crop)
        var flip = random(.flip, epoch, sample)
        let flipped = flip.uniform() < recipe.horizontalFlipProbability
        var operations: [RandAugmentOperation] = []
        if let randAugment = recipe.randAugment {
            var stream = random(.randAugment, epoch, sample)
            operations = RandAugmentSampling.draw(randAugment, random: &stream)
        }
        var erase: RandomErase?
        if let erasing = recipe.erasing {
            var stream = random(.erase, epoch, sample)
            erase = ErasingSampling.draw(erasing, outputWidth: outputWidth, outputHeight: outputHeight, random: &stream)
        }
        return AugmentationView(sourceWidth: UInt16(sourceWidth), sourceHeight: UInt16(sourceHeight), crop: box,
                                horizontalFlip: flipped, operations: operations, erase: erase)
    }

    /// One sample's full parameters. With a mix recipe, the partner is drawn uniformly from
    /// `0..<sampleCount` and `sourceSize` gives the partner's source size (for its own view); without
    /// one, neither is used.
    public func parameters(epoch: UInt32, sample: UInt32, sourceWidth: Int, sourceHeight: Int, sampleCount: Int,
                           sourceSize: (UInt32) throws -> (width: Int, height: Int)) throws -> AugmentationParameters {
        try parameters(epoch: epoch, sample: sample, sourceWidth: sourceWidth, sourceHeight: sourceHeight,
                       partnerCount: sampleCount, partner: { UInt32($0) }, sourceSize: sourceSize)
    }

    /// One sample's full parameters, a mix partner drawn uniformly from `partners` (sample ids): pass the
    /// training samples, so that a held-out image is never pasted into a training view.
    public func parameters(epoch: UInt32, sample: UInt32, sourceWidth: Int, sourceHeight: Int, partners: [UInt32],
                           sourceSize: (UInt32) throws -> (width: Int, height: Int)) throws -> AugmentationParameters {
        try parameters(epoch: epoch, sample: sample, sourceWidth: sourceWidth, sourceHeight: sourceHeight,
                       partnerCount: partners.count, partner: { partners[$0] }, sourceSize: sourceSize)
    }

    private func parameters(epoch: UInt32, sample: UInt32, sourceWidth: Int, sourceHeight: Int, partnerCount: Int,
                            partner: (Int) -> UInt32,
                            sourceSize: (UInt32) throws -> (width: Int, height: Int)) throws -> AugmentationParameters {
        let view = try view(epoch: epoch, sample: sample, sourceWidth: sourceWidth, sourceHeight: sourceHeight)
        guard let mixRecipe = recipe.mix else { return AugmentationParameters(view: view) }
        var stream = random(.mix, epoch, sample)
        guard let draw = MixSampling.draw(mixRecipe, partnerCount: partnerCount, outputWidth: outputWidth,
                                          outputHeight: outputHeight, random: &stream) else {
            return AugmentationParameters(view: view)
        }
        let id = partner(draw.partnerPosition)
        let size = try sourceSize(id)
        let partnerView = try self.view(epoch: epoch, sample: id, sourceWidth: size.width, sourceHeight: size.height)
        return AugmentationParameters(view: view, mix: Mix(mode: draw.mode, lambdaCode: draw.lambdaCode, partner: id,
                                                           box: draw.box, partnerView: partnerView))
    }

    /// Parameters without a mix (the recipe's mix, if any, is ignored).
    public func parameters(epoch: UInt32, sample: UInt32, sourceWidth: Int, sourceHeight: Int) throws -> AugmentationParameters {
        AugmentationParameters(view: try view(epoch: epoch, sample: sample, sourceWidth: sourceWidth, sourceHeight: sourceHeight))
    }

    private func random(_ stream: Stream, _ epoch: UInt32, _ sample: UInt32) -> SampleRandom {
        SampleRandom(seed: runSeed, epoch: epoch, sample: sample, stream: stream.rawValue)
    }
}
