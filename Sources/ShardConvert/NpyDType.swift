import Interchange

/// The element types this project's converters read and write in `.npy` files (little-endian, as numpy
/// writes them on every common machine). The header itself is parsed by Interchange's `NpyHeader`,
/// the project's one `.npy` parser.
public enum NpyDType: String, Sendable, CaseIterable {
    /// Little-endian float32.
    case float32 = "<f4"
    /// Little-endian float64.
    case float64 = "<f8"
    /// Little-endian int32.
    case int32 = "<i4"
    /// Unsigned bytes.
    case uint8 = "|u1"

    /// Bytes per element: 4, 8, 4 or 1.
    public var size: Int {
        switch self {
        case .float64: return 8
        case .float32, .int32: return 4
        case .uint8: return 1
        }
    }
}

extension NpyHeader {
    /// The header's dtype when it is one the converters read.
    public var dtype: NpyDType? { NpyDType(rawValue: descr) }

    public static func encode(dtype: NpyDType, shape: [Int]) -> [UInt8] { encode(descr: dtype.rawValue, shape: shape) }
}
