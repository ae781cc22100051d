import ShardFormat

/// An error of a converter: what is wrong with its input (a source file, an option) or its output.
///
/// Like `ShardError` it names the file and, when known, the line or record, so that the CLI can print
/// it as one line: `FILE, record 17, key 314: [code] message`.
public struct ConversionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A short code: `io`, `bad-layout` (official folder layout), `bad-npy`, `bad-keys`,
    /// `invalid-argument`, or a spec code (`ShardErrorCode`) for a record that breaks a format rule.
    public var code: String
    /// The file the problem is in, when it is in one.
    public var file: String?
    /// 1-based line of a text file.
    public var line: Int?
    /// 0-based record (or row) of a binary file.
    public var record: Int?
    /// The key of the record concerned, when known.
    public var key: String?
    /// One sentence for a person.
    public var message: String

    /// An error of `code` with whatever location parts are known.
    public init(_ code: String, _ message: String, file: String? = nil, line: Int? = nil, record: Int? = nil,
                key: String? = nil) {
        self.code = code
        self.message = message
        self.file = file
        self.line = line
        self.record = record
        self.key = key
    }

    /// A record-level format error (from ``ShardWriter``) placed at its source record instead.
    init(_ error: ShardError, file: String, record: Int, key: String?) {
        self.init(error.code.rawValue, error.message, file: file, record: record, key: key)
    }

    static func io(_ message: String, file: String) -> ConversionError { ConversionError("io", message, file: file) }
    static func layout(_ message: String, file: String, line: Int? = nil, record: Int? = nil) -> ConversionError {
        ConversionError("bad-layout", message, file: file, line: line, record: record)
    }
    static func npy(_ message: String, file: String) -> ConversionError { ConversionError("bad-npy", message, file: file) }
    package static func argument(_ message: String) -> ConversionError { ConversionError("invalid-argument", message) }

    /// One line: the known location parts, then `[code] message`.
    public var description: String {
        var place: [String] = []
        if let file { place.append(file) }
        if let line { place.append("line \(line)") }
        if let record { place.append("record \(record)") }
        if let key { place.append("key \(key)") }
        let prefix = place.isEmpty ? "" : place.joined(separator: ", ") + ": "
        return "\(prefix)[\(code)] \(message)"
    }
}
