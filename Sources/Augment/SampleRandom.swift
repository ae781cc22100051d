#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ShardFormat

/// Counter-based random numbers for the sampler: every draw is a pure function of (key, counter), so any
/// worker can produce any sample's draws without replaying anyone else's, and a restarted run gets the
/// same numbers.
///
/// The generator is SplitMix64 (Steele, Lea & Flood 2014) used as a counter-based hash: draw n (n = 1, 2,
/// …) of a stream with key k is `mix64(k &+ n &* 0x9E3779B97F4A7C15)`. A stream's key is derived from
/// (run seed, epoch, sample id, stream number) by ``key(seed:epoch:sample:stream:)``; each decision of
/// the recipe (crop, flip, RandAugment, erase, mix) has its own stream, so changing one part of a recipe
/// does not shift the random numbers of another. Spec/SAMPLER.md 2 states every draw exactly.
public struct SampleRandom: Sendable {
    /// G, SplitMix64's increment 0x9E3779B97F4A7C15 (the format's `Mix64.golden`).
    public static let golden: UInt64 = Mix64.golden

    /// The SplitMix64 output function (a bijective 64-bit mixer): the format's `Mix64.mix(_:)`.
    @inline(__always)
    public static func mix64(_ value: UInt64) -> UInt64 { Mix64.mix(value) }

    /// The key of one stream: `mix64(mix64(mix64(seed ^ T) ^ (epoch << 32 | sample)) &+ stream · S)` with
    /// T = 0x54494E5953484152 ("TINYSHAR") and S = 0xD1B54A32D192ED03.
    public static func key(seed: UInt64, epoch: UInt32, sample: UInt32, stream: UInt32) -> UInt64 {
        let run = mix64(seed ^ 0x5449_4E59_5348_4152)
        let position = mix64(run ^ (UInt64(epoch) << 32 | UInt64(sample)))
        return mix64(position &+ UInt64(stream) &* 0xD1B5_4A32_D192_ED03)
    }

    /// The stream's key; draw n is `mix64(key + n·G)`.
    public let key: UInt64
    /// Draws made so far; the next draw uses counter + 1.
    public private(set) var counter: UInt64 = 0

    /// The stream with key `key`, before its first draw.
    public init(key: UInt64) { self.key = key }

    /// The stream of (`seed`, `epoch`, `sample`, `stream`), see ``key(seed:epoch:sample:stream:)``.
    public init(seed: UInt64, epoch: UInt32, sample: UInt32, stream: UInt32) {
        self.init(key: Self.key(seed: seed, epoch: epoch, sample: sample, stream: stream))
    }

    /// The next 64 random bits: `mix64(key + counter·G)` after incrementing the counter.
    @inline(__always)
    public mutating func next() -> UInt64 {
        counter &+= 1
        return Self.mix64(key &+ counter &* Self.golden)
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Python's `random.uniform(a, b)`: `a + (b - a) * u`.
    public mutating func uniform(_ a: Double, _ b: Double) -> Double { a + (b - a) * uniform() }

    /// Uniform integer in `lower...upper` (Python's `random.randint`), unbiased (Lemire's method).
    public mutating func integer(_ lower: Int, _ upper: Int) -> Int {
        precondition(lower <= upper, "empty integer range")
        let span = UInt64(upper - lower) &+ 1
        if span == 0 { return lower &+ Int(bitPattern: UInt(next())) }  // the whole 64-bit range
        var product = next().multipliedFullWidth(by: span)
        if product.low < span {
            let threshold = (0 &- span) % span
            while product.low < threshold { product = next().multipliedFullWidth(by: span) }
        }
        return lower + Int(product.high)
    }

    /// Normal(mean, std) by Box–Muller; each call uses exactly two draws (no cached second value), so the
    /// number of draws a decision consumes does not depend on earlier ones.
    public mutating func gauss(mean: Double = 0, std: Double = 1) -> Double {
        let u1 = uniform()
        let u2 = uniform()
        return mean + std * (-2 * log1p(-u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// Gamma(shape, 1) by Marsaglia & Tsang (2000), with the u^(1/shape) boost for shape < 1.
    public mutating func gamma(shape: Double) -> Double {
        precondition(shape > 0, "gamma shape must be positive")
        if shape < 1 {
            let boost = pow(uniform(), 1 / shape)
            return gamma(shape: shape + 1) * boost
        }
        let d = shape - 1.0 / 3
        let c = 1 / (9 * d).squareRoot()
        while true {
            var x: Double
            var v: Double
            repeat {
                x = gauss()
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = uniform()
            if u < 1 - 0.0331 * x * x * x * x { return d * v }
            if log(u) < 0.5 * x * x + d * (1 - v + log(v)) { return d * v }
        }
    }

    /// Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b) (what numpy's `beta` does for these
    /// shapes, up to its exact draws).
    public mutating func beta(_ a: Double, _ b: Double) -> Double {
        let x = gamma(shape: a)
        let y = gamma(shape: b)
        let sum = x + y
        return sum > 0 ? x / sum : 0.5
    }
}
