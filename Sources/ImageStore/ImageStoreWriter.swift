import Augment
import ShardFormat

/// Writes an image store (Spec/IMAGESTORE.md) image by image: pixels stream to `<path>.partial`, the
/// index, keys and class names follow at `finish()`, the header is written last, and the file is
/// fsynced and renamed into place. Until `finish()` returns, `path` is untouched; a writer dropped
/// without `finish()` deletes its temporary file.
///
/// Keys must arrive in strictly ascending byte order, so that image i of the store is sample id i of a
/// key table built from the same keys (Spec/FORMAT.md §5).
public final class ImageStoreWriter {
    public let path: String
    public let classNames: [String]
    public let classCount: Int
    private let file: AtomicFileOutput
    private var entries: [StoreLayout.Entry] = []
    private var keyBytes: [UInt8] = []
    private var lastKey: [UInt8]?
    private var finished = false

    /// - Parameters:
    ///   - classNames: names of the classes, label i ↔ name i (may be empty).
    ///   - classCount: number of classes when there are no names (labels must be < it); ignored when
    ///     names are given. 0 means the images carry no labels (every label must be −1).
    public init(path: String, classNames: [String] = [], classCount: Int = 0) throws {
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
        file = try imageStoreIO(path) { try AtomicFileOutput(path: path, bufferBytes: 1 << 20) }
        try imageStoreIO(path) {  // all zero until finish: "incomplete"
            try file.write([UInt8](repeating: 0, count: StoreLayout.headerSize))
        }
    }

    public var count: Int { entries.count }

    /// Appends one image. `label` is a class index below the class count, or −1 for "no label".
    public func append(key: String, label: Int, image: RGBImage) throws {
        try image.pixels.withUnsafeBytes { try append(key: key, label: label, width: image.width, height: image.height, pixels: $0) }
    }

    /// Appends one image from raw HWC RGB bytes (`width · height · 3` of them).
    public func append(key: String, label: Int, width: Int, height: Int, pixels: UnsafeRawBufferPointer) throws {
        let index = entries.count
        func fail(_ message: String) -> ImageStoreError {
            ImageStoreError(.invalidArgument, message, file: path, image: index, key: key)
        }
        guard !finished else { throw fail("the store is already finished") }
        guard index < Int(UInt32.max) else { throw fail("a store holds at most \(UInt32.max) images") }
        guard (1...65535).contains(width), (1...65535).contains(height) else {
            throw fail("image size \(width)x\(height) must be 1...65535 on each side")
        }
        guard pixels.count == width * height * 3 else {
            throw fail("a \(width)x\(height) RGB image has \(width * height * 3) bytes, got \(pixels.count)")
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
        entries.append(StoreLayout.Entry(pixelOffset: UInt64(file.size), width: UInt16(width), height: UInt16(height),
                                         label: Int32(label), keyOffset: UInt32(keyBytes.count),
                                         keyLength: UInt16(keyUTF8.count), pixelCRC: crc32Of(pixels)))
        keyBytes += keyUTF8
        lastKey = keyUTF8
        try imageStoreIO(path) { try file.write(pixels) }
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
            let header = StoreLayout.Header(count: UInt32(entries.count), classCount: UInt32(classCount),
                                            indexOffset: UInt64(indexOffset), keyBytes: UInt32(keyBytes.count),
                                            classNameBytes: UInt32(names.count), metadataCRC: crc32Of(metadata))
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
