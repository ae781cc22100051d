import ShardFormat

/// Mixup and cutmix of two rendered views (Spec/FORMAT.md §4: "λ·this + (1−λ)·partner (mixup) or the
/// partner's pixels inside the box (cutmix)").
public enum Mixing {
    /// uint8 mixup: `round(λ·a + (1 − λ)·b)` per channel. timm mixes normalised floats; rounding to
    /// uint8 here costs at most half a grey level.
    public static func mixup(_ a: RGBImage, _ b: RGBImage, lambda: Double) throws -> RGBImage {
        try sameSize(a, b)
        let l = Float(lambda)
        var out = a
        b.pixels.withUnsafeBufferPointer { pb in
            out.pixels.withUnsafeMutableBufferPointer { pa in
                for i in 0..<pa.count {
                    let v = (l * Float(pa[i]) + (1 - l) * Float(pb[i])).rounded()
                    pa[i] = v <= 0 ? 0 : v >= 255 ? 255 : UInt8(v)
                }
            }
        }
        return out
    }

    /// Cutmix: `a` with the box replaced by `b`'s pixels.
    public static func cutmix(_ a: RGBImage, _ b: RGBImage, box: PixelBox) throws -> RGBImage {
        try sameSize(a, b)
        try inside(box, a.width, a.height)
        var out = a
        let rowBytes = Int(box.width) * 3
        b.pixels.withUnsafeBufferPointer { pb in
            out.pixels.withUnsafeMutableBufferPointer { pa in
                for y in Int(box.y)..<(Int(box.y) + Int(box.height)) {
                    let start = (y * a.width + Int(box.x)) * 3
                    (pa.baseAddress! + start).update(from: pb.baseAddress! + start, count: rowBytes)
                }
            }
        }
        return out
    }

    /// Float mixup / cutmix on CHW planes of the same size (timm's domain): `a` is overwritten.
    public static func mix(_ a: UnsafeMutableBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, width: Int,
                           height: Int, mode: MixMode, lambda: Double, box: PixelBox?) throws {
        guard a.count == b.count, a.count == 3 * width * height else {
            throw AugmentError.mismatch("mix buffers hold \(a.count) and \(b.count) floats, expected \(3 * width * height)")
        }
        switch mode {
        case .mixup:
            let l = Float(lambda)
            for i in 0..<a.count { a[i] = a[i] * l + b[i] * (1 - l) }
        case .cutmix:
            guard let box else { throw AugmentError.mismatch("cutmix needs a box") }
            try inside(box, width, height)
            for c in 0..<3 {
                for y in Int(box.y)..<(Int(box.y) + Int(box.height)) {
                    let start = (c * height + y) * width + Int(box.x)
                    for i in start..<(start + Int(box.width)) { a[i] = b[i] }
                }
            }
        }
    }

    private static func sameSize(_ a: RGBImage, _ b: RGBImage) throws {
        guard a.width == b.width, a.height == b.height else {
            throw AugmentError.mismatch("cannot mix a \(a.width)x\(a.height) image with a \(b.width)x\(b.height) one")
        }
    }

    private static func inside(_ box: PixelBox, _ width: Int, _ height: Int) throws {
        guard box.width >= 1, box.height >= 1, Int(box.x) + Int(box.width) <= width,
              Int(box.y) + Int(box.height) <= height else {
            throw AugmentError.mismatch("box x \(box.x) y \(box.y) w \(box.width) h \(box.height) is not inside \(width)x\(height)")
        }
    }
}
