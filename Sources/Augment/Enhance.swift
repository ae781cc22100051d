/// PIL's `ImageEnhance` (what timm's color, contrast, brightness and sharpness ops call): a blend of a
/// "degenerate" image and the original, `Image.blend(degenerate, image, factor)`.
enum Enhance {
    /// Degenerate: the image in greyscale (PIL's RGB→L, `(19595 R + 38470 G + 7471 B + 0x8000) >> 16`).
    static func color(_ image: RGBImage, factor: Double) -> RGBImage {
        var grey = image
        grey.pixels.withUnsafeMutableBufferPointer { p in
            var i = 0
            while i < p.count {
                let l = UInt8(luma(p[i], p[i + 1], p[i + 2]))
                p[i] = l
                p[i + 1] = l
                p[i + 2] = l
                i += 3
            }
        }
        return blend(grey, image, factor: factor)
    }

    // Contrast and brightness blend with a constant, so they are a lookup table per value.

    /// Degenerate: a flat image at the mean grey level, `int(mean(L) + 0.5)`.
    static func contrast(_ image: RGBImage, factor: Double) -> RGBImage {
        var sum = 0
        image.pixels.withUnsafeBufferPointer { p in
            var i = 0
            while i < p.count {
                sum += luma(p[i], p[i + 1], p[i + 2])
                i += 3
            }
        }
        let mean = UInt8(clamping: Int(Double(sum) / Double(image.width * image.height) + 0.5))
        let alpha = Float(factor)
        let table = (0..<256).map { blendValue(mean, UInt8($0), alpha: alpha) }
        return PointOps.map(image, [table, table, table])
    }

    /// Degenerate: black.
    static func brightness(_ image: RGBImage, factor: Double) -> RGBImage {
        let alpha = Float(factor)
        let table = (0..<256).map { blendValue(0, UInt8($0), alpha: alpha) }
        return PointOps.map(image, [table, table, table])
    }

    /// Degenerate: PIL's SMOOTH filter (3x3 kernel 1 1 1 / 1 5 1 / 1 1 1, divided by 13, rounded), with
    /// the one-pixel border copied unfiltered as PIL's `ImagingFilter3x3` does.
    static func sharpness(_ image: RGBImage, factor: Double) -> RGBImage {
        blend(smooth(image), image, factor: factor)
    }

    @inline(__always)
    static func luma(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> Int {
        (Int(r) * 19595 + Int(g) * 38470 + Int(b) * 7471 + 0x8000) >> 16
    }

    static func smooth(_ image: RGBImage) -> RGBImage {
        var out = image
        let width = image.width
        let height = image.height
        guard width >= 3, height >= 3 else { return out }
        let side = Float(1) / 13
        let centre = Float(5) / 13
        image.pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                let stride = width * 3
                for y in 1..<(height - 1) {
                    let up = (y - 1) * stride, mid = y * stride, down = (y + 1) * stride
                    for i in 3..<(stride - 3) {
                        // PIL sums row y+1, then y, then y−1, each left to right, onto offset 0.5.
                        var s: Float = 0.5
                        s += Float(src[down + i - 3]) * side + Float(src[down + i]) * side + Float(src[down + i + 3]) * side
                        s += Float(src[mid + i - 3]) * side + Float(src[mid + i]) * centre + Float(src[mid + i + 3]) * side
                        s += Float(src[up + i - 3]) * side + Float(src[up + i]) * side + Float(src[up + i + 3]) * side
                        dst[mid + i] = PixelMath.truncatedClamped(s)
                    }
                }
            }
        }
        return out
    }

    /// PIL's `ImagingBlend`: `in1 + alpha·(in2 − in1)` in single precision, truncated; clipped to
    /// [0, 255] when alpha is outside [0, 1]. Every output byte depends only on the two input bytes, so
    /// the blend is a 64K-entry table lookup.
    static func blend(_ first: RGBImage, _ second: RGBImage, factor: Double) -> RGBImage {
        let alpha = Float(factor)
        if alpha == 0 { return first }
        if alpha == 1 { return second }
        var table = [UInt8](repeating: 0, count: 65536)
        for d in 0..<256 {
            for v in 0..<256 { table[d << 8 | v] = blendValue(UInt8(d), UInt8(v), alpha: alpha) }
        }
        var out = first
        table.withUnsafeBufferPointer { t in
            second.pixels.withUnsafeBufferPointer { b in
                out.pixels.withUnsafeMutableBufferPointer { a in
                    for i in 0..<a.count { a[i] = t[Int(a[i]) << 8 | Int(b[i])] }
                }
            }
        }
        return out
    }

    /// One byte of PIL's blend of `degenerate` toward `value`.
    @inline(__always)
    static func blendValue(_ degenerate: UInt8, _ value: UInt8, alpha: Float) -> UInt8 {
        if alpha == 0 { return degenerate }
        if alpha == 1 { return value }
        let t = Float(degenerate) + alpha * Float(Int(value) - Int(degenerate))
        return alpha >= 0 && alpha <= 1 ? PixelMath.truncated(t) : PixelMath.truncatedClamped(t)
    }
}
