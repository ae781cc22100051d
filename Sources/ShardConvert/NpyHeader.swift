/// The element types this project reads and writes in `.npy` files (little-endian, as numpy writes them
/// on every common machine).
public enum NpyDType: String, Sendable, CaseIterable {
    case float32 = "<f4"
    case int32 = "<i4"
    case uint8 = "|u1"

    public var size: Int {
        switch self {
        case .float32, .int32: return 4
        case .uint8: return 1
        }
    }
}

/// The header of a `.npy` file (format versions 1.0, 2.0 and 3.0), read strictly: C-order arrays of
/// ``NpyDType`` only. Anything else is an error that says what was found and what is supported.
public struct NpyHeader: Sendable, Equatable {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY

    public var dtype: NpyDType
    public var shape: [Int]
    /// Where the array data starts in the file.
    public var dataOffset: Int
    public var majorVersion: Int

    /// Elements in the array: the product of the shape (1 for a 0-d array).
    public var count: Int { shape.reduce(1, *) }
    public var dataBytes: Int { count * dtype.size }

    /// Parses the header from the first bytes of a file (at least the preamble: 10 or 12 bytes, then
    /// the header length it gives). `path` only names the file in errors.
    static func parse(_ read: (Int) throws -> [UInt8], path: String) throws -> NpyHeader {
        func fail(_ message: String) -> ConversionError { .npy(message, file: path) }
        let preamble = try read(8)
        guard preamble.count == 8, Array(preamble[0..<6]) == magic else { throw fail("not a .npy file (no \\x93NUMPY magic)") }
        let major = Int(preamble[6])
        let minor = Int(preamble[7])
        guard (1...3).contains(major), minor == 0 else {
            throw fail("format version \(major).\(minor) is not supported (1.0, 2.0 or 3.0)")
        }
        let lengthBytes = try read(major == 1 ? 2 : 4)
        let length = lengthBytes.enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        guard length <= 1 << 24 else { throw fail("header length \(length) is implausibly large") }
        let text = try read(length)
        guard text.count == length else { throw fail("file ends inside the header") }
        let header: String
        if major == 3 {
            guard let decoded = String(validating: text, as: UTF8.self) else { throw fail("header is not UTF-8") }
            header = decoded
        } else {
            guard text.allSatisfy({ $0 < 0x80 }) else { throw fail("header of a version \(major) file must be ASCII") }
            header = String(decoding: text, as: UTF8.self)
        }
        var parser = NpyDictParser(text: header, fail: fail)
        let dict = try parser.parse()
        guard Set(dict.keys) == ["descr", "fortran_order", "shape"] else {
            throw fail("header keys are \(dict.keys.sorted()); expected descr, fortran_order and shape")
        }
        guard case let .string(descr)? = dict["descr"] else { throw fail("descr must be a string") }
        guard let dtype = NpyDType(rawValue: descr) else {
            let hint = descr.hasPrefix(">") ? " (big-endian; save it as little-endian)" : ""
            throw fail("dtype '\(descr)'\(hint) is not supported; need '<f4' (float32), '<i4' (int32) or '|u1' (uint8)")
        }
        guard case let .bool(fortran)? = dict["fortran_order"] else { throw fail("fortran_order must be True or False") }
        guard !fortran else {
            throw fail("Fortran-order arrays are not supported; save with np.ascontiguousarray(a)")
        }
        guard case let .tuple(shape)? = dict["shape"] else { throw fail("shape must be a tuple of integers") }
        var count = 1
        for dimension in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: max(dimension, 1))
            guard !overflow, product <= Int.max / 8 else { throw fail("shape \(shape) is too large") }
            count = product
        }
        return NpyHeader(dtype: dtype, shape: shape, dataOffset: 8 + lengthBytes.count + length, majorVersion: major)
    }

    /// The bytes of a header for `dtype` and `shape`: version 1.0 when the header fits 65,535 bytes,
    /// else 2.0; padded with spaces and a newline so the data starts at a multiple of 64.
    public static func encode(dtype: NpyDType, shape: [Int]) -> [UInt8] {
        let dims = shape.map(String.init)
        let tuple = shape.count == 1 ? "(\(dims[0]),)" : "(\(dims.joined(separator: ", ")))"
        let dict = Array("{'descr': '\(dtype.rawValue)', 'fortran_order': False, 'shape': \(tuple), }".utf8)
        var major: UInt8 = 1
        var prefix = 10
        var total = (prefix + dict.count + 1 + 63) / 64 * 64
        if total - prefix > 65_535 {
            major = 2
            prefix = 12
            total = (prefix + dict.count + 1 + 63) / 64 * 64
        }
        let length = total - prefix
        var bytes = magic + [major, 0]
        for b in 0..<(major == 1 ? 2 : 4) { bytes.append(UInt8(truncatingIfNeeded: length >> (8 * b))) }
        bytes += dict
        bytes += [UInt8](repeating: 0x20, count: length - dict.count - 1)
        bytes.append(0x0A)
        return bytes
    }
}

/// The Python literal subset a `.npy` header uses: a dict of string keys to strings, True/False and
/// tuples of non-negative integers.
struct NpyDictParser {
    enum Value: Equatable {
        case string(String)
        case bool(Bool)
        case tuple([Int])
    }

    private let characters: [Character]
    private var position = 0
    private let fail: (String) -> ConversionError

    init(text: String, fail: @escaping (String) -> ConversionError) {
        characters = Array(text)
        self.fail = fail
    }

    mutating func parse() throws -> [String: Value] {
        var dict: [String: Value] = [:]
        try expect("{")
        skipSpace()
        while peek != "}" {
            let key = try string()
            try expect(":")
            guard dict[key] == nil else { throw fail("header repeats the key '\(key)'") }
            dict[key] = try value()
            skipSpace()
            if peek == "," { position += 1; skipSpace() } else if peek != "}" { throw fail("header dict: expected ',' or '}'") }
        }
        position += 1
        skipSpace()
        guard position == characters.count else { throw fail("header has text after the dict") }
        return dict
    }

    private var peek: Character? { position < characters.count ? characters[position] : nil }

    private mutating func skipSpace() {
        while let c = peek, c == " " || c == "\n" || c == "\t" || c == "\r" { position += 1 }
    }

    private mutating func expect(_ c: Character) throws {
        skipSpace()
        guard peek == c else { throw fail("header dict: expected '\(c)' at character \(position)") }
        position += 1
    }

    private mutating func string() throws -> String {
        skipSpace()
        guard let quote = peek, quote == "'" || quote == "\"" else { throw fail("header dict: expected a quoted string at character \(position)") }
        position += 1
        var result = ""
        while let c = peek, c != quote {
            guard c != "\\" else { throw fail("header strings with escapes are not supported") }
            result.append(c)
            position += 1
        }
        guard peek == quote else { throw fail("header dict: unterminated string") }
        position += 1
        return result
    }

    private mutating func value() throws -> Value {
        skipSpace()
        switch peek {
        case "'", "\"": return .string(try string())
        case "T", "F": return .bool(try word() == "True")
        case "(":
            position += 1
            var items: [Int] = []
            skipSpace()
            while peek != ")" {
                let start = position
                while let c = peek, c.isASCII, c.isNumber { position += 1 }
                guard position > start, let number = Int(String(characters[start..<position])) else {
                    throw fail("shape must hold non-negative integers")
                }
                if peek == "L" { position += 1 }  // Python 2 long suffix
                items.append(number)
                skipSpace()
                if peek == "," { position += 1; skipSpace() } else if peek != ")" { throw fail("shape: expected ',' or ')'") }
            }
            position += 1
            return .tuple(items)
        default:
            throw fail("header dict: unexpected value at character \(position)")
        }
    }

    private mutating func word() throws -> String {
        let start = position
        while let c = peek, c.isLetter { position += 1 }
        let text = String(characters[start..<position])
        guard text == "True" || text == "False" else { throw fail("header dict: '\(text)' is not True or False") }
        return text
    }
}
