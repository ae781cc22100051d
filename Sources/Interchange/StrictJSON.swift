/// The one JSON grammar every JSON the project reads must follow (Spec/FORMAT.md §1.1 "JSON grammar"):
/// RFC 8259 over UTF-8 bytes, and nothing it leaves open:
///
/// - the bytes are UTF-8 (RFC 3629: no overlong forms, no encoded surrogates, nothing above U+10FFFF),
///   with no byte-order mark and no UTF-16/32;
/// - no duplicate member names in an object, compared after unescaping, byte for byte (not by Unicode
///   equivalence, under which two different names can compare equal);
/// - `\u` escapes may not leave a lone surrogate;
/// - nesting depth at most ``maxDepth``;
/// - numbers are kept as their token: an *integer* is a token without fraction or exponent, so `1.0`
///   and `1e3` are numbers but never integers.
///
/// Foundation's JSONSerialization and Python's `json` are both lenient here (duplicates, BOM, UTF-16,
/// lone surrogates, NaN); two readers of one file must give one answer, so both implementations use
/// their own strict parser. The parsed document is a flat tape (16 bytes per value, strings and numbers
/// stay in the source bytes), so memory is bounded by a small multiple of the input size.
public enum StrictJSON {
    /// Deepest nesting of arrays and objects accepted (the root object is depth 1).
    public static let maxDepth = 64

    /// Parses `bytes` as one JSON value, or throws ``JSONSyntaxError`` saying where and why.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws -> JSONDocument {
        guard bytes.count < Int(UInt32.max) else { throw JSONSyntaxError(offset: 0, "document is 4 GiB or more") }
        var parser = JSONParser(Array(bytes))
        return try parser.parseDocument()
    }

    /// Parses `bytes` as one JSON document of the project's grammar; throws ``JSONSyntaxError``.
    public static func parse(_ bytes: [UInt8]) throws -> JSONDocument {
        try bytes.withUnsafeBytes { try parse($0) }
    }
}

/// Why a document is not JSON of the project's grammar, and the byte offset where that was found.
public struct JSONSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Byte offset (0-based) into the document where the problem was found.
    public var offset: Int
    /// What is wrong there.
    public var reason: String

    /// An error at byte `offset` saying `reason`.
    public init(offset: Int, _ reason: String) {
        self.offset = offset
        self.reason = reason
    }

    /// `reason (at byte offset)`.
    public var description: String { "\(reason) (at byte \(offset))" }
}

/// The kinds of JSON value.
public enum JSONKind: UInt8, Sendable {
    /// One per JSON value type; a number's kind does not say integer or not (see ``JSONValue/isIntegerToken``).
    case null, bool, number, string, array, object
}

/// A parsed document: the source bytes and a tape of values in document order. A container's entry
/// records where its last descendant ends, so skipping a value is O(1); an object's children alternate
/// name, value.
public final class JSONDocument: @unchecked Sendable {
    struct Node {
        var kind: JSONKind
        /// bool: its value; number: 1 for an integer token; string: 1 when it holds escapes.
        var flag: UInt8
        /// Scalars: the token's first byte (strings: after the quote). Containers: number of children.
        var start: UInt32
        /// Scalars: the token's length (strings: without quotes). Containers: index of the first node
        /// after the container.
        var end: UInt32
    }

    let text: [UInt8]
    let nodes: [Node]

    init(text: [UInt8], nodes: [Node]) {
        self.text = text
        self.nodes = nodes
    }

    /// The document's top-level value.
    public var root: JSONValue { JSONValue(document: self, index: 0) }
}

/// One value of a ``JSONDocument`` (a cheap view: the document and a position on its tape).
public struct JSONValue: @unchecked Sendable {
    let document: JSONDocument
    let index: Int

    var node: JSONDocument.Node { document.nodes[index] }

    /// The value's kind.
    public var kind: JSONKind { node.kind }
    /// True for `null`.
    public var isNull: Bool { kind == .null }
    /// The boolean; nil for other kinds.
    public var bool: Bool? { kind == .bool ? node.flag == 1 : nil }

    /// The string, unescaped; nil for other kinds.
    public var string: String? {
        guard kind == .string else { return nil }
        return String(decoding: stringBytes, as: UTF8.self)
    }

    /// The unescaped UTF-8 bytes of a string value (empty for other kinds).
    public var stringBytes: [UInt8] {
        guard kind == .string else { return [] }
        let n = node
        let raw = document.text[Int(n.start)..<Int(n.start + n.end)]
        return n.flag == 0 ? Array(raw) : JSONStringScanner.unescape(raw)
    }

    /// True for a number written as an integer token (no fraction, no exponent).
    public var isIntegerToken: Bool { kind == .number && node.flag == 1 }

    /// An integer token's value when it fits an `Int`; nil for fractions, exponents, other kinds and
    /// integers too large for 64 bits (which are outside every range the spec allows anyway).
    public var integer: Int? {
        guard isIntegerToken else { return nil }
        return Int(tokenText)
    }

    /// Any number token as the nearest float64 (±infinity when it overflows); nil for other kinds.
    public var number: Double? {
        guard kind == .number else { return nil }
        return Double(tokenText)
    }

    /// The number's source text (e.g. `1.50e3`).
    public var tokenText: Substring {
        let n = node
        return Substring(decoding: document.text[Int(n.start)..<Int(n.start + n.end)], as: UTF8.self)
    }

    /// Array elements in order; nil for other kinds.
    public var array: [JSONValue]? {
        guard kind == .array else { return nil }
        var out: [JSONValue] = []
        out.reserveCapacity(Int(node.start))
        var i = index + 1
        let end = Int(node.end)
        while i < end {
            out.append(JSONValue(document: document, index: i))
            i = document.nodes[i].kind.isContainer ? Int(document.nodes[i].end) : i + 1
        }
        return out
    }

    /// Object members in document order; nil for other kinds.
    public var members: [(name: String, value: JSONValue)]? {
        guard kind == .object else { return nil }
        var out: [(name: String, value: JSONValue)] = []
        forEachMember { name, value in out.append((name.string ?? "", value)); return true }
        return out
    }

    /// The member named `name` (compared byte for byte after unescaping), or nil. Names are unique
    /// in a parsed document, so there is at most one.
    public func member(_ name: String) -> JSONValue? {
        guard kind == .object else { return nil }
        let wanted = Array(name.utf8)
        var found: JSONValue?
        forEachMember { key, value in
            let n = key.node
            // Names without escapes are compared in place; only escaped ones are unescaped first.
            let equal = n.flag == 0
                ? Int(n.end) == wanted.count && document.text[Int(n.start)..<Int(n.start + n.end)].elementsEqual(wanted)
                : key.stringBytes == wanted
            if equal { found = value; return false }
            return true
        }
        return found
    }

    /// Calls `body(name, value)` per member until it returns false.
    private func forEachMember(_ body: (JSONValue, JSONValue) -> Bool) {
        var i = index + 1
        let end = Int(node.end)
        while i < end {
            let name = JSONValue(document: document, index: i)
            let valueIndex = i + 1
            let value = JSONValue(document: document, index: valueIndex)
            guard body(name, value) else { return }
            let v = document.nodes[valueIndex]
            i = v.kind.isContainer ? Int(v.end) : valueIndex + 1
        }
    }
}

extension JSONKind {
    var isContainer: Bool { self == .array || self == .object }

    /// "a string", "an object", ... for messages.
    public var described: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}
