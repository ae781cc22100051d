/// A small JSON value with keys kept in insertion order, written compactly on one line (for `dump`
/// lines and `verify --json`).
enum JSON {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    /// A number already written as JSON text.
    case number(String)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    /// An object without its nil fields.
    static func object(_ fields: [(String, JSON?)]) -> JSON {
        .object(fields.compactMap { key, value in value.map { (key, $0) } })
    }

    /// The shortest decimal that reads back as the same float16 (null when not finite).
    static func float16(_ value: Float16) -> JSON { value.isFinite ? .number("\(value)") : .null }

    var text: String {
        var out = ""
        write(to: &out)
        return out
    }

    func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case let .bool(value): out += value ? "true" : "false"
        case let .int(value): out += String(value)
        case let .double(value): out += value.isFinite ? "\(value)" : "null"
        case let .number(text): out += text
        case let .string(value): JSON.escape(value, into: &out)
        case let .array(items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        case let .object(fields):
            out += "{"
            for (i, (key, value)) in fields.enumerated() {
                if i > 0 { out += "," }
                JSON.escape(key, into: &out)
                out += ":"
                value.write(to: &out)
            }
            out += "}"
        }
    }

    static func escape(_ string: String, into out: inout String) {
        out += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
