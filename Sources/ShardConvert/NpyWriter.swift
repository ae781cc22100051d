import Interchange

/// Writes `.npy` files (format 1.0, C order) of the ``NpyDType``s this project reads.
public enum NpyWriter {
    /// Writes `values` as `<f4` with `shape`; throws ``ConversionError`` when the shape's product is not
    /// `values.count`, and removes the file when a write fails.
    public static func write(_ values: [Float], shape: [Int], to path: String) throws {
        try write(values, dtype: .float32, shape: shape, to: path)
    }

    /// Writes `values` as `<f8` with `shape`; the same checks as the float32 variant.
    public static func write(_ values: [Double], shape: [Int], to path: String) throws {
        try write(values, dtype: .float64, shape: shape, to: path)
    }

    /// Writes `values` as `<i4` with `shape`; the same checks as the float32 variant.
    public static func write(_ values: [Int32], shape: [Int], to path: String) throws {
        try write(values, dtype: .int32, shape: shape, to: path)
    }

    /// Writes `values` as `|u1` with `shape`; the same checks as the float32 variant.
    public static func write(_ values: [UInt8], shape: [Int], to path: String) throws {
        try write(values, dtype: .uint8, shape: shape, to: path)
    }

    private static func write<T: BitwiseCopyable>(_ values: [T], dtype: NpyDType, shape: [Int], to path: String) throws {
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == values.count else {
            throw ConversionError.argument("shape \(shape) does not hold \(values.count) values")
        }
        let file = try OutputFile(path: path)
        do {
            try file.write(NpyHeader.encode(dtype: dtype, shape: shape))
            // Little-endian hosts only (x86-64, arm64): the in-memory bytes are the file's bytes.
            try values.withUnsafeBytes { try file.write($0) }
            try file.close()
        } catch {
            file.remove()
            throw error
        }
    }
}
