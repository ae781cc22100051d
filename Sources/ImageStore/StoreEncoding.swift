import TinyShardBase

/// How a store keeps each image's data (Spec/IMAGESTORE.md section 3): raw pixels (version 1.0) or one
/// JPEG per image (version 2.0).
public enum StoreKind: String, Sendable, CaseIterable {
    /// Version 1: each image's W·H·3 bytes as they are.
    case raw
    /// Version 2: each image a baseline JPEG.
    case jpeg
}

/// Chroma subsampling of the JPEGs a writer makes: 4:2:0 halves the colour resolution both ways (the
/// libjpeg, PIL and FFCV default; smaller), 4:4:4 keeps it (larger, no colour bleeding).
public enum ChromaSubsampling: String, Sendable, CaseIterable {
    /// 4:2:0: chroma at half resolution both ways.
    case s420 = "420"
    /// 4:4:4: chroma at full resolution.
    case s444 = "444"

    /// `4:2:0` or `4:4:4`.
    public var description: String { self == .s420 ? "4:2:0" : "4:4:4" }
}

/// What a writer stores per image: the pixels as they are, or a JPEG at a stated quality.
public enum StoreEncoding: Sendable, Equatable, CustomStringConvertible {
    /// Pixels as they are (W·H·3 bytes per image).
    case raw
    /// Quality 1...100 (libjpeg's scale).
    case jpeg(quality: Int, subsampling: ChromaSubsampling)

    /// The CLI's JPEG default: quality 90 at 4:2:0, FFCV's setting.
    public static let defaultJPEG = StoreEncoding.jpeg(quality: 90, subsampling: .s420)

    /// The store version this encoding writes: raw (1) or JPEG (2).
    public var kind: StoreKind {
        if case .raw = self { return .raw }
        return .jpeg
    }

    /// `raw`, or the JPEG's quality and subsampling.
    public var description: String {
        switch self {
        case .raw: return "raw"
        case let .jpeg(quality, subsampling): return "jpeg q\(quality) \(subsampling.description)"
        }
    }

    /// The image as this encoding stores it. Thread-safe: importers encode on several threads and
    /// append the results in order.
    public func encode(_ image: RGBImage) throws -> EncodedImage {
        switch self {
        case .raw:
            return EncodedImage(kind: .raw, width: image.width, height: image.height, bytes: image.pixels)
        case let .jpeg(quality, subsampling):
            let bytes = try JPEGCodec.encode(image, quality: quality, subsampling: subsampling)
            return EncodedImage(kind: .jpeg, width: image.width, height: image.height, bytes: bytes)
        }
    }
}

/// One image in a store's form: its size and the bytes a writer appends (W·H·3 pixels, or a JPEG).
public struct EncodedImage: Sendable, Equatable {
    /// Raw pixels or JPEG.
    public let kind: StoreKind
    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// W·H·3 pixel bytes (raw) or the JPEG stream.
    public let bytes: [UInt8]

    /// An encoded image as given; the writer checks it against the store's rules when it is appended.
    public init(kind: StoreKind, width: Int, height: Int, bytes: [UInt8]) {
        self.kind = kind
        self.width = width
        self.height = height
        self.bytes = bytes
    }
}

/// The limits that bound what any image costs, whatever a file claims (Spec/IMAGESTORE.md 3.2 and 7).
public enum ImageLimits {
    /// At most 2^26 pixels (8192×8192; 192 MiB decoded) per image in a JPEG store and per imported file.
    public static let maxPixels = 1 << 26
    /// A side is a 16-bit field of the index.
    public static let maxSide = 65535
    /// A JPEG store's image has at most 256 pixels per stored byte: every 8×8 block of a sequential
    /// Huffman-coded JPEG takes at least 2 bits.
    public static let maxPixelsPerStoredByte = 256

    /// An input image's claimed size against the limits, before anything is allocated for it.
    static func checkInputSize(_ width: Int, _ height: Int, what: String, name: String) throws {
        guard (1...ImageLimits.maxSide).contains(width), (1...ImageLimits.maxSide).contains(height) else {
            throw ImageStoreError(.badInput, "\(what) size \(width)x\(height) is outside 1...\(ImageLimits.maxSide)", file: name)
        }
        guard width * height <= ImageLimits.maxPixels else {
            throw ImageStoreError(.badInput, "\(what) size \(width)x\(height) is over the limit of \(ImageLimits.maxPixels) pixels", file: name)
        }
    }
}
