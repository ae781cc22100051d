#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// PIL's `Image.transform(size, AFFINE, matrix, BILINEAR, fillcolor=fill)` and `Image.rotate`: for each
/// output pixel centre (x + 0.5, y + 0.5) the source point is `(a·x + b·y + c, d·x + e·y + f)`; a point
/// outside the source keeps the fill colour, one inside is interpolated bilinearly from the four nearest
/// pixel centres (edge pixels repeated) and truncated to an integer, as PIL's `bilinear_filter32RGB` does.
enum AffineWarp {
    /// The six coefficients of PIL's affine `data`, output → input.
    struct Matrix {
        var a, b, c, d, e, f: Double
        init(_ a: Double, _ b: Double, _ c: Double, _ d: Double, _ e: Double, _ f: Double) {
            (self.a, self.b, self.c, self.d, self.e, self.f) = (a, b, c, d, e, f)
        }
    }

    /// PIL's `rotate(degrees)` without expand: about the centre (W/2, H/2), matrix entries rounded to 15
    /// decimals as PIL does; 0° is a copy.
    static func rotate(_ image: RGBImage, degrees: Double, fill: (UInt8, UInt8, UInt8)) -> RGBImage {
        var angle = degrees.truncatingRemainder(dividingBy: 360)
        if angle < 0 { angle += 360 }
        if angle == 0 { return image }
        let radians = -angle * Double.pi / 180
        func round15(_ v: Double) -> Double { (v * 1e15).rounded(.toNearestOrEven) / 1e15 }
        var m = Matrix(round15(cos(radians)), round15(sin(radians)), 0, round15(-sin(radians)), round15(cos(radians)), 0)
        let cx = Double(image.width) / 2
        let cy = Double(image.height) / 2
        m.c = m.a * -cx + m.b * -cy + 0 + cx
        m.f = m.d * -cx + m.e * -cy + 0 + cy
        return apply(image, matrix: m, fill: fill)
    }

    static func apply(_ image: RGBImage, matrix m: Matrix, fill: (UInt8, UInt8, UInt8)) -> RGBImage {
        let width = image.width
        let height = image.height
        let limitX = Double(width), limitY = Double(height)
        var out = RGBImage(filledWidth: width, height: height, fill: fill)
        @inline(__always) func load(_ p: UnsafePointer<UInt8>) -> SIMD4<Double> {
            SIMD4(Double(p[0]), Double(p[1]), Double(p[2]), 0)
        }
        image.pixels.withUnsafeBufferPointer { srcBuffer in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                let src = srcBuffer.baseAddress!
                for y in 0..<height {
                    let yc = Double(y) + 0.5
                    for x in 0..<width {
                        let xc = Double(x) + 0.5
                        // The same expressions, in the same order, as PIL's affine_transform.
                        var xin = m.a * xc + m.b * yc + m.c
                        var yin = m.d * xc + m.e * yc + m.f
                        guard xin >= 0, xin < limitX, yin >= 0, yin < limitY else { continue }
                        xin -= 0.5
                        yin -= 0.5
                        let fx = xin.rounded(.down)
                        let fy = yin.rounded(.down)
                        let dx = xin - fx
                        let dy = yin - fy
                        // xin, yin lie in [-0.5, size): the conversions cannot overflow.
                        let ix = Int(fx)
                        let iy = Int(fy)
                        // Indices are bounded by the image size: wrapping arithmetic skips overflow checks.
                        let x0 = min(max(ix, 0), width &- 1) &* 3
                        let x1 = min(max(ix &+ 1, 0), width &- 1) &* 3
                        let row0 = src + min(max(iy, 0), height &- 1) &* width &* 3
                        let top = load(row0 + x0) + (load(row0 + x1) - load(row0 + x0)) * dx
                        var bottom = top
                        if iy &+ 1 >= 0 && iy &+ 1 < height {
                            let row1 = src + (iy &+ 1) &* width &* 3
                            bottom = load(row1 + x0) + (load(row1 + x1) - load(row1 + x0)) * dx
                        }
                        let v = top + (bottom - top) * dy
                        let o = (y &* width &+ x) &* 3
                        dst[o] = PixelMath.truncated(v[0])
                        dst[o + 1] = PixelMath.truncated(v[1])
                        dst[o + 2] = PixelMath.truncated(v[2])
                    }
                }
            }
        }
        return out
    }
}
