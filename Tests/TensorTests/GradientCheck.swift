import XCTest
@testable import Tensor

/// Finite-difference gradient checking for float32 ops on tiny shapes.
///
/// The scalar probed is `L = Σ out ⊙ r` with a fixed random `r`, evaluated in double from the
/// float outputs; the analytic gradient comes from the op's backward with `gradOutput = r`.
/// Central differences with step `h` are compared to it with a tolerance relative to the
/// largest analytic gradient of that tensor.
struct GradientCheck {
    var step: Float = 1e-2
    var tolerance: Float = 2e-3
    var samples = 40

    static func random(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
        var rng = TestRNG(seed)
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count { t[flat: i] = scale * rng.uniformSymmetric() }
        return t
    }

    static func dot(_ a: Tensor, _ b: Tensor) -> Double {
        var s = 0.0
        for i in 0..<a.count { s += Double(a[flat: i]) * Double(b[flat: i]) }
        return s
    }

    /// Checks `analytic` (the gradient of `L` w.r.t. `input`) by perturbing entries of `input`
    /// (which `forward` must read) and re-running `forward`.
    func check(_ name: String, input: Tensor, analytic: Tensor, probe: Tensor, forward: () -> Tensor,
               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(input.count, analytic.count, "\(name): gradient shape", file: file, line: line)
        let scale = max(analytic.maxAbs(), 1e-3)
        var rng = TestRNG(UInt64(input.count) &* 31 &+ 7)
        var worst: Float = 0
        let indices = input.count <= samples ? Array(0..<input.count) : (0..<samples).map { _ in Int(rng.next() % UInt64(input.count)) }
        for i in indices {
            let saved = input[flat: i]
            input[flat: i] = saved + step
            let plus = GradientCheck.dot(forward(), probe)
            input[flat: i] = saved - step
            let minus = GradientCheck.dot(forward(), probe)
            input[flat: i] = saved
            let numeric = Float((plus - minus) / Double(2 * step))
            worst = max(worst, abs(numeric - analytic[flat: i]) / scale)
        }
        XCTAssertLessThanOrEqual(worst, tolerance, "\(name): finite-difference mismatch \(worst)", file: file, line: line)
    }
}

struct TestRNG {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniformSymmetric() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
}
