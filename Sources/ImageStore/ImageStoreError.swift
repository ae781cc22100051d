/// The image store's error codes (Spec/IMAGESTORE.md, section 6); raw values are the codes as written
/// there.
public enum ImageStoreErrorCode: String, Sendable, CaseIterable {
    case io
    case badMagic = "bad-magic"
    case unsupportedVersion = "unsupported-version"
    case incomplete
    case headerCRC = "header-crc"
    case badHeader = "bad-header"
    case sizeMismatch = "size-mismatch"
    case metadataCRC = "metadata-crc"
    case badIndex = "bad-index"
    case badKeys = "bad-keys"
    case badLabel = "bad-label"
    case badClasses = "bad-classes"
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
    public var code: ImageStoreErrorCode
    public var message: String
    public var file: String?
    public var image: Int?
    public var key: String?

    public init(_ code: ImageStoreErrorCode, _ message: String, file: String? = nil, image: Int? = nil, key: String? = nil) {
        self.code = code
        self.message = message
        self.file = file
        self.image = image
        self.key = key
    }

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
