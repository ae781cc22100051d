/// The image store's error codes (Spec/IMAGESTORE.md, section 6); raw values are the codes as written
/// there.
public enum ImageStoreErrorCode: String, Sendable, CaseIterable {
    /// The file cannot be opened, mapped or read (or is not a regular file).
    case io
    /// Not an image store.
    case badMagic = "bad-magic"
    /// A major version other than 1 and 2, or (major 2) an encoding other than 1.
    case unsupportedVersion = "unsupported-version"
    /// The header was never written: a writer did not finish, or the file is shorter than a header.
    case incomplete
    /// Header checksum mismatch.
    case headerCRC = "header-crc"
    /// Class count out of range, nonzero flags or reserved bytes.
    case badHeader = "bad-header"
    /// Index offset outside the file, or the file's size differs from what the header implies (truncated or padded).
    case sizeMismatch = "size-mismatch"
    /// Checksum of the index, keys and class names mismatch.
    case metadataCRC = "metadata-crc"
    /// An index entry breaks a layout rule (packing, sizes, channels, reserved bytes, key offsets).
    case badIndex = "bad-index"
    /// A key breaks the key rule or the strictly ascending order.
    case badKeys = "bad-keys"
    /// A label that is neither −1 nor below C.
    case badLabel = "bad-label"
    /// Class names damaged (count, terminator, rule, duplicates).
    case badClasses = "bad-classes"
    /// An image's stored bytes (pixels or JPEG) do not match their checksum.
    case pixelCRC = "pixel-crc"
    /// A JPEG store's image breaks a rule of Spec/IMAGESTORE.md 3.2 (structure, size, decoding).
    case badJPEG = "bad-jpeg"
    /// An importer's input (CSV, PNG, JPEG, .npy, folder) is unreadable or breaks its format.
    case badInput = "bad-input"
    /// A caller's mistake rather than a file problem: an image index past the end, keys out of order
    /// when writing, an image of the wrong size.
    case invalidArgument = "invalid-argument"
}

/// Every error of the image store and its importers: a code, the file, the image (index and key) when
/// known, and a sentence for a person. Printed as `file: image 17 (key digits_00017): [pixel-crc] …`.
public struct ImageStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, as Spec/IMAGESTORE.md section 6 names it.
    public var code: ImageStoreErrorCode
    /// One sentence for a person.
    public var message: String
    /// The file concerned, when known.
    public var file: String?
    /// The image's index in the store (or in an importer's input), when known.
    public var image: Int?
    /// The image's key, when known.
    public var key: String?

    /// An error of `code` with whatever location parts are known.
    public init(_ code: ImageStoreErrorCode, _ message: String, file: String? = nil, image: Int? = nil, key: String? = nil) {
        self.code = code
        self.message = message
        self.file = file
        self.image = image
        self.key = key
    }

    /// One line: `file: image 17 (key K): [code] message`, with the unknown parts left out.
    public var description: String {
        var location: [String] = []
        if let file { location.append(file) }
        if let image {
            location.append(key.map { "image \(image) (key \($0))" } ?? "image \(image)")
        } else if let key {
            location.append("key \(key)")
        }
        let prefix = location.isEmpty ? "" : location.joined(separator: ": ") + ": "
        return "\(prefix)[\(code.rawValue)] \(message)"
    }
}
