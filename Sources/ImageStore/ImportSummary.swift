import TinyShardBase

/// What every importer does to each image before the writer gets it: the optional maximum side, and the
/// store's encoding. `threads` is how many images the ImageFolder importer decodes and encodes at once.
public struct ImportOptions: Sendable {
    /// Images larger than this on their longer side are shrunk to it (aspect kept); nil keeps every size.
    public var maxSide: Int?
    /// What the store holds per image: raw pixels or JPEG.
    public var encoding: StoreEncoding
    /// ImageFolder: stop at the first unreadable file or empty class instead of skipping and listing it.
    public var strict: Bool
    /// Images the ImageFolder importer decodes and encodes at once (at least 1; the store's bytes do not depend on it).
    public var threads: Int

    /// Options; `maxSide` must be at least 1 when given (checked when an import starts).
    public init(maxSide: Int? = nil, encoding: StoreEncoding = .raw, strict: Bool = false, threads: Int = 1) {
        self.maxSide = maxSide
        self.encoding = encoding
        self.strict = strict
        self.threads = threads
    }

    func validate(store: String) throws {
        if let maxSide, maxSide < 1 {
            throw ImageStoreError(.invalidArgument, "max side \(maxSide) must be at least 1", file: store)
        }
        if case let .jpeg(quality, _) = encoding, !(1...100).contains(quality) {
            throw ImageStoreError(.invalidArgument, "JPEG quality \(quality) must be 1...100", file: store)
        }
    }

    /// Resize (when over the maximum side) and encode one decoded image; thread-safe.
    func prepare(_ image: RGBImage) throws -> (image: EncodedImage, resized: Bool) {
        var image = image
        var resized = false
        if let maxSide {
            let before = (image.width, image.height)
            image = try MaxSideResize.apply(image, maxSide: maxSide)
            resized = before != (image.width, image.height)
        }
        return (try encoding.encode(image), resized)
    }
}

/// A file an importer left out, and why (one line, as the error would have said it).
public struct SkippedFile: Sendable, Equatable {
    /// The file's path relative to the import root (its would-be key).
    public var path: String
    /// Why it was left out, one line.
    public var reason: String

    /// A skipped file at `path` (relative to the import root) and why.
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}

/// What an importer wrote: counts for a person and for tests.
public struct ImportSummary: Sendable, Equatable {
    /// N, the images written.
    public var images: Int
    /// The class names written; label i is name i.
    public var classNames: [String]
    /// Images per label (index = label).
    public var labelHistogram: [Int]
    /// Size of the finished store file.
    public var bytes: Int
    /// How the images were stored.
    public var encoding: StoreEncoding = .raw
    /// Images shrunk to the maximum side.
    public var resized = 0
    /// Files left out (ImageFolder without `strict`), in key order.
    public var skipped: [SkippedFile] = []
    /// Class folders without any imported image (their labels are kept, so no label shifts).
    public var emptyClasses: [String] = []
}

extension ImportSummary {
    init(labels: [Int], classNames: [String], classCount: Int, bytes: Int, encoding: StoreEncoding = .raw, resized: Int = 0) {
        var histogram = [Int](repeating: 0, count: classCount)
        for label in labels where label >= 0 { histogram[label] += 1 }
        self.init(images: labels.count, classNames: classNames, labelHistogram: histogram, bytes: bytes,
                  encoding: encoding, resized: resized)
    }
}
