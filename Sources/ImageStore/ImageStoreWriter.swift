import TinyShardBase

/// Writes an image store (Spec/IMAGESTORE.md) image by image: image data streams to `<path>.partial`, the
/// index, keys and class names follow at `finish()`, the header is written last, and the file is
/// fsynced and renamed into place. Until `finish()` returns, `path` is untouched; a writer dropped
/// without `finish()` deletes its temporary file.
///
/// Keys must arrive in strictly ascending byte order, so that image i of the store is sample id i of a
/// key table built from the same keys (Spec/FORMAT.md §5).
///
/// With ``StoreEncoding/raw`` it writes a version-1.0 store of pixels; with ``StoreEncoding/jpeg(quality:subsampling:)``
/// a version-2.0 store of one JPEG per image, each stream checked against the spec's structural rules and
/// bounds before it is appended, so the writer never makes a store its readers reject.
public final class ImageStoreWriter {
    /// The final path; the bytes go to `path + ".partial"` until the store is finished.
    public let path: String
    /// The class names written (empty for a store without names).
    public let classNames: [String]
    /// C: labels appended must be −1 or below it.
    public let classCount: Int
    /// How each appended image is stored (raw pixels, or JPEG at a quality).
    public let encoding: StoreEncoding
    private let file: AtomicFileOutput
    private var entries: [StoreLayout.Entry] = []
    private var keyBytes: [UInt8] = []
    private var lastKey: [UInt8]?
    private var finished = false

    /// Creates the store's temporary file `path + ".partial"`; the store appears at `path` when finished.
    /// - Parameters:
    ///   - path: where the finished store goes.
    ///   - classNames: names of the classes, label i ↔ name i (may be empty).
    ///   - classCount: number of classes when there are no names (labels must be < it); ignored when
    ///     names are given. 0 means the images carry no labels (every label must be −1).
    ///   - encoding: raw pixels (version 1.0) or JPEG (version 2.0).
    public init(path: String, classNames: [String] = [], classCount: Int = 0, encoding: StoreEncoding = .raw) throws {
        for name in classNames {
            if let problem = StoreLayout.classNameProblem(name) {
                throw ImageStoreError(.invalidArgument, "class name \"\(name)\": \(problem)", file: path)
            }
        }
        guard Set(classNames).count == classNames.count else {
            throw ImageStoreError(.invalidArgument, "class names must be unique", file: path)
        }
        let count = classNames.isEmpty ? classCount : classNames.count
        guard (0...Int(Int32.max)).contains(count) else {
            throw ImageStoreError(.invalidArgument, "class count \(count) is out of range", file: path)
        }
        self.path = path
        self.classNames = classNames
        self.classCount = count
        self.encoding = encoding
        if case let .jpeg(quality, _) = encoding, !(1...100).contains(quality) {
            throw ImageStoreError(.invalidArgument, "JPEG quality \(quality) must be 1...100", file: path)
        }
        file = try imageStoreIO(path) { try AtomicFileOutput(path: path, bufferBytes: 1 << 20) }
        try imageStoreIO(path) {  // all zero until finish: "incomplete"
            try file.write([UInt8](repeating: 0, count: StoreLayout.headerSize))
        }
    }

    /// Images appended so far.
    public var count: Int { entries.count }

    /// Appends one image (encoded as the store's encoding says). `label` is a class index below the class
    /// count, or −1 for "no label".
    public func append(key: String, label: Int, image: RGBImage) throws {
        try append(key: key, label: label, encoded: try encode(image, key: key))
    }

    /// Appends one image from raw HWC RGB bytes (`width · height · 3` of them).
    public func append(key: String, label: Int, width: Int, height: Int, pixels: UnsafeRawBufferPointer) throws {
        if encoding == .raw {
            try append(key: key, label: label, kind: .raw, width: width, height: height, data: pixels)
            return
        }
        let image: RGBImage
        do { image = try RGBImage(width: width, height: height, pixels: [UInt8](pixels)) } catch {
            throw ImageStoreError(.invalidArgument, "\(error)", file: path, image: count, key: key)
        }
        try append(key: key, label: label, image: image)
    }

    /// Appends an image already in the store's form (from ``StoreEncoding/encode(_:)``, e.g. encoded on
    /// other threads). A JPEG is checked against Spec/IMAGESTORE.md 3.2 rules 1-3 and the size bounds.
    public func append(key: String, label: Int, encoded: EncodedImage) throws {
        try encoded.bytes.withUnsafeBytes {
            try append(key: key, label: label, kind: encoded.kind, width: encoded.width, height: encoded.height, data: $0)
        }
    }

    private func encode(_ image: RGBImage, key: String) throws -> EncodedImage {
        do { return try encoding.encode(image) } catch var error as ImageStoreError {
            (error.file, error.image, error.key) = (path, count, key)
            throw error
        }
    }

    private func append(key: String, label: Int, kind: StoreKind, width: Int, height: Int, data: UnsafeRawBufferPointer) throws {
        let index = entries.count
        func fail(_ message: String) -> ImageStoreError {
            ImageStoreError(.invalidArgument, message, file: path, image: index, key: key)
        }
        guard !finished else { throw fail("the store is already finished") }
        guard kind == encoding.kind else { throw fail("a \(kind.rawValue) image cannot go into a \(encoding.kind.rawValue) store") }
        guard index < Int(UInt32.max) else { throw fail("a store holds at most \(UInt32.max) images") }
        guard (1...65535).contains(width), (1...65535).contains(height) else {
            throw fail("image size \(width)x\(height) must be 1...65535 on each side")
        }
        switch kind {
        case .raw:
            guard data.count == width * height * 3 else {
                throw fail("a \(width)x\(height) RGB image has \(width * height * 3) bytes, got \(data.count)")
            }
        case .jpeg:
            guard width * height <= ImageLimits.maxPixels else {
                throw fail("image size \(width)x\(height) is over the limit of \(ImageLimits.maxPixels) pixels")
            }
            guard data.count <= Int(UInt32.max), width * height <= ImageLimits.maxPixelsPerStoredByte * data.count else {
                throw fail("a \(width)x\(height) image cannot be a \(data.count)-byte JPEG")
            }
            if let problem = JPEGFrame.problem(data, width: width, height: height) { throw fail(problem) }
        }
        guard label == -1 || (0..<classCount).contains(label) else {
            throw fail(classCount == 0 ? "label \(label): this store has no classes, so every label must be -1"
                                       : "label \(label) is not -1 or in 0..<\(classCount)")
        }
        let keyUTF8 = Array(key.utf8)
        try keyUTF8.withUnsafeBytes { bytes in
            if let problem = StoreLayout.keyProblem(bytes) { throw fail(problem) }
            if let lastKey, !lastKey.withUnsafeBytes({ StoreLayout.precedes($0, bytes) }) {
                throw fail("keys must be strictly ascending in byte order; \"\(key)\" follows \"\(String(decoding: lastKey, as: UTF8.self))\"")
            }
        }
        guard keyBytes.count + keyUTF8.count <= Int(UInt32.max) else { throw fail("the keys exceed 4 GiB") }
        entries.append(StoreLayout.Entry(dataOffset: UInt64(file.size), width: UInt16(width), height: UInt16(height),
                                         label: Int32(label), keyOffset: UInt32(keyBytes.count),
                                         keyLength: UInt16(keyUTF8.count), dataCRC: CRC32.checksum(data),
                                         storedLength: kind == .raw ? 0 : UInt32(data.count)))
        keyBytes += keyUTF8
        lastKey = keyUTF8
        try imageStoreIO(path) { try file.write(data) }
    }

    /// Writes the index, keys, class names and header; fsyncs and renames into place. Returns the
    /// finished file's size in bytes.
    @discardableResult
    public func finish() throws -> Int {
        guard !finished else { throw ImageStoreError(.invalidArgument, "the store is already finished", file: path) }
        finished = true
        do {
            let indexOffset = file.size
            var metadata: [UInt8] = []
            metadata.reserveCapacity(entries.count * StoreLayout.entrySize + keyBytes.count)
            for entry in entries { metadata += entry.encoded() }
            metadata += keyBytes
            let names: [UInt8] = classNames.flatMap { Array($0.utf8) + [0x0A] }
            metadata += names
            guard names.count <= Int(UInt32.max) else {
                throw ImageStoreError(.invalidArgument, "the class names exceed 4 GiB", file: path)
            }
            try imageStoreIO(path) { try file.write(metadata) }
            let header = StoreLayout.Header(kind: encoding.kind, count: UInt32(entries.count), classCount: UInt32(classCount),
                                            indexOffset: UInt64(indexOffset), keyBytes: UInt32(keyBytes.count),
                                            classNameBytes: UInt32(names.count), metadataCRC: CRC32.checksum(metadata))
            try imageStoreIO(path) { try file.write(header.encoded(), at: 0) }
            let size = file.size
            try imageStoreIO(path) { try file.commit() }
            return size
        } catch {
            file.discard()
            throw error
        }
    }

    /// Abandons the store: the temporary file is deleted and `path` is left as it was.
    public func discard() {
        finished = true
        file.discard()
    }

    deinit {
        if !finished { file.discard() }
    }
}
