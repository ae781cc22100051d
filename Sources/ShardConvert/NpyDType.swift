import Interchange

/// The element types this project's converters read and write in `.npy` files (little-endian, as numpy
/// writes them on every common machine). The header itself is parsed by Interchange's ``NpyHeader``,
/// the project's one `.npy` parser.
public enum NpyDType: String, Sendable, CaseIterable {
    case float32 = "<f4"
    case float64 = "<f8"
    case int32 = "<i4"
    case uint8 = "|u1"

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
