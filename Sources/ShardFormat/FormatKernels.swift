import CFormatKernels

/// The format's numeric hot loops, run in C (`CFormatKernels`): bulk float16 ⇄ float32 conversion of the
/// values column (Spec/FORMAT.md section 2) and the fill of dense soft-label rows (section 7).
///
/// Swift's `Float(Float16)` is one instruction only when the compiler may assume F16C; in a library
/// built for the baseline CPU (as a versioned SwiftPM dependency must be) it is a library call per
/// value. The C versions run 8 values per instruction on CPUs with F16C/AVX2 (chosen at run time by
/// `CKernelDispatch`) and are bit-exact everywhere: widening is exact, narrowing rounds to nearest even
/// like `Float16(_: Float)`.
enum FormatKernels {
    /// `output[i] = Float(Float16(bitPattern: bits[i]))`; the counts must match.
    static func widen(_ bits: UnsafeBufferPointer<UInt16>, into output: UnsafeMutableBufferPointer<Float>) {
        precondition(bits.count == output.count, "widen: \(bits.count) values into \(output.count)")
        guard let source = bits.baseAddress, let target = output.baseAddress else { return }
        tinyshard_f16_to_f32(source, target, bits.count)
    }

    /// `bits[i] = Float16(values[i]).bitPattern`; the counts must match.
    static func narrow(_ values: UnsafeBufferPointer<Float>, into bits: UnsafeMutableBufferPointer<UInt16>) {
        precondition(values.count == bits.count, "narrow: \(values.count) values into \(bits.count)")
        guard let source = values.baseAddress, let target = bits.baseAddress else { return }
        tinyshard_f32_to_f16(source, target, values.count)
    }

    /// `output[i] = value` for every element (the dense-row fill; wider stores than the baseline's).
    static func fill(_ output: UnsafeMutableBufferPointer<Float>, with value: Float) {
        guard let target = output.baseAddress else { return }
        tinyshard_fill_f32(target, output.count, value)
    }
}
