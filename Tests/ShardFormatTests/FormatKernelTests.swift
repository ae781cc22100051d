import CKernelDispatch
import Foundation
import XCTest
@testable import ShardFormat

/// The C kernels behind the values column exist twice (portable, and AVX2/F16C on x86-64), chosen at
/// run time. Both must give the bits Swift's own `Float16` conversions give, and each other's, for every
/// float16 and for the float32 values where rounding decides; and decoding a shard must give the same
/// rows on either path. On a CPU without AVX2/F16C (or on arm64) "dispatched" is the portable path and
/// these tests check the portable path against Swift alone.
final class FormatKernelTests: XCTestCase {
    override func tearDown() {
        tinyshard_simd_force_portable(0)
        super.tearDown()
    }

    /// Runs `body` once on the portable path and once on the dispatched one.
    private func onBothPaths<T>(_ body: () throws -> T) rethrows -> (portable: T, dispatched: T) {
        tinyshard_simd_force_portable(1)
        XCTAssertEqual(tinyshard_simd_active(), TINYSHARD_SIMD_PORTABLE)
        let portable = try body()
        tinyshard_simd_force_portable(0)
        return (portable, try body())
    }

    func testDispatchFindsWhatTheCPUHas() {
        let supported = tinyshard_simd_supported()
        print("CPU dispatch: supported \(String(cString: tinyshard_simd_name(supported))), active \(String(cString: tinyshard_simd_name(tinyshard_simd_active())))")
        #if arch(x86_64)
        // Linux lists a feature in /proc/cpuinfo only when the CPU has it and the OS enabled it (for AVX:
        // saves the YMM registers), the same two things the dispatch checks through CPUID and XGETBV.
        if let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let flags = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) {
            let names = Set(flags.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == ":" }).map(String.init))
            let expected = names.contains("avx2") && names.contains("f16c") ? TINYSHARD_SIMD_AVX2 : TINYSHARD_SIMD_PORTABLE
            XCTAssertEqual(supported, expected, "/proc/cpuinfo lists avx2: \(names.contains("avx2")), f16c: \(names.contains("f16c"))")
        }
        #else
        XCTAssertEqual(supported, TINYSHARD_SIMD_PORTABLE)
        #endif
        tinyshard_simd_force_portable(1)
        XCTAssertEqual(tinyshard_simd_active(), TINYSHARD_SIMD_PORTABLE)
        tinyshard_simd_force_portable(0)
        if ProcessInfo.processInfo.environment["TINYSHARD_SIMD"] != "portable" {
            XCTAssertEqual(tinyshard_simd_active(), supported)
        }
    }

    func testWideningEveryFloat16() {
        let bits = (0...UInt16.max).map { $0 }
        let (portable, dispatched) = onBothPaths { () -> [UInt32] in
            var out = [Float](repeating: 0, count: bits.count)
            bits.withUnsafeBufferPointer { b in out.withUnsafeMutableBufferPointer { FormatKernels.widen(b, into: $0) } }
            return out.map(\.bitPattern)
        }
        XCTAssertEqual(portable, dispatched, "portable and dispatched widening differ")
        var mismatches = 0
        for h in bits {
            let half = Float16(bitPattern: h)
            let expected: UInt32
            if half.isNaN {
                // A NaN keeps its sign and payload and gets its quiet bit (what F16C and arm64's FCVT do).
                expected = UInt32(h & 0x8000) << 16 | 0x7FC0_0000 | UInt32(h & 0x3FF) << 13
            } else {
                expected = Float(half).bitPattern
            }
            if portable[Int(h)] != expected {
                mismatches += 1
                if mismatches < 5 { XCTFail("float16 0x\(String(h, radix: 16)): got 0x\(String(portable[Int(h)], radix: 16)), want 0x\(String(expected, radix: 16))") }
            }
        }
        XCTAssertEqual(mismatches, 0)
    }

    /// Float32 inputs where rounding to float16 decides: every float16 value, the midpoints between
    /// neighbours (ties go to even) and one float32 ulp either side of them, the overflow and subnormal
    /// boundaries, infinities and NaNs, and random bit patterns.
    private func narrowingInputs() -> [Float] {
        var inputs: [Float] = []
        for h in UInt16(0)...0x7BFF {
            let low = Float(Float16(bitPattern: h)), high = Float(Float16(bitPattern: h + 1))
            let middle = (low + high) / 2   // exact in float32
            for value in [low, middle, middle.nextDown, middle.nextUp] { inputs += [value, -value] }
        }
        inputs += [65504, 65519.996, 65520, 65520.004, 1e10, .infinity, -.infinity, .nan, -.nan,
                   Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0xFFBF_FFFF), Float(bitPattern: 0x7FC0_2000),
                   .leastNonzeroMagnitude, .leastNormalMagnitude, Float(0x1p-25), Float(0x1p-25).nextUp, Float(0x1p-25).nextDown, Float(0x1p-24) * 1.5]
        var rng = SplitMix64(seed: 99)
        inputs += (0..<100_000).map { _ in Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng)) }
        return inputs
    }

    func testNarrowingRoundsLikeSwift() {
        let inputs = narrowingInputs()
        let (portable, dispatched) = onBothPaths { () -> [UInt16] in
            var out = [UInt16](repeating: 0, count: inputs.count)
            inputs.withUnsafeBufferPointer { i in out.withUnsafeMutableBufferPointer { FormatKernels.narrow(i, into: $0) } }
            return out
        }
        XCTAssertEqual(portable, dispatched, "portable and dispatched narrowing differ")
        var mismatches = 0
        for (value, got) in zip(inputs, portable) {
            let expected: UInt16
            if value.isNaN {
                // Quiet NaN, sign kept, payload truncated to its top 9 bits.
                expected = UInt16(value.bitPattern >> 16 & 0x8000) | 0x7E00 | UInt16(value.bitPattern >> 13 & 0x3FF)
            } else {
                expected = Float16(value).bitPattern
            }
            if got != expected {
                mismatches += 1
                if mismatches < 5 { XCTFail("float 0x\(String(value.bitPattern, radix: 16)): got 0x\(String(got, radix: 16)), want 0x\(String(expected, radix: 16))") }
            }
        }
        XCTAssertEqual(mismatches, 0)
    }

    func testFillEveryLengthAndOffset() {
        for length in 0...70 {
            for offset in 0..<3 {
                let (portable, dispatched) = onBothPaths { () -> [Float] in
                    var buffer = [Float](repeating: -1, count: length + 6)
                    buffer.withUnsafeMutableBufferPointer {
                        FormatKernels.fill(UnsafeMutableBufferPointer(rebasing: $0[offset..<(offset + length)]), with: 0.25)
                    }
                    return buffer
                }
                let expected = (0..<(length + 6)).map { $0 >= offset && $0 < offset + length ? Float(0.25) : -1 }
                XCTAssertEqual(portable, expected, "length \(length), offset \(offset)")
                XCTAssertEqual(dispatched, expected, "length \(length), offset \(offset)")
            }
        }
    }

    /// A shard read through both paths: every dense row and sparse entry has the same bits.
    func testDecodeGivesTheSameRowsOnBothPaths() throws {
        let directory = try TemporaryDirectory("kernels")
        let schema = ShardSchema(classes: 301, k: 13, sorted: false, augmentation: .seed, recordsPerBlock: 7)
        var rng = SplitMix64(seed: 5)
        let records = RecordGenerator.records(schema: schema, count: 40, using: &rng)
        let path = directory.file("kernels.tshard")
        try writeShard(path, schema, records)
        let (portable, dispatched) = try onBothPaths { () -> ([UInt32], [UInt32], [Int32]) in
            let cursor = try ShardReader(path: path).makeCursor()
            var dense = [Float](repeating: .nan, count: records.count * schema.classes)
            var values = [Float](repeating: .nan, count: records.count * schema.k)
            var indices = [Int32](repeating: -1, count: records.count * schema.k)
            try dense.withUnsafeMutableBufferPointer { try cursor.dense(0..<records.count, into: $0) }
            try indices.withUnsafeMutableBufferPointer { i in
                try values.withUnsafeMutableBufferPointer { v in try cursor.sparse(0..<records.count, indices: i, values: v) }
            }
            return (dense.map(\.bitPattern), values.map(\.bitPattern), indices)
        }
        XCTAssertEqual(portable.0, dispatched.0, "dense rows differ between paths")
        XCTAssertEqual(portable.1, dispatched.1, "sparse values differ between paths")
        XCTAssertEqual(portable.2, dispatched.2, "sparse indices differ between paths")
        // And both are the stored records.
        for (row, record) in records.enumerated() {
            XCTAssertEqual(Array(portable.1[(row * schema.k)..<((row + 1) * schema.k)]), record.values.map { Float($0).bitPattern })
            XCTAssertEqual(Array(portable.2[(row * schema.k)..<((row + 1) * schema.k)]), record.indices)
        }
    }
}
