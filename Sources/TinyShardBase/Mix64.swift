/// SplitMix64's finaliser and increment (Spec/FORMAT.md 4): the spec's one mixer, and the project's one
/// copy of it. The record order (ShardFormat's `RecordOrder`), the sampler's counter-based draws (Augment's
/// `SampleRandom`), the held-out split's hash (ImageStore), the seeded generators of the demo data
/// (DemoData's `SeededGenerator`), TinyViT's `SplitMix64` and the fuzzer all mix with it.
public enum Mix64 {
    /// SplitMix64's increment, 0x9E3779B97F4A7C15 (2^64 divided by the golden ratio).
    public static let golden: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// The SplitMix64 output function (a bijective 64-bit mixer).
    @inlinable @inline(__always)
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// One step of the SplitMix64 generator (Steele, Lea & Flood 2014): advances `state` by the golden
    /// gamma and returns the mixed state.
    @inlinable @inline(__always)
    public static func next(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return mix(state)
    }
}
