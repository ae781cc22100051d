import ShardFormat

/// A RandAugment op with its concrete argument, as timm's op functions (`timm.data.auto_augment`) take it
/// after the level-to-argument mapping: degrees, bits, thresholds, enhancement factors, shear factors,
/// translation fractions. Tests compare these against timm/PIL outputs; `RandAugmentOperation` maps
/// onto them with `RandAugmentOperation/imageOperation`.
public enum ImageOperation: Sendable, Equatable {
    /// PIL `ImageOps.autocontrast`: each channel stretched to 0...255.
    case autoContrast
    /// PIL `ImageOps.equalize`: each channel's histogram equalised.
    case equalize
    /// PIL `ImageOps.invert`: 255 − v.
    case invert
    /// Counter-clockwise degrees, about the image centre (PIL `Image.rotate`).
    case rotate(degrees: Double)
    /// Keep the top `bits` bits (0...8) of each channel.
    case posterize(bits: Int)
    /// Invert every channel value ≥ threshold.
    case solarize(threshold: Int)
    /// Add `add` (clipped at 255) to every channel value < threshold.
    case solarizeAdd(add: Int, threshold: Int)
    /// PIL `ImageEnhance` factors: 0 gives the degenerate image, 1 the original.
    case color(factor: Double)
    /// PIL `ImageEnhance.Contrast`: 0 gives flat grey at the mean, 1 the original.
    case contrast(factor: Double)
    /// PIL `ImageEnhance.Brightness`: 0 gives black, 1 the original.
    case brightness(factor: Double)
    /// PIL `ImageEnhance.Sharpness`: 0 gives the smoothed image, 1 the original.
    case sharpness(factor: Double)
    /// PIL affine `(1, factor, 0, 0, 1, 0)`.
    case shearX(factor: Double)
    /// PIL affine `(1, 0, 0, factor, 1, 0)`.
    case shearY(factor: Double)
    /// Shift by `fraction × width` pixels: PIL affine `(1, 0, fraction·W, 0, 1, 0)`.
    case translateXRelative(fraction: Double)
    /// Shift by `fraction × height` pixels: PIL affine `(1, 0, 0, 0, 1, fraction·H)`.
    case translateYRelative(fraction: Double)
}

extension RandAugmentOperation {
    /// timm's level-to-argument functions for the increasing ops (`_LEVEL_DENOM = 10`, `translate_pct`
    /// 0.45), with the stored sign in place of `_randomly_negate`:
    ///
    /// | op | argument |
    /// |---|---|
    /// | Rotate | ±30·m/10 degrees |
    /// | PosterizeIncreasing | 4 − int(4·m/10) bits |
    /// | SolarizeIncreasing | 256 − min(256, int(256·m/10)) |
    /// | SolarizeAdd | min(128, int(110·m/10)), threshold 128 |
    /// | Color/Contrast/Brightness/SharpnessIncreasing | max(0.1, 1 ± 0.9·m/10) |
    /// | ShearX/Y | ±0.3·m/10 |
    /// | TranslateX/YRel | ±0.45·m/10 of the width/height |
    public var imageOperation: ImageOperation {
        let level = magnitude / 10
        let sign: Double = negate ? -1 : 1
        func enhance() -> Double { max(0.1, 1.0 + sign * level * 0.9) }
        switch op {
        case .autoContrast: return .autoContrast
        case .equalize: return .equalize
        case .invert: return .invert
        case .rotate: return .rotate(degrees: sign * level * 30)
        case .posterizeIncreasing: return .posterize(bits: 4 - Int(level * 4))
        case .solarizeIncreasing: return .solarize(threshold: 256 - min(256, Int(level * 256)))
        case .solarizeAdd: return .solarizeAdd(add: min(128, Int(level * 110)), threshold: 128)
        case .colorIncreasing: return .color(factor: enhance())
        case .contrastIncreasing: return .contrast(factor: enhance())
        case .brightnessIncreasing: return .brightness(factor: enhance())
        case .sharpnessIncreasing: return .sharpness(factor: enhance())
        case .shearX: return .shearX(factor: sign * level * 0.3)
        case .shearY: return .shearY(factor: sign * level * 0.3)
        case .translateXRel: return .translateXRelative(fraction: sign * level * 0.45)
        case .translateYRel: return .translateYRelative(fraction: sign * level * 0.45)
        }
    }
}

extension ImageOperation {
    /// timm's fill colour for the geometric ops: the ImageNet mean, `round(255 · mean)`.
    public static let defaultFill: (UInt8, UInt8, UInt8) = (124, 116, 104)

    /// Applies the op as timm (PIL) does; geometric ops resample bilinearly and fill uncovered pixels with
    /// `fill`. (Bilinear is what the reference fixtures use. TinyViT's own transform passes
    /// `interpolation='bicubic'` into timm's RandAugment hparams, so its geometric ops are bicubic; the
    /// spec does not record the filter, so replay is bilinear everywhere.)
    public func apply(to image: RGBImage, fill: (UInt8, UInt8, UInt8) = ImageOperation.defaultFill) -> RGBImage {
        switch self {
        case .autoContrast: return PointOps.autoContrast(image)
        case .equalize: return PointOps.equalize(image)
        case .invert: return PointOps.invert(image)
        case .posterize(let bits): return PointOps.posterize(image, bits: bits)
        case .solarize(let threshold): return PointOps.solarize(image, threshold: threshold)
        case .solarizeAdd(let add, let threshold): return PointOps.solarizeAdd(image, add: add, threshold: threshold)
        case .color(let factor): return Enhance.color(image, factor: factor)
        case .contrast(let factor): return Enhance.contrast(image, factor: factor)
        case .brightness(let factor): return Enhance.brightness(image, factor: factor)
        case .sharpness(let factor): return Enhance.sharpness(image, factor: factor)
        case .rotate(let degrees): return AffineWarp.rotate(image, degrees: degrees, fill: fill)
        case .shearX(let factor): return AffineWarp.apply(image, matrix: .init(1, factor, 0, 0, 1, 0), fill: fill)
        case .shearY(let factor): return AffineWarp.apply(image, matrix: .init(1, 0, 0, factor, 1, 0), fill: fill)
        case .translateXRelative(let fraction):
            return AffineWarp.apply(image, matrix: .init(1, 0, fraction * Double(image.width), 0, 1, 0), fill: fill)
        case .translateYRelative(let fraction):
            return AffineWarp.apply(image, matrix: .init(1, 0, 0, 0, 1, fraction * Double(image.height)), fill: fill)
        }
    }
}
