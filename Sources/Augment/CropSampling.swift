#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ShardFormat

/// torchvision's `RandomResizedCrop.get_params`, step for step: up to 10 attempts of (area fraction
/// uniform in `scale`, aspect ratio log-uniform in `ratio`, box size rounded half-to-even as Python's
/// `round` does, position uniform over the places the box fits), then the central-crop fallback.
/// (timm's `RandomResizedCropAndInterpolation`, which TinyViT uses, has the same algorithm.)
/// Spec/SAMPLER.md 4.
enum CropSampling {
    static func draw(sourceWidth width: Int, sourceHeight height: Int, scale: ClosedRange<Double>,
                     ratio: ClosedRange<Double>, random: inout SampleRandom) -> PixelBox {
        let area = Double(width * height)
        let logRatio = (log(ratio.lowerBound), log(ratio.upperBound))
        for _ in 0..<10 {
            let targetArea = area * random.uniform(scale.lowerBound, scale.upperBound)
            let aspect = exp(random.uniform(logRatio.0, logRatio.1))
            let w = Int((targetArea * aspect).squareRoot().rounded(.toNearestOrEven))
            let h = Int((targetArea / aspect).squareRoot().rounded(.toNearestOrEven))
            if w > 0, w <= width, h > 0, h <= height {
                let top = random.integer(0, height - h)
                let left = random.integer(0, width - w)
                return box(left, top, w, h)
            }
        }
        return centerCrop(width: width, height: height, ratio: ratio)
    }

    /// The fallback: the largest central box whose aspect ratio is inside `ratio`.
    static func centerCrop(width: Int, height: Int, ratio: ClosedRange<Double>) -> PixelBox {
        let inRatio = Double(width) / Double(height)
        var w = width
        var h = height
        if inRatio < ratio.lowerBound {
            h = Int((Double(w) / ratio.lowerBound).rounded(.toNearestOrEven))
        } else if inRatio > ratio.upperBound {
            w = Int((Double(h) * ratio.upperBound).rounded(.toNearestOrEven))
        }
        // Rounding can only reach the source size, never pass it (the ratio test above bounds it).
        w = min(max(w, 1), width)
        h = min(max(h, 1), height)
        return box((width - w) / 2, (height - h) / 2, w, h)
    }

    private static func box(_ x: Int, _ y: Int, _ w: Int, _ h: Int) -> PixelBox {
        PixelBox(x: UInt16(x), y: UInt16(y), width: UInt16(w), height: UInt16(h))
    }
}
