#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ShardFormat

/// A small, fast, seeded random number generator (SplitMix64) with the few distributions the demo
/// needs. The same seed gives the same numbers on every machine, so demo datasets are reproducible.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    private var spareNormal: Double?

    /// A generator whose whole stream is fixed by `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits (SplitMix64).
    public mutating func next() -> UInt64 { Mix64.next(&state) }

    /// Uniform in [0, 1), 53 random bits.
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform in [`low`, `high`).
    public mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * uniform() }

    /// Uniform integer in `range` (tiny modulo bias is irrelevant for a demo).
    public mutating func integer(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.upperBound - range.lowerBound + 1))
    }

    /// True with probability `probability` (0 never, 1 always).
    public mutating func chance(_ probability: Double) -> Bool { uniform() < probability }

    /// Standard normal (Box–Muller, two values per draw).
    public mutating func normal() -> Double {
        if let spare = spareNormal {
            spareNormal = nil
            return spare
        }
        let u = max(uniform(), 0x1p-60)
        let v = uniform()
        let radius = (-2 * log(u)).squareRoot()
        spareNormal = radius * sin(2 * Double.pi * v)
        return radius * cos(2 * Double.pi * v)
    }

    /// Gamma(shape, 1) (Marsaglia–Tsang; shape < 1 through the boost U^(1/shape)).
    public mutating func gamma(_ shape: Double) -> Double {
        if shape < 1 { return gamma(shape + 1) * pow(max(uniform(), 0x1p-60), 1 / shape) }
        let d = shape - 1.0 / 3
        let c = 1 / (9 * d).squareRoot()
        while true {
            let x = normal()
            let v = pow(1 + c * x, 3)
            guard v > 0 else { continue }
            let u = uniform()
            if log(max(u, 0x1p-60)) < 0.5 * x * x + d - d * v + d * log(v) { return d * v }
        }
    }

    /// Beta(a, b).
    public mutating func beta(_ a: Double, _ b: Double) -> Double {
        let x = gamma(a)
        let y = gamma(b)
        return x + y == 0 ? 0.5 : x / (x + y)
    }
}
