/// The recursive-descent parser behind ``StrictJSON``: one pass over the bytes, writing the tape.
/// Work is linear in the input (the duplicate-name check sorts 64-bit hashes per object and compares
/// names byte for byte only where hashes collide).
struct JSONParser {
    private let text: [UInt8]
    private var position = 0
    private var nodes: [JSONDocument.Node] = []
    private var depth = 0

    init(_ text: [UInt8]) {
        self.text = text
        // Every value takes at least 2 bytes ("0," or a name and its colon), so this never grows: no
        // doubling copies on a hostile document, and untouched capacity costs no resident memory.
        nodes.reserveCapacity(text.count / 2 + 2)
    }

    mutating func parseDocument() throws -> JSONDocument {
        skipWhitespace()
        try parseValue()
        skipWhitespace()
        guard position == text.count else { throw fail("bytes after the JSON value") }
        return JSONDocument(text: text, nodes: nodes)
    }

    private func fail(_ reason: String, at offset: Int? = nil) -> JSONSyntaxError {
        JSONSyntaxError(offset: offset ?? position, reason)
    }

    private mutating func skipWhitespace() {
        while position < text.count {
            switch text[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    private mutating func parseValue() throws {
        guard position < text.count else { throw fail("the document ends where a value should start") }
        switch text[position] {
        case UInt8(ascii: "{"): try parseObject()
        case UInt8(ascii: "["): try parseArray()
        case UInt8(ascii: "\""): _ = try parseString()
        case UInt8(ascii: "t"): try literal("true", .bool, flag: 1)
        case UInt8(ascii: "f"): try literal("false", .bool, flag: 0)
        case UInt8(ascii: "n"): try literal("null", .null, flag: 0)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try parseNumber()
        case 0xEF where position == 0: throw fail("a byte-order mark is not allowed")
        case 0x00: throw fail("a NUL byte where a value should start (UTF-16 or UTF-32 text?)")
        default: throw fail("unexpected byte 0x\(String(text[position], radix: 16)) where a value should start")
        }
    }

    private mutating func literal(_ word: StaticString, _ kind: JSONKind, flag: UInt8) throws {
        let count = word.utf8CodeUnitCount
        guard text.count - position >= count,
              word.withUTF8Buffer({ $0.elementsEqual(text[position..<(position + count)]) }) else {
            throw fail("not a JSON literal (true, false or null)")
        }
        nodes.append(.init(kind: kind, flag: flag, start: UInt32(position), end: UInt32(count)))
        position += count
    }

    private mutating func parseNumber() throws {
        let start = position
        func digits() -> Int {
            let first = position
            while position < text.count, (0x30...0x39).contains(text[position]) { position += 1 }
            return position - first
        }
        if text[position] == UInt8(ascii: "-") { position += 1 }
        guard position < text.count, (0x30...0x39).contains(text[position]) else { throw fail("a '-' without digits") }
        if text[position] == 0x30 {
            position += 1
            if position < text.count, (0x30...0x39).contains(text[position]) { throw fail("a number with a leading zero") }
        } else {
            _ = digits()
        }
        var integer = true
        if position < text.count, text[position] == UInt8(ascii: ".") {
            position += 1
            guard digits() > 0 else { throw fail("a '.' without digits after it") }
            integer = false
        }
        if position < text.count, text[position] == UInt8(ascii: "e") || text[position] == UInt8(ascii: "E") {
            position += 1
            if position < text.count, text[position] == UInt8(ascii: "+") || text[position] == UInt8(ascii: "-") { position += 1 }
            guard digits() > 0 else { throw fail("an exponent without digits") }
            integer = false
        }
        nodes.append(.init(kind: .number, flag: integer ? 1 : 0, start: UInt32(start), end: UInt32(position - start)))
    }

    /// Appends a string node; returns the hash of its unescaped bytes (for the duplicate-name check).
    private mutating func parseString() throws -> UInt64 {
        position += 1  // the opening quote
        let scan = try JSONStringScanner.scan(text, from: position)
        nodes.append(.init(kind: .string, flag: scan.hasEscapes ? 1 : 0, start: UInt32(position),
                           end: UInt32(scan.end - position)))
        position = scan.end + 1  // past the closing quote
        return scan.hash
    }

    private mutating func enter() throws {
        depth += 1
        guard depth <= StrictJSON.maxDepth else { throw fail("nesting deeper than \(StrictJSON.maxDepth)") }
    }

    private mutating func parseArray() throws {
        try enter()
        let me = nodes.count
        nodes.append(.init(kind: .array, flag: 0, start: 0, end: 0))
        position += 1
        var count: UInt32 = 0
        skipWhitespace()
        if position < text.count, text[position] == UInt8(ascii: "]") {
            position += 1
        } else {
            while true {
                skipWhitespace()
                try parseValue()
                count += 1
                skipWhitespace()
                guard position < text.count else { throw fail("the document ends inside an array") }
                if text[position] == UInt8(ascii: ",") { position += 1; continue }
                guard text[position] == UInt8(ascii: "]") else { throw fail("expected ',' or ']' in an array") }
                position += 1
                break
            }
        }
        nodes[me].start = count
        nodes[me].end = UInt32(nodes.count)
        depth -= 1
    }

    private mutating func parseObject() throws {
        try enter()
        let me = nodes.count
        nodes.append(.init(kind: .object, flag: 0, start: 0, end: 0))
        position += 1
        var names: [(hash: UInt64, node: Int)] = []
        skipWhitespace()
        if position < text.count, text[position] == UInt8(ascii: "}") {
            position += 1
        } else {
            while true {
                skipWhitespace()
                guard position < text.count, text[position] == UInt8(ascii: "\"") else {
                    throw fail("expected a member name (a string) in an object")
                }
                let nameNode = nodes.count
                names.append((try parseString(), nameNode))
                skipWhitespace()
                guard position < text.count, text[position] == UInt8(ascii: ":") else { throw fail("expected ':' after a member name") }
                position += 1
                skipWhitespace()
                try parseValue()
                skipWhitespace()
                guard position < text.count else { throw fail("the document ends inside an object") }
                if text[position] == UInt8(ascii: ",") { position += 1; continue }
                guard text[position] == UInt8(ascii: "}") else { throw fail("expected ',' or '}' in an object") }
                position += 1
                break
            }
        }
        try checkUniqueNames(&names)
        nodes[me].start = UInt32(names.count)
        nodes[me].end = UInt32(nodes.count)
        depth -= 1
    }

    /// Rejects two members with the same unescaped name.
    private func checkUniqueNames(_ names: inout [(hash: UInt64, node: Int)]) throws {
        guard names.count > 1 else { return }
        names.sort { ($0.hash, $0.node) < ($1.hash, $1.node) }
        for i in 1..<names.count where names[i].hash == names[i - 1].hash {
            let a = unescaped(names[i - 1].node), b = unescaped(names[i].node)
            if a == b {
                let second = max(names[i].node, names[i - 1].node)
                throw fail("duplicate member name \"\(String(decoding: a, as: UTF8.self))\"",
                           at: Int(nodes[second].start) - 1)
            }
        }
    }

    private func unescaped(_ node: Int) -> [UInt8] {
        let n = nodes[node]
        let raw = text[Int(n.start)..<Int(n.start + n.end)]
        return n.flag == 0 ? Array(raw) : JSONStringScanner.unescape(raw)
    }
}

/// String tokens: validation (UTF-8, escapes, surrogates, control characters), hashing and unescaping.
enum JSONStringScanner {
    struct Scan {
        /// Index of the closing quote.
        var end: Int
        var hasEscapes: Bool
        /// FNV-1a over the unescaped UTF-8 bytes.
        var hash: UInt64
    }

    private static let fnvOffset: UInt64 = 0xCBF2_9CE4_8422_2325
    private static let fnvPrime: UInt64 = 0x0000_0100_0000_01B3

    /// Scans a string body starting at `start` (just after the opening quote).
    static func scan(_ text: [UInt8], from start: Int) throws -> Scan {
        var i = start
        var hash = fnvOffset
        var escapes = false
        @inline(__always) func mix(_ byte: UInt8) { hash = (hash ^ UInt64(byte)) &* fnvPrime }
        func fail(_ reason: String) -> JSONSyntaxError { JSONSyntaxError(offset: i, reason) }
        while true {
            guard i < text.count else { throw fail("the document ends inside a string") }
            let b = text[i]
            if b == UInt8(ascii: "\"") { return Scan(end: i, hasEscapes: escapes, hash: hash) }
            if b < 0x20 { throw fail("a control character (0x\(String(b, radix: 16))) inside a string must be escaped") }
            if b == UInt8(ascii: "\\") {
                escapes = true
                let (scalar, next) = try escape(text, at: i)
                for byte in utf8(scalar) { mix(byte) }
                i = next
                continue
            }
            if b < 0x80 {
                mix(b)
                i += 1
                continue
            }
            let length = try sequenceLength(text, at: i)
            for k in 0..<length { mix(text[i + k]) }
            i += length
        }
    }

    /// The length of the valid UTF-8 sequence at `i` (``UTF8Check``'s table), or an error.
    static func sequenceLength(_ text: [UInt8], at i: Int) throws -> Int {
        let length = text.withUnsafeBytes { UTF8Check.sequenceLength($0, at: i) }
        guard length > 0 else { throw JSONSyntaxError(offset: i, "invalid UTF-8") }
        return length
    }

    /// Decodes the escape at `i` (a backslash); returns the scalar and the index after the escape.
    private static func escape(_ text: [UInt8], at i: Int) throws -> (UInt32, Int) {
        guard i + 1 < text.count else { throw JSONSyntaxError(offset: i, "the document ends inside an escape") }
        switch text[i + 1] {
        case UInt8(ascii: "\""): return (0x22, i + 2)
        case UInt8(ascii: "\\"): return (0x5C, i + 2)
        case UInt8(ascii: "/"): return (0x2F, i + 2)
        case UInt8(ascii: "b"): return (0x08, i + 2)
        case UInt8(ascii: "f"): return (0x0C, i + 2)
        case UInt8(ascii: "n"): return (0x0A, i + 2)
        case UInt8(ascii: "r"): return (0x0D, i + 2)
        case UInt8(ascii: "t"): return (0x09, i + 2)
        case UInt8(ascii: "u"):
            let first = try hex4(text, at: i + 2)
            switch first {
            case 0xD800...0xDBFF:
                guard i + 7 < text.count, text[i + 6] == UInt8(ascii: "\\"), text[i + 7] == UInt8(ascii: "u") else {
                    throw JSONSyntaxError(offset: i, "a lone surrogate \\u\(String(first, radix: 16))")
                }
                let second = try hex4(text, at: i + 8)
                guard (0xDC00...0xDFFF).contains(second) else {
                    throw JSONSyntaxError(offset: i, "a lone surrogate \\u\(String(first, radix: 16))")
                }
                return (0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00), i + 12)
            case 0xDC00...0xDFFF:
                throw JSONSyntaxError(offset: i, "a lone surrogate \\u\(String(first, radix: 16))")
            default:
                return (first, i + 6)
            }
        default:
            throw JSONSyntaxError(offset: i, "an invalid escape")
        }
    }

    private static func hex4(_ text: [UInt8], at i: Int) throws -> UInt32 {
        guard i + 4 <= text.count else { throw JSONSyntaxError(offset: i, "the document ends inside a \\u escape") }
        var value: UInt32 = 0
        for k in 0..<4 {
            let c = text[i + k]
            let digit: UInt32
            switch c {
            case 0x30...0x39: digit = UInt32(c - 0x30)
            case 0x41...0x46: digit = UInt32(c - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(c - 0x61 + 10)
            default: throw JSONSyntaxError(offset: i + k, "a \\u escape needs four hex digits")
            }
            value = value << 4 | digit
        }
        return value
    }

    static func utf8(_ scalar: UInt32) -> [UInt8] {
        switch scalar {
        case 0..<0x80: return [UInt8(scalar)]
        case 0x80..<0x800: return [UInt8(0xC0 | scalar >> 6), UInt8(0x80 | scalar & 0x3F)]
        case 0x800..<0x10000:
            return [UInt8(0xE0 | scalar >> 12), UInt8(0x80 | (scalar >> 6) & 0x3F), UInt8(0x80 | scalar & 0x3F)]
        default:
            return [UInt8(0xF0 | scalar >> 18), UInt8(0x80 | (scalar >> 12) & 0x3F), UInt8(0x80 | (scalar >> 6) & 0x3F),
                    UInt8(0x80 | scalar & 0x3F)]
        }
    }

    /// The unescaped bytes of an already validated string body.
    static func unescape(_ raw: ArraySlice<UInt8>) -> [UInt8] {
        let text = Array(raw)
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            if text[i] == UInt8(ascii: "\\"), let (scalar, next) = try? escape(text, at: i) {
                out.append(contentsOf: utf8(scalar))
                i = next
            } else {
                out.append(text[i])
                i += 1
            }
        }
        return out
    }
}
