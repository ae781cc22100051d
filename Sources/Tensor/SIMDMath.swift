/// Vectorised float math on `SIMD8<Float>` written only with operations that lower to AVX2
/// instructions (no `clamped`, `pointwiseMin/Max` or `squareRoot`, which run lane by lane).
public typealias Float8 = SIMD8<Float>

@inline(__always) func vmax(_ a: Float8, _ b: Float8) -> Float8 { a.replacing(with: b, where: a .< b) }
@inline(__always) func vmin(_ a: Float8, _ b: Float8) -> Float8 { a.replacing(with: b, where: a .> b) }
@inline(__always) func vabs(_ a: Float8) -> Float8 {
    unsafeBitCast(unsafeBitCast(a, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: Float8.self)
}

/// `exp(x)` with ~1 ulp error for x in [-87.3, 88.7] (Cephes-style: range reduction by ln 2,
/// degree-6 polynomial, exponent built from the rounding bits). Results below that range flush to 0.
@inline(__always) public func vexp(_ x0: Float8) -> Float8 {
    let x = vmin(vmax(x0, Float8(repeating: -87.3)), Float8(repeating: 88.7))
    let magic = Float8(repeating: 12_582_912)  // 1.5 · 2^23: adding it rounds to an integer
    let t = x * 1.442_695_04 + magic
    let n = t - magic
    var r = x - n * 0.693_359_375
    r = r - n * -2.121_944_4e-4
    var p = Float8(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    let y = p * r * r + r + 1
    let bits = (unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000 &+ 127) &<< 23
    return y * unsafeBitCast(bits, to: Float8.self)
}

@inline(__always) func vexp(_ x: Float) -> Float { vexp(Float8(repeating: x))[0] }

/// `erf(z)` as an odd/even rational minimax fit on [-4, 4] (the form Eigen and XLA use), clamped
/// outside (where float erf is ±1): max error ≈ 7e-8 plus float rounding, one division, no exp.
@inline(__always) public func verf(_ z0: Float8) -> Float8 {
    let z = vmin(vmax(z0, Float8(repeating: -4)), Float8(repeating: 4))
    let z2 = z * z
    var p = Float8(repeating: -2.726_142_258_013_06e-10)
    p = p * z2 + 2.770_681_424_959_02e-08
    p = p * z2 - 2.101_024_020_825_08e-06
    p = p * z2 - 5.692_506_394_623_46e-05
    p = p * z2 - 7.349_906_303_268_55e-04
    p = p * z2 - 2.954_599_808_540_25e-03
    p = p * z2 - 1.609_603_332_624_15e-02
    p = p * z
    var q = Float8(repeating: -1.456_607_184_649_96e-05)
    q = q * z2 - 2.133_740_552_789_05e-04
    q = q * z2 - 1.682_826_974_382_03e-03
    q = q * z2 - 7.373_329_167_204_68e-03
    q = q * z2 - 1.426_473_905_141_89e-02
    return p / q
}

/// The standard normal CDF Φ(x) = ½·(1 + erf(x/√2)), computed as PyTorch's GELU does.
@inline(__always) public func vnormalCDF(_ x: Float8) -> Float8 {
    0.5 + 0.5 * verf(x * 0.707_106_77)
}

/// GELU (erf form, PyTorch's default): x·Φ(x).
@inline(__always) public func vgelu(_ x: Float8) -> Float8 { x * vnormalCDF(x) }

/// d GELU / dx = Φ(x) + x·φ(x).
@inline(__always) public func vgeluDerivative(_ x: Float8) -> Float8 {
    vnormalCDF(x) + x * (0.398_942_28 * vexp(-0.5 * x * x))
}

/// Scalar versions (tails of vector loops).
@inline(__always) public func gelu(_ x: Float) -> Float { vgelu(Float8(repeating: x))[0] }
@inline(__always) public func geluDerivative(_ x: Float) -> Float { vgeluDerivative(Float8(repeating: x))[0] }

extension Float8 {
    /// Sum of the eight lanes.
    @inline(__always) var laneSum: Float {
        let a = lowHalf + highHalf
        let b = a.lowHalf + a.highHalf
        return b[0] + b[1]
    }
    @inline(__always) var laneMax: Float {
        let a = vmax4(lowHalf, highHalf)
        return Swift.max(Swift.max(a[0], a[1]), Swift.max(a[2], a[3]))
    }
}

@inline(__always) func vmax4(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> { a.replacing(with: b, where: a .< b) }

/// Loads 8 floats from `p + i`.
@inline(__always) func load8(_ p: UnsafePointer<Float>, _ i: Int) -> Float8 {
    UnsafeRawPointer(p + i).loadUnaligned(as: Float8.self)
}
@inline(__always) func load8(_ p: UnsafeMutablePointer<Float>, _ i: Int) -> Float8 {
    UnsafeRawPointer(p + i).loadUnaligned(as: Float8.self)
}
/// Stores 8 floats at `p + i`.
@inline(__always) func store8(_ v: Float8, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: Float8.self)
}
