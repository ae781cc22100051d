/// Float-to-byte conversions without Swift's trapping range checks (which stop loops from vectorising).
/// Adding 2^23 (2^52 for Double) to a value in [0, 256) puts its integer part in the low mantissa bits,
/// so the low byte of the bit pattern is the converted value.
enum PixelMath {
    /// C's `(UINT8)v` for v already in [0, 255]: truncation toward zero.
    @inline(__always)
    static func truncated(_ v: Float) -> UInt8 {
        UInt8(truncatingIfNeeded: (v.rounded(.towardZero) + 0x1p23).bitPattern)
    }

    @inline(__always)
    static func truncated(_ v: Double) -> UInt8 {
        UInt8(truncatingIfNeeded: (v.rounded(.towardZero) + 0x1p52).bitPattern)
    }

    /// Clamp to [0, 255], then round half to even (torch's `round_` then the uint8 cast).
    @inline(__always)
    static func roundedClamped(_ v: Float) -> UInt8 {
        let c = min(max(v, 0), 255)
        return UInt8(truncatingIfNeeded: (c + 0x1p23).bitPattern)
    }

    /// Clamp to [0, 255], then truncate (PIL's `clip8` and extrapolating blend).
    @inline(__always)
    static func truncatedClamped(_ v: Float) -> UInt8 {
        truncated(min(max(v, 0), 255))
    }
}
