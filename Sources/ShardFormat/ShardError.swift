/// The spec's error codes (Spec/FORMAT.md, section 8). Their raw values are the codes as written there,
/// so the CLI's `--json` output, the test vectors and the Python twin all name problems the same way.
public enum ShardErrorCode: String, Sendable, CaseIterable, Codable {
    case io
    case badMagic = "bad-magic"
    case unsupportedVersion = "unsupported-version"
    case badHeader = "bad-header"
    case headerCRC = "header-crc"
    case incomplete
    case footerCRC = "footer-crc"
    case badIndex = "bad-index"
    case blockStructure = "block-structure"
    case blockCRC = "block-crc"
    case badSection = "bad-section"
    case indexOutOfRange = "index-out-of-range"
    case duplicateIndex = "duplicate-index"
    case badOrder = "bad-order"
    case badValue = "bad-value"
    case notSorted = "not-sorted"
    case badAugmentation = "bad-augmentation"
    case duplicateSample = "duplicate-sample"
    case badKeys = "bad-keys"
    case manifestMismatch = "manifest-mismatch"
    case notProbability = "not-probability"
    /// Not a file problem: the caller asked for something the data cannot give (a record past the end,
    /// a record that breaks the schema when writing, a buffer of the wrong size).
    case invalidArgument = "invalid-argument"
}

/// Where in a dataset a problem sits. Every field is optional because a problem can be found before the
/// reader knows the block or record it belongs to.
public struct ShardLocation: Sendable, Equatable, CustomStringConvertible {
    public var file: String?
    public var block: Int?
    public var record: Int?
    public var sampleID: UInt32?
    public var sampleKey: String?

    public init(file: String? = nil, block: Int? = nil, record: Int? = nil,
                sampleID: UInt32? = nil, sampleKey: String? = nil) {
        self.file = file
        self.block = block
        self.record = record
        self.sampleID = sampleID
        self.sampleKey = sampleKey
    }

    public var description: String {
        var parts: [String] = []
        if let file { parts.append(file) }
        if let block { parts.append("block \(block)") }
        if let record { parts.append("record \(record)") }
        if let sampleKey { parts.append("key \(sampleKey)") } else if let sampleID { parts.append("sample \(sampleID)") }
        return parts.joined(separator: ", ")
    }
}

/// Every error the format library throws: a spec code, where it happened and a sentence for a person.
public struct ShardError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: ShardErrorCode
    public var location: ShardLocation
    public var message: String

    public init(_ code: ShardErrorCode, _ message: String, at location: ShardLocation = ShardLocation()) {
        self.code = code
        self.message = message
        self.location = location
    }

    /// The same error with missing location fields filled in from `outer`.
    func located(_ outer: ShardLocation) -> ShardError {
        var copy = self
        copy.location.file = copy.location.file ?? outer.file
        copy.location.block = copy.location.block ?? outer.block
        copy.location.record = copy.location.record ?? outer.record
        copy.location.sampleID = copy.location.sampleID ?? outer.sampleID
        copy.location.sampleKey = copy.location.sampleKey ?? outer.sampleKey
        return copy
    }

    public var description: String {
        let place = location.description
        return place.isEmpty ? "[\(code.rawValue)] \(message)" : "\(place): [\(code.rawValue)] \(message)"
    }
}
