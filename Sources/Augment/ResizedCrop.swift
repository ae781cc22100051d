import ShardFormat
import TinyShardBase

/// torchvision's `resized_crop(img, top, left, h, w, size, interpolation, antialias=True)` on a uint8
/// image: the integer box is cut out and resized with torch's antialiased separable filter (PIL's
/// algorithm): when shrinking, the filter is stretched by the scale so every source pixel contributes;
/// when enlarging, it is the plain filter. The resampling itself is TinyShardBase's
/// `RGBImage.resampled(left:top:width:height:outputWidth:outputHeight:interpolation:)`.
///
/// The arithmetic is torchvision's float path (convert to float32, interpolate horizontally then
/// vertically without intermediate rounding, round half to even, clamp): the reference fixtures were
/// made that way, and it agrees with them to ~1e-4 grey levels, where torch's fixed-point uint8 kernel
/// (which rounds between the passes) differs from them by ~0.2.
public enum ResizedCrop {
    /// Crops `box` (in source pixels) and resizes it to `outputWidth` × `outputHeight`; throws
    /// ``AugmentError/mismatch(_:)`` for a box not inside the image and ``AugmentError/outOfRange(_:)`` for an empty
    /// output.
    public static func apply(_ image: RGBImage, box: PixelBox, outputWidth: Int, outputHeight: Int,
                             interpolation: ResizeInterpolation = .bicubic) throws -> RGBImage {
        guard box.width >= 1, box.height >= 1, Int(box.x) + Int(box.width) <= image.width,
              Int(box.y) + Int(box.height) <= image.height else {
            throw AugmentError.mismatch("crop box x \(box.x) y \(box.y) w \(box.width) h \(box.height) is not inside the \(image.width)x\(image.height) image")
        }
        guard outputWidth >= 1, outputHeight >= 1 else {
            throw AugmentError.outOfRange("output size \(outputWidth)x\(outputHeight) must be at least 1x1")
        }
        return image.resampled(left: Int(box.x), top: Int(box.y), width: Int(box.width), height: Int(box.height),
                               outputWidth: outputWidth, outputHeight: outputHeight, interpolation: interpolation)
    }
}
