import TinyShardBase

/// `--max-side N`: shrink an image whose longer side exceeds N so that side becomes N, keeping the aspect
/// ratio (Spec/IMAGESTORE.md section 7). Smaller images are left alone — enlarging adds bytes, not
/// information.
///
/// The filter is the antialiased bicubic of Augment's `ResizedCrop` (TinyShardBase's `RGBImage.resampled`;
/// PIL's and torchvision's `antialias=True`, a = −0.5) over the whole image: the filter the training crop uses, already checked against
/// torchvision, and when shrinking it averages every source pixel, so there is no aliasing.
public enum MaxSideResize {
    /// The stored size: the longer side becomes `maxSide`, the shorter max(1, ⌊(s·N + ⌊l/2⌋) / l⌋) (exact
    /// integer rounding, half up, so every implementation agrees). Unchanged when it already fits.
    public static func size(width: Int, height: Int, maxSide: Int) -> (width: Int, height: Int) {
        let long = max(width, height), short = min(width, height)
        guard maxSide >= 1, long > maxSide else { return (width, height) }
        let scaled = max(1, (short * maxSide + long / 2) / long)
        return width >= height ? (maxSide, scaled) : (scaled, maxSide)
    }

    /// The image resized to fit `maxSide` (or itself when it fits).
    public static func apply(_ image: RGBImage, maxSide: Int) throws -> RGBImage {
        let (width, height) = size(width: image.width, height: image.height, maxSide: maxSide)
        guard width != image.width || height != image.height else { return image }
        return image.resampled(left: 0, top: 0, width: image.width, height: image.height,
                               outputWidth: width, outputHeight: height, interpolation: .bicubic)
    }
}
