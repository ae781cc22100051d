/// Typed access to an object's members for schema checks: each accessor either returns a value of the
/// exact JSON type and range asked for or throws the caller's error naming the member. One place for
/// "integer means an integer token", so every format that reads JSON applies the same rule.
public struct JSONFields {
    /// The object (or other value) whose members are read.
    public let value: JSONValue
    /// Dotted path for messages ("augmentation", "shards[3]").
    public let path: String
    private let fail: (String) -> Error

    /// `value` must be an object.
    public init(_ value: JSONValue, path: String = "", fail: @escaping (String) -> Error) throws {
        self.value = value
        self.path = path
        self.fail = fail
        guard value.kind == .object else { throw fail("\(path.isEmpty ? "the JSON" : "'\(path)'") must be an object, got \(value.kind.described)") }
    }

    private func name(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    /// An error of the caller's type saying `message`, for checks of its own (a value out of a set, two members that
    /// disagree).
    public func error(_ message: String) -> Error { fail(message) }

    /// The member, or an error saying it is missing.
    public func required(_ key: String) throws -> JSONValue {
        guard let member = value.member(key) else { throw fail("'\(name(key))' is missing") }
        return member
    }

    /// The member `key`, or nil when absent (a present `null` is returned as a value of kind `.null`).
    public func optional(_ key: String) -> JSONValue? { value.member(key) }

    /// An integer token in `range`.
    public func integer(_ key: String, in range: ClosedRange<Int>) throws -> Int {
        try Self.integer(try required(key), in: range, name: name(key), fail: fail)
    }

    /// `member` as an integer token in `range`; throws `fail(...)` naming `name` for a fraction, an exponent, another
    /// kind or a value outside the range.
    public static func integer(_ member: JSONValue, in range: ClosedRange<Int>, name: String, fail: (String) -> Error) throws -> Int {
        guard member.isIntegerToken else {
            throw fail("'\(name)' must be an integer (no fraction or exponent), got \(member.kind == .number ? String(member.tokenText) : member.kind.described)")
        }
        guard let int = member.integer, range.contains(int) else {
            throw fail("'\(name)' must be in \(range.lowerBound)...\(range.upperBound), got \(member.tokenText)")
        }
        return int
    }

    /// Any number token, as float64.
    public func number(_ key: String) throws -> Double {
        let member = try required(key)
        guard let number = member.number else { throw fail("'\(name(key))' must be a number, got \(member.kind.described)") }
        return number
    }

    /// The string member `key`; throws when missing or not a string.
    public func string(_ key: String) throws -> String {
        let member = try required(key)
        guard let string = member.string else { throw fail("'\(name(key))' must be a string, got \(member.kind.described)") }
        return string
    }

    /// The boolean member `key`; throws when missing or not `true`/`false`.
    public func bool(_ key: String) throws -> Bool {
        let member = try required(key)
        guard let bool = member.bool else { throw fail("'\(name(key))' must be true or false, got \(member.kind.described)") }
        return bool
    }

    /// The object member `key`, as fields whose messages name it (`path.key`); throws when missing or not an object.
    public func object(_ key: String) throws -> JSONFields {
        try JSONFields(try required(key), path: name(key), fail: fail)
    }

    /// The array member `key`; throws when missing or not an array.
    public func array(_ key: String) throws -> [JSONValue] {
        let member = try required(key)
        guard let array = member.array else { throw fail("'\(name(key))' must be an array, got \(member.kind.described)") }
        return array
    }

    /// An object whose every member is a string (provenance, metadata).
    public func stringMap(_ key: String) throws -> [String: String] {
        let member = try required(key)
        guard let members = member.members else { throw fail("'\(name(key))' must be an object, got \(member.kind.described)") }
        var out: [String: String] = [:]
        for (memberName, memberValue) in members {
            guard let string = memberValue.string else {
                throw fail("'\(name(key)).\(memberName)' must be a string, got \(memberValue.kind.described)")
            }
            out[memberName] = string
        }
        return out
    }
}
