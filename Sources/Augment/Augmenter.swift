import ShardFormat
import TinyShardBase

/// Replays augmentation parameters on uint8 images: the TinyViT training transform in timm's order —
/// resized crop, horizontal flip, RandAugment ops, (normalise,) random erasing — then mixing with the
/// partner's rendered view.
///
/// Two outputs: ``render(_:source:)`` stays in uint8 (for shards' teacher pass, `.npy` export, viewing);
/// ``renderNormalized(_:source:into:)`` produces timm's float domain, where erasing noise and mixing are
/// exact (see ``ErasingNoise``).
public struct Augmenter: Sendable {
    /// Width of the rendered view in pixels.
    public var outputWidth: Int
    /// Height of the rendered view in pixels.
    public var outputHeight: Int
    /// TinyViT: bicubic.
    public var interpolation: ResizeInterpolation
    /// Fill of the geometric RandAugment ops.
    public var fill: (UInt8, UInt8, UInt8)
    /// Normalisation of the float output, and of the uint8 erase mapping (ImageNet's by default).
    public var mean: [Float] = ErasingNoise.mean
    /// Per-channel standard deviation, with ``mean``.
    public var std: [Float] = ErasingNoise.std

    /// An augmenter rendering views of `outputWidth` × `outputHeight` pixels with ImageNet normalisation.
    public init(outputWidth: Int, outputHeight: Int, interpolation: ResizeInterpolation = .bicubic,
                fill: (UInt8, UInt8, UInt8) = ImageOperation.defaultFill) {
        self.outputWidth = outputWidth
        self.outputHeight = outputHeight
        self.interpolation = interpolation
        self.fill = fill
    }

    /// Crop, flip and RandAugment ops of one view, without erasing: the part shared by both outputs.
    public func renderGeometry(_ view: AugmentationView, source: RGBImage) throws -> RGBImage {
        guard source.width == Int(view.sourceWidth), source.height == Int(view.sourceHeight) else {
            throw AugmentError.mismatch("the parameters are for a \(view.sourceWidth)x\(view.sourceHeight) source, the image is \(source.width)x\(source.height)")
        }
        var image = try ResizedCrop.apply(source, box: view.crop, outputWidth: outputWidth, outputHeight: outputHeight,
                                          interpolation: interpolation)
        if view.horizontalFlip { image = image.flippedHorizontally() }
        for operation in view.operations {
            image = operation.imageOperation.apply(to: image, fill: fill)
        }
        return image
    }

    /// One view in uint8, erasing included (noise mapped to uint8 as ``ErasingNoise`` documents).
    public func render(_ view: AugmentationView, source: RGBImage) throws -> RGBImage {
        var image = try renderGeometry(view, source: source)
        if let erase = view.erase {
            try checkInside(erase.box)
            ErasingNoise.erase(&image, box: erase.box, seed: erase.noiseSeed, mean: mean, std: std)
        }
        return image
    }

    /// A whole record in uint8: the view, mixed with the partner's view when the record has a mix.
    public func render(_ parameters: AugmentationParameters, source: RGBImage, partner: RGBImage?) throws -> RGBImage {
        let image = try render(parameters.view, source: source)
        guard let mix = parameters.mix else { return image }
        guard let partner else { throw AugmentError.mismatch("the record mixes with sample \(mix.partner) but no partner image was given") }
        let other = try render(mix.partnerView, source: partner)
        switch mix.mode {
        case .mixup: return try Mixing.mixup(image, other, lambda: mix.lambda)
        case .cutmix:
            guard let box = mix.box else { throw AugmentError.mismatch("cutmix without a box") }
            return try Mixing.cutmix(image, other, box: box)
        }
    }

    /// One view as normalised float32 CHW (3 × outputHeight × outputWidth) into `output`, timm's
    /// `Normalize` then `RandomErasing` with the exact noise values.
    public func renderNormalized(_ view: AugmentationView, source: RGBImage, into output: UnsafeMutableBufferPointer<Float>) throws {
        let image = try renderGeometry(view, source: source)
        try normalize(image, into: output)
        if let erase = view.erase {
            try checkInside(erase.box)
            ErasingNoise.erase(normalized: output, width: outputWidth, height: outputHeight, box: erase.box, seed: erase.noiseSeed)
        }
    }

    /// A whole record as normalised float32 CHW, mixed in the float domain as timm's `Mixup` does.
    public func renderNormalized(_ parameters: AugmentationParameters, source: RGBImage, partner: RGBImage?,
                                 into output: UnsafeMutableBufferPointer<Float>) throws {
        try renderNormalized(parameters.view, source: source, into: output)
        guard let mix = parameters.mix else { return }
        guard let partner else { throw AugmentError.mismatch("the record mixes with sample \(mix.partner) but no partner image was given") }
        var other = [Float](repeating: 0, count: output.count)
        try other.withUnsafeMutableBufferPointer { try renderNormalized(mix.partnerView, source: partner, into: $0) }
        try other.withUnsafeBufferPointer {
            try Mixing.mix(output, $0, width: outputWidth, height: outputHeight, mode: mix.mode, lambda: mix.lambda, box: mix.box)
        }
    }

    /// `(pixel / 255 − mean_c) / std_c`, HWC uint8 → CHW float.
    public func normalize(_ image: RGBImage, into output: UnsafeMutableBufferPointer<Float>) throws {
        let plane = image.width * image.height
        guard output.count == 3 * plane else {
            throw AugmentError.mismatch("output holds \(output.count) floats, a \(image.width)x\(image.height) image needs \(3 * plane)")
        }
        let scale = (0..<3).map { 1 / (255 * std[$0]) }
        let shift = (0..<3).map { mean[$0] / std[$0] }
        image.pixels.withUnsafeBufferPointer { p in
            for c in 0..<3 {
                let s = scale[c], t = shift[c]
                for i in 0..<plane { output[c * plane + i] = Float(p[i * 3 + c]) * s - t }
            }
        }
    }

    private func checkInside(_ box: PixelBox) throws {
        guard box.width >= 1, box.height >= 1, Int(box.x) + Int(box.width) <= outputWidth,
              Int(box.y) + Int(box.height) <= outputHeight else {
            throw AugmentError.mismatch("erase box x \(box.x) y \(box.y) w \(box.width) h \(box.height) is not inside the \(outputWidth)x\(outputHeight) output")
        }
    }
}
