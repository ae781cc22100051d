/// Why a `.npy` file cannot be read; callers wrap it in their own error type with the file name.
public struct NpyFormatError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, without the file name.
    public var message: String
    /// An error saying `message`.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// The header of a `.npy` file (format versions 1.0, 2.0 and 3.0), parsed strictly: exactly the
/// dictionary literal numpy writes (`descr`, `fortran_order`, `shape`; quoted strings without escapes,
/// True/False, a tuple of non-negative integers). The one `.npy` parser of the project: the converters,
/// the image importer and the tensor library all read through it, so one file gets one answer.
///
/// Cost is bounded by the header: its length field is capped at ``maxHeaderLength`` and the shape's
/// element count must fit 62 bits.
public struct NpyHeader: Sendable, Equatable {
    /// The 6 bytes a `.npy` file starts with: `\x93NUMPY`.
    public static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY
    /// numpy itself refuses headers above 10 KiB by default; a generous cap keeps a hostile length cheap.
    public static let maxHeaderLength = 1 << 20

    /// The dtype string as numpy writes it, e.g. `<f4`, `|u1`.
    public var descr: String
    /// The array's dimensions, C order (`fortran_order` False is required); empty for a 0-d array.
    public var shape: [Int]
    /// Where the array data starts in the file.
    public var dataOffset: Int
    /// The format's major version: 1, 2 or 3 (2 and 3 have a 4-byte header length).
    public var majorVersion: Int

    /// Elements in the array: the product of the shape (1 for a 0-d array).
    public var count: Int { shape.reduce(1, *) }

    /// Bytes per element of the little-endian / byte-sized dtypes this project reads, or nil.
    public var itemSize: Int? { Self.itemSizes[descr] }

    /// Bytes the data must hold: `itemSize × count`; nil for a dtype this project does not read.
    public var dataBytes: Int? { itemSize.map { $0 * count } }

    static let itemSizes: [String: Int] = [
        "|u1": 1, "|i1": 1, "<u1": 1, "<i1": 1, "|b1": 1, "<u2": 2, "<i2": 2, "<f2": 2,
        "<u4": 4, "<i4": 4, "<f4": 4, "<u8": 8, "<i8": 8, "<f8": 8,
    ]

    /// A header with these fields, as the parser returns it.
    public init(descr: String, shape: [Int], dataOffset: Int, majorVersion: Int) {
        self.descr = descr
        self.shape = shape
        self.dataOffset = dataOffset
        self.majorVersion = majorVersion
    }

    /// Parses the header from the start of a file held in memory.
    public init(bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        self = try Self.parse { count in
            let n = min(count, bytes.count - offset)
            defer { offset += n }
            return Array(bytes[offset..<(offset + n)])
        }
    }

    /// Parses the header through `read(n)`, which returns the next n bytes (fewer at the end of the file).
    public static func parse(_ read: (Int) throws -> [UInt8]) throws -> NpyHeader {
        func fail(_ message: String) -> NpyFormatError { NpyFormatError(message) }
        let preamble = try read(8)
        guard preamble.count == 8, Array(preamble[0..<6]) == magic else { throw fail("not a .npy file (no \\x93NUMPY magic)") }
        let major = Int(preamble[6])
        let minor = Int(preamble[7])
        guard (1...3).contains(major), minor == 0 else {
            throw fail("format version \(major).\(minor) is not supported (1.0, 2.0 or 3.0)")
        }
        let lengthBytes = try read(major == 1 ? 2 : 4)
        guard lengthBytes.count == (major == 1 ? 2 : 4) else { throw fail("file ends inside the header length") }
        let length = lengthBytes.enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        guard length <= maxHeaderLength else { throw fail("header length \(length) is above \(maxHeaderLength)") }
        let text = try read(length)
        guard text.count == length else { throw fail("file ends inside the header") }
        if major < 3 {
            guard text.allSatisfy({ $0 < 0x80 }) else { throw fail("header of a version \(major) file must be ASCII") }
        } else {
            guard text.withUnsafeBytes({ UTF8Check.isValid($0) }) else { throw fail("header is not UTF-8") }
        }
        var parser = NpyDictParser(text)
        let dict = try parser.parse()
        guard Set(dict.keys) == ["descr", "fortran_order", "shape"] else {
            throw fail("header keys are \(dict.keys.sorted()); expected descr, fortran_order and shape")
        }
        guard case let .string(descr)? = dict["descr"] else { throw fail("descr must be a string") }
        guard case let .bool(fortran)? = dict["fortran_order"] else { throw fail("fortran_order must be True or False") }
        guard !fortran else { throw fail("Fortran-order arrays are not supported; save with np.ascontiguousarray(a)") }
        guard case let .tuple(shape)? = dict["shape"] else { throw fail("shape must be a tuple of integers") }
        var count = 1
        for dimension in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow, product <= 1 << 62 / 8 else { throw fail("shape \(shape) is too large") }
            count = product
        }
        return NpyHeader(descr: descr, shape: shape, dataOffset: 8 + lengthBytes.count + length, majorVersion: major)
    }

    /// The bytes of a header for `descr` and `shape`: version 1.0 when the header fits 65,535 bytes,
    /// else 2.0; padded with spaces and a newline so the data starts at a multiple of 64.
    public static func encode(descr: String, shape: [Int]) -> [UInt8] {
        let dims = shape.map(String.init)
        let tuple = shape.count == 1 ? "(\(dims[0]),)" : "(\(dims.joined(separator: ", ")))"
        let dict = Array("{'descr': '\(descr)', 'fortran_order': False, 'shape': \(tuple), }".utf8)
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
/// tuples of non-negative integers. Works on bytes (ASCII structure), linear in the header.
struct NpyDictParser {
    enum Value: Equatable {
        case string(String)
        case bool(Bool)
        case tuple([Int])
    }

    private let text: [UInt8]
    private var position = 0

    init(_ text: [UInt8]) { self.text = text }

    private func fail(_ message: String) -> NpyFormatError { NpyFormatError("header dict: \(message) at byte \(position)") }

    mutating func parse() throws -> [String: Value] {
        var dict: [String: Value] = [:]
        try expect("{")
        skipSpace()
        while peek != UInt8(ascii: "}") {
            let key = try string()
            try expect(":")
            guard dict[key] == nil else { throw fail("the key '\(key)' is repeated") }
            dict[key] = try value()
            skipSpace()
            if peek == UInt8(ascii: ",") { position += 1; skipSpace() } else if peek != UInt8(ascii: "}") { throw fail("expected ',' or '}'") }
        }
        position += 1
        skipSpace()
        guard position == text.count else { throw fail("text after the dict") }
        return dict
    }

    private var peek: UInt8? { position < text.count ? text[position] : nil }

    private mutating func skipSpace() {
        while let c = peek, c == 0x20 || c == 0x0A || c == 0x09 || c == 0x0D { position += 1 }
    }

    private mutating func expect(_ c: Unicode.Scalar) throws {
        skipSpace()
        guard peek == UInt8(ascii: c) else { throw fail("expected '\(c)'") }
        position += 1
    }

    private mutating func string() throws -> String {
        skipSpace()
        guard let quote = peek, quote == UInt8(ascii: "'") || quote == UInt8(ascii: "\"") else { throw fail("expected a quoted string") }
        position += 1
        let start = position
        while let c = peek, c != quote {
            guard c != UInt8(ascii: "\\") else { throw fail("strings with escapes are not supported") }
            position += 1
        }
        guard peek == quote else { throw fail("unterminated string") }
        defer { position += 1 }
        return String(decoding: text[start..<position], as: UTF8.self)
    }

    private mutating func value() throws -> Value {
        skipSpace()
        switch peek {
        case UInt8(ascii: "'"), UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "T"), UInt8(ascii: "F"): return .bool(try word())
        case UInt8(ascii: "("):
            position += 1
            var items: [Int] = []
            skipSpace()
            while peek != UInt8(ascii: ")") {
                let start = position
                while let c = peek, (0x30...0x39).contains(c) { position += 1 }
                guard position > start, position - start <= 18,
                      let number = Int(String(decoding: text[start..<position], as: UTF8.self)) else {
                    throw fail("shape must hold non-negative integers of at most 18 digits")
                }
                if peek == UInt8(ascii: "L") { position += 1 }  // Python 2 long suffix
                items.append(number)
                skipSpace()
                if peek == UInt8(ascii: ",") { position += 1; skipSpace() } else if peek != UInt8(ascii: ")") { throw fail("shape: expected ',' or ')'") }
            }
            position += 1
            return .tuple(items)
        default:
            throw fail("unexpected value")
        }
    }

    private mutating func word() throws -> Bool {
        for (word, value) in [("True", true), ("False", false)] {
            let bytes = Array(word.utf8)
            if text.count - position >= bytes.count, Array(text[position..<(position + bytes.count)]) == bytes {
                position += bytes.count
                return value
            }
        }
        throw fail("expected True or False")
    }
}
