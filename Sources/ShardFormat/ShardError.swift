/// The spec's error codes (Spec/FORMAT.md, section 8). Their raw values are the codes as written there,
/// so the CLI's `--json` output, the test vectors and the Python twin all name problems the same way.
public enum ShardErrorCode: String, Sendable, CaseIterable, Codable {
    /// The file cannot be opened or read.
    case io
    /// Not a TinyShard file (or not a key table).
    case badMagic = "bad-magic"
    /// A major version other than 1.
    case unsupportedVersion = "unsupported-version"
    /// Header length out of range, JSON outside the spec's grammar, or a missing or invalid key.
    case badHeader = "bad-header"
    /// Header checksum mismatch.
    case headerCRC = "header-crc"
    /// No valid footer: the writer did not finish, or the file was truncated.
    case incomplete
    /// Footer checksum mismatch.
    case footerCRC = "footer-crc"
    /// Index checksum, magic or layout rule broken.
    case badIndex = "bad-index"
    /// Block magic, counts or ordinals wrong.
    case blockStructure = "block-structure"
    /// Block header or payload checksum mismatch.
    case blockCRC = "block-crc"
    /// Section codec, lengths or inflation wrong.
    case badSection = "bad-section"
    /// A class index ≥ C.
    case indexOutOfRange = "index-out-of-range"
    /// A class index twice in one record.
    case duplicateIndex = "duplicate-index"
    /// An order number ≥ K!.
    case badOrder = "bad-order"
    /// A value NaN or infinite, a probability outside [0, 1], or a sum above the bound.
    case badValue = "bad-value"
    /// Values increase in a `sorted` shard.
    case notSorted = "not-sorted"
    /// A `params` augmentation code breaks a rule of the spec's section 4.
    case badAugmentation = "bad-augmentation"
    /// A sample id twice in one shard.
    case duplicateSample = "duplicate-sample"
    /// Key table damaged, or keys not strictly ascending.
    case badKeys = "bad-keys"
    /// Manifest outside its grammar or rules, or manifest and files disagree (size, CRC, counts, header fields, a
    /// sample id ≥ M).
    case manifestMismatch = "manifest-mismatch"
    /// Dense labels asked of a `logit` shard.
    case notProbability = "not-probability"
    /// Not a file problem: the caller asked for something the data cannot give (a record past the end,
    /// a record that breaks the schema when writing, a buffer of the wrong size).
    case invalidArgument = "invalid-argument"
}

/// Where in a dataset a problem sits. Every field is optional because a problem can be found before the
/// reader knows the block or record it belongs to.
public struct ShardLocation: Sendable, Equatable, CustomStringConvertible {
    /// The file's path, when known.
    public var file: String?
    /// The block index (0-based) inside the shard.
    public var block: Int?
    /// The record's ordinal inside the shard.
    public var record: Int?
    /// The record's sample id.
    public var sampleID: UInt32?
    /// The sample's key, when a key table was at hand.
    public var sampleKey: String?

    /// A location with the parts that are known; the others stay nil.
    public init(file: String? = nil, block: Int? = nil, record: Int? = nil,
                sampleID: UInt32? = nil, sampleKey: String? = nil) {
        self.file = file
        self.block = block
        self.record = record
        self.sampleID = sampleID
        self.sampleKey = sampleKey
    }

    /// The known parts joined by ", " (`path, block 3, record 3100, sample 17`); empty when nothing is known.
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
    /// What went wrong, as the spec names it.
    public var code: ShardErrorCode
    /// Where it went wrong, as far as the thrower knew.
    public var location: ShardLocation
    /// One sentence for a person.
    public var message: String

    /// An error of `code` with `message` at `location`.
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

    /// One line: `location: [code] message`, or `[code] message` without a location.
    public var description: String {
        let place = location.description
        return place.isEmpty ? "[\(code.rawValue)] \(message)" : "\(place): [\(code.rawValue)] \(message)"
    }
}
