#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ShardFormat

/// The per-pixel noise of random erasing ("pixel" mode), a pure function of the stored 32-bit seed.
///
/// timm erases *after* `ToTensor` and `Normalize`, filling the box with standard normal values in the
/// normalised domain. This generator defines those values exactly (so any implementation can replay a
/// record): value k of a box of height h and width w, in timm's (channel, row, column) order
/// k = c·h·w + y·w + x, is Box–Muller of the pair p = ⌊k/2⌋:
///
///     key = mix64(UInt64(seed) ^ 0x4552415345534545)          // "ERASESEE"
///     u1  = (mix64(key + (2p + 1)·G) >> 11) · 2^-53,  u2 = (mix64(key + (2p + 2)·G) >> 11) · 2^-53
///     z_k = √(−2·ln(1 − u1)) · (k even ? cos(2π·u2) : sin(2π·u2))
///
/// with `mix64` and G = 0x9E3779B97F4A7C15 as in ``SampleRandom`` (wrapping 64-bit arithmetic), rounded
/// to float32.
///
/// In the uint8 domain (`erase(_:box:seed:)`), channel c gets `(z · std_c + mean_c) · 255` with
/// ImageNet's mean and std, rounded and clamped to 0...255: the pixel that normalises back to z, up to
/// that rounding and clamping (|z| beyond ~2 sigma clips at 0 or 255). A trainer that normalises to float
/// should use ``normalizedValue(seed:index:)`` instead and gets timm's values exactly.
public enum ErasingNoise {
    /// ImageNet's per-channel mean (R, G, B), as torchvision normalises.
    public static let mean: [Float] = [0.485, 0.456, 0.406]
    /// ImageNet's per-channel standard deviation (R, G, B).
    public static let std: [Float] = [0.229, 0.224, 0.225]

    /// Value `index` (k = c·h·w + y·w + x) of the erase noise of `seed`, in the normalised domain where
    /// timm fills the box.
    public static func normalizedValue(seed: UInt32, index: Int) -> Float {
        let pair = pairValues(key: key(seed), pair: UInt64(index / 2))
        return index % 2 == 0 ? pair.0 : pair.1
    }

    /// The first `count` values of a seed's sequence (each Box–Muller pair computed once).
    public static func normalizedValues(seed: UInt32, count: Int) -> [Float] {
        let k = key(seed)
        var values = [Float](repeating: 0, count: count + 1)
        for pair in 0..<((count + 1) / 2) {
            let (even, odd) = pairValues(key: k, pair: UInt64(pair))
            values[2 * pair] = even
            values[2 * pair + 1] = odd
        }
        values.removeLast(values.count - count)
        return values
    }

    private static func key(_ seed: UInt32) -> UInt64 { SampleRandom.mix64(UInt64(seed) ^ 0x4552_4153_4553_4545) }

    private static func pairValues(key: UInt64, pair: UInt64) -> (Float, Float) {
        let u1 = Double(SampleRandom.mix64(key &+ (2 * pair + 1) &* SampleRandom.golden) >> 11) * 0x1p-53
        let u2 = Double(SampleRandom.mix64(key &+ (2 * pair + 2) &* SampleRandom.golden) >> 11) * 0x1p-53
        let radius = (-2 * log1p(-u1)).squareRoot()
        let angle = 2 * Double.pi * u2
        return (Float(radius * cos(angle)), Float(radius * sin(angle)))
    }

    /// Writes the noise into the box of a uint8 image (mapped as described above, with the given
    /// normalisation; ImageNet's by default).
    public static func erase(_ image: inout RGBImage, box: PixelBox, seed: UInt32,
                             mean: [Float] = ErasingNoise.mean, std: [Float] = ErasingNoise.std) {
        let w = Int(box.width), h = Int(box.height), x0 = Int(box.x), y0 = Int(box.y)
        let width = image.width
        let noise = normalizedValues(seed: seed, count: 3 * w * h)
        image.pixels.withUnsafeMutableBufferPointer { p in
            for c in 0..<3 {
                for y in 0..<h {
                    for x in 0..<w {
                        let z = noise[(c * h + y) * w + x]
                        let v = ((z * std[c] + mean[c]) * 255).rounded()
                        p[((y0 + y) * width + x0 + x) * 3 + c] = v <= 0 ? 0 : v >= 255 ? 255 : UInt8(v)
                    }
                }
            }
        }
    }

    /// Writes the noise into the box of a normalised float image in CHW layout (timm's values).
    public static func erase(normalized chw: UnsafeMutableBufferPointer<Float>, width: Int, height: Int,
                             box: PixelBox, seed: UInt32) {
        let w = Int(box.width), h = Int(box.height), x0 = Int(box.x), y0 = Int(box.y)
        let noise = normalizedValues(seed: seed, count: 3 * w * h)
        for c in 0..<3 {
            for y in 0..<h {
                for x in 0..<w {
                    chw[(c * height + y0 + y) * width + x0 + x] = noise[(c * h + y) * w + x]
                }
            }
        }
    }
}
