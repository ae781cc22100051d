import TinyShardBase

/// A memory-mapped image store (Spec/IMAGESTORE.md), opened read-only. Opening checks everything but the
/// image data: header CRC, sizes, the metadata CRC, and every index entry, key and label against the rules
/// and the file size — so no later read can land outside the file. Checksums of the stored bytes are
/// checked when an image is read (``PixelCheck/onRead``, the default) or all at once by
/// ``verifyPixels()``.
///
/// A raw store (version 1) hands out its mapped pixels without a copy; a JPEG store (version 2) decodes
/// each image on read with libturbojpeg, after checking the stream's structure and size against its
/// index entry, so a hostile JPEG costs at most what its bytes justify (``ImageLimits``).
///
/// Thread-safe: the map is immutable, so any number of threads can read images at once.
public final class ImageStore: @unchecked Sendable {
    /// When to check an image's pixel CRC-32.
    public enum PixelCheck: Sendable {
        /// On every `image(at:)` / `withPixels(at:)` (one CRC pass over the pixels: ~0.3 ms for a
        /// 500x375 image with this machine's zlib, ~15% of augmenting it).
        case onRead
        /// Never implicitly (call ``verifyPixels()`` once instead).
        case never
    }

    /// The store's path, as opened.
    public let path: String
    /// Raw pixels (version 1) or JPEG (version 2).
    public let kind: StoreKind
    /// N, the number of images; indices run 0..<N.
    public let count: Int
    /// C, the number of classes; labels are −1 (none) or 0..<C.
    public let classCount: Int
    /// Label i's name, or empty when the store has no names.
    public let classNames: [String]
    /// When pixel CRCs are checked.
    public let pixelCheck: PixelCheck
    /// The header's CRC-32 of the metadata (every image's size and pixel CRC, the keys, the class names): a
    /// fingerprint of the store's content that costs nothing to read (a teacher pass records it).
    public let metadataCRC: UInt32
    private let file: MappedFile
    private let indexOffset: Int
    private let keysOffset: Int

    /// Maps the store at `path` and checks its header, index, keys and class names (not the image bytes); throws
    /// ``ImageStoreError`` with the spec's code (`io`, `bad-magic`, `incomplete`, `size-mismatch`, ...).
    public init(path: String, pixelCheck: PixelCheck = .onRead) throws {
        self.path = path
        self.pixelCheck = pixelCheck
        file = try MappedFile.images(path: path)
        let bytes = file.bytes
        let header = try StoreValidation.header(bytes, path: path)
        kind = header.kind
        count = Int(header.count)
        classCount = Int(header.classCount)
        metadataCRC = header.metadataCRC
        indexOffset = Int(header.indexOffset)
        keysOffset = indexOffset + count * StoreLayout.entrySize
        classNames = try StoreValidation.metadata(bytes, header: header, path: path)
    }

    /// The file's size in bytes.
    public var fileBytes: Int { file.bytes.count }

    /// Bytes of image data (pixels or JPEGs): from the header to the index.
    public var dataBytes: Int { indexOffset - StoreLayout.headerSize }

    // MARK: Per-image metadata

    /// The key of image `index`; throws `invalid-argument` outside 0..<``count``.
    public func key(at index: Int) throws -> String {
        try check(index)
        return String(decoding: keyBytes(index), as: UTF8.self)
    }

    /// The class index, or −1 when the image has no label.
    public func label(at index: Int) throws -> Int {
        try check(index)
        return Int(entry(index).le(12, as: Int32.self))
    }

    /// The size in pixels of image `index`, from the index (no decoding); throws `invalid-argument` outside
    /// 0..<``count``.
    public func size(at index: Int) throws -> (width: Int, height: Int) {
        try check(index)
        let e = entry(index)
        return (Int(e.le(8, as: UInt16.self)), Int(e.le(10, as: UInt16.self)))
    }

    /// All keys in order (image i has key i; they are strictly ascending).
    public func keys() -> [String] {
        (0..<count).map { String(decoding: keyBytes($0), as: UTF8.self) }
    }

    /// All labels in order.
    public func labels() -> [Int] {
        (0..<count).map { Int(entry($0).le(12, as: Int32.self)) }
    }

    /// The image whose key is `key` (binary search), or nil.
    public func index(ofKey key: String) -> Int? {
        let target = Array(key.utf8)
        return target.withUnsafeBytes { wanted -> Int? in
            var low = 0, high = count
            while low < high {
                let mid = (low + high) / 2
                let candidate = keyBytes(mid)
                if StoreLayout.precedes(candidate, wanted) {
                    low = mid + 1
                } else if StoreLayout.precedes(wanted, candidate) {
                    high = mid
                } else {
                    return mid
                }
            }
            return nil
        }
    }

    // MARK: Pixels

    /// The image: copied out of the map (raw store) or decoded (JPEG store).
    public func image(at index: Int) throws -> RGBImage {
        try check(index)
        let (data, width, height) = try checkedData(index)
        switch kind {
        case .raw:
            return try RGBImage(width: width, height: height, pixels: [UInt8](data))
        case .jpeg:
            var pixels = [UInt8](repeating: 0, count: width * height * 3)
            try pixels.withUnsafeMutableBytes { try decode(index, data, width, height, into: $0) }
            return try RGBImage(width: width, height: height, pixels: pixels)
        }
    }

    /// Calls `body` with the image's pixel bytes (HWC RGB), width and height: the mapped bytes of a raw
    /// store (no copy), a decoded buffer that lives for the call in a JPEG store.
    public func withPixels<R>(at index: Int, _ body: (UnsafeRawBufferPointer, Int, Int) throws -> R) throws -> R {
        try check(index)
        let (data, width, height) = try checkedData(index)
        switch kind {
        case .raw:
            return try body(data, width, height)
        case .jpeg:
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: width * height * 3, alignment: 16)
            defer { buffer.deallocate() }
            try decode(index, data, width, height, into: buffer)
            return try body(UnsafeRawBufferPointer(buffer), width, height)
        }
    }

    /// Calls `body` with the image's stored bytes exactly as they are in the file (pixels or a JPEG),
    /// width and height — unchecked: the caller checks or does not need the CRC.
    public func withStoredBytes<R>(at index: Int, _ body: (UnsafeRawBufferPointer, Int, Int) throws -> R) throws -> R {
        try check(index)
        let (data, width, height, _) = dataRange(index)
        return try body(data, width, height)
    }

    /// Checks every image's stored bytes against their CRC-32 and, in a JPEG store, decodes every image;
    /// throws naming the first bad image.
    public func verifyPixels() throws {
        var scratch = [UInt8]()
        for index in 0..<count { try verifyImage(index, scratch: &scratch) }
    }

    /// Checks one image as ``verifyPixels()`` does; `scratch` is reused between calls for decoding.
    public func verifyImage(_ index: Int, scratch: inout [UInt8]) throws {
        try check(index)
        let (data, width, height, crc) = dataRange(index)
        if CRC32.checksum(data) != crc { throw crcError(index) }
        guard kind == .jpeg else { return }
        if scratch.count < width * height * 3 { scratch = [UInt8](repeating: 0, count: width * height * 3) }
        try scratch.withUnsafeMutableBytes {
            try decode(index, data, width, height, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<(width * height * 3)]))
        }
    }

    /// Images per label (index = label), plus the count of unlabelled images.
    public func labelHistogram() -> (counts: [Int], unlabelled: Int) {
        var counts = [Int](repeating: 0, count: classCount)
        var unlabelled = 0
        for label in labels() {
            if label < 0 { unlabelled += 1 } else { counts[label] += 1 }
        }
        return (counts, unlabelled)
    }

    // MARK: Raw access (all bounds were checked at open)

    private func check(_ index: Int) throws {
        guard index >= 0, index < count else {
            throw ImageStoreError(.invalidArgument, "image \(index) is out of range (the store has \(count))", file: path)
        }
    }

    private func entry(_ index: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[(indexOffset + index * StoreLayout.entrySize)...].prefix(StoreLayout.entrySize))
    }

    private func keyBytes(_ index: Int) -> UnsafeRawBufferPointer {
        let e = entry(index)
        let start = keysOffset + Int(e.le(16, as: UInt32.self))
        return UnsafeRawBufferPointer(rebasing: file.bytes[start..<(start + Int(e.le(20, as: UInt16.self)))])
    }

    /// The stored bytes, size and CRC of image `index` (offsets and lengths were checked at open).
    private func dataRange(_ index: Int) -> (UnsafeRawBufferPointer, Int, Int, UInt32) {
        let e = entry(index)
        let width = Int(e.le(8, as: UInt16.self)), height = Int(e.le(10, as: UInt16.self))
        let start = Int(e.le(0, as: UInt64.self))
        let length = kind == .raw ? width * height * 3 : Int(e.le(28, as: UInt32.self))
        let data = UnsafeRawBufferPointer(rebasing: file.bytes[start..<(start + length)])
        return (data, width, height, e.le(24, as: UInt32.self))
    }

    /// The stored bytes with their CRC checked when the store checks on read.
    private func checkedData(_ index: Int) throws -> (UnsafeRawBufferPointer, Int, Int) {
        let (data, width, height, crc) = dataRange(index)
        if pixelCheck == .onRead, CRC32.checksum(data) != crc { throw crcError(index) }
        return (data, width, height)
    }

    private func crcError(_ index: Int) -> ImageStoreError {
        ImageStoreError(.pixelCRC, kind == .raw ? "pixel checksum mismatch" : "JPEG checksum mismatch",
                        file: path, image: index, key: try? key(at: index))
    }

    /// Decodes a JPEG store's image into `buffer` (W·H·3 bytes) or throws `bad-jpeg` naming it.
    private func decode(_ index: Int, _ data: UnsafeRawBufferPointer, _ width: Int, _ height: Int,
                        into buffer: UnsafeMutableRawBufferPointer) throws {
        if let problem = JPEGCodec.decodeStored(data, width: width, height: height, into: buffer) {
            throw ImageStoreError(.badJPEG, problem, file: path, image: index, key: try? key(at: index))
        }
    }
}
