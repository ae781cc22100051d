import TinyShardBase

/// IDX files, the format of MNIST, Fashion-MNIST, KMNIST and EMNIST (Y. LeCun's): gzip'ed or plain, an
/// `idx3-ubyte` file of images and an optional `idx1-ubyte` file of labels.
///
/// An IDX file is a 4-byte magic — two zero bytes, an element-type code (0x08 = unsigned byte), the
/// number of dimensions — then each dimension as a big-endian UInt32, then the elements in C order.
/// Images are `[N, rows, columns]` unsigned bytes (grey; copied to R, G and B), labels `[N]` unsigned
/// bytes. Everything a header claims is checked against the bytes present: the magic, the type, the
/// number and size of the dimensions, the label count against the image count, and that the data holds
/// exactly what the header says — a file that ends early or goes on after the last element is an error
/// naming the file and the image, never a short or silently padded store. Memory and work grow with the
/// bytes read, not with the header's claims (the data is streamed, one image at a time).
///
/// Keys are `<prefix>_<i>`, i zero-padded to max(5, digits of N−1) places, so that byte order is file
/// order and store image i is IDX image i. C is the number of class names given, else max label + 1
/// over the whole label file. `skip` and `limit` import only images skip ..< skip + limit (keys keep the
/// file's numbering, so stores cut from one file never share a key); the rest of both files is still read
/// and checked, so a partial import accepts exactly the files a full one accepts.
public enum IdxImport {
    /// The element types IDX defines, for messages (only unsigned bytes are imported).
    static let typeNames: [UInt8: String] = [0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32",
                                              0x0D: "float32", 0x0E: "float64"]

    /// An IDX file's magic and dimensions.
    public struct Header: Sendable, Equatable {
        /// The element-type code of the magic (0x08: unsigned byte, the only one imported).
        public var elementType: UInt8
        /// The dimensions, each from a big-endian UInt32 (`[N, rows, columns]` for images, `[N]` for labels).
        public var dimensions: [Int]
    }

    /// Imports images skip ..< skip + limit of the IDX `images` file (gzip'ed or plain), with labels from `labels` when
    /// given, into a new store at `storePath`; `progress` gets (done, total). Throws ``ImageStoreError`` (`bad-input`
    /// naming the file and image for anything the headers or data get wrong).
    @discardableResult
    public static func importStore(images imagesPath: String, labels labelsPath: String? = nil, to storePath: String,
                                   keyPrefix: String = "idx", classNames: [String] = [], skip: Int = 0, limit: Int? = nil,
                                   options: ImportOptions = ImportOptions(),
                                   progress: ((Int, Int) -> Void)? = nil) throws -> ImportSummary {
        try options.validate(store: storePath)
        if let limit, limit < 1 {
            throw ImageStoreError(.invalidArgument, "the image limit \(limit) must be at least 1", file: storePath)
        }
        guard skip >= 0 else { throw ImageStoreError(.invalidArgument, "the images to skip (\(skip)) must be at least 0", file: storePath) }
        let images = try GzipReader(imagesPath)
        let header = try readHeader(images, expecting: 3, what: "images [N, rows, columns]")
        let (n, height, width) = (header.dimensions[0], header.dimensions[1], header.dimensions[2])
        func fail(_ message: String, image: Int? = nil) -> ImageStoreError {
            ImageStoreError(.badInput, message, file: imagesPath, image: image)
        }
        guard n >= 1 else { throw fail("the header says 0 images") }
        try ImageLimits.checkInputSize(width, height, what: "image", name: imagesPath)
        let labels = try labelsPath.map { try readLabels($0, count: n) }
        let classCount = classNames.isEmpty ? (labels?.max().map { $0 + 1 } ?? 0) : classNames.count
        if let labels, let bad = labels.firstIndex(where: { $0 >= classCount }) {
            throw ImageStoreError(.badInput, "label \(labels[bad]) of image \(bad) is not below the \(classCount) class names",
                                  file: labelsPath, image: bad)
        }
        guard skip < n else { throw ImageStoreError(.invalidArgument, "skipping \(skip) images leaves none of the \(n)", file: imagesPath) }
        let end = skip + min(limit ?? n, n - skip)
        let writer = try ImageStoreWriter(path: storePath, classNames: classNames, classCount: classCount, encoding: options.encoding)
        let digits = max(5, String(n - 1).count)
        let plane = width * height
        let claim = "the header says \(n) images of \(height)x\(width)"
        var rgb: [UInt8] = []  // allocated once the first image's bytes are there, not on the header's word
        var resized = 0
        var importedLabels: [Int] = []
        let skipped = try images.skip(skip * plane)  // ≤ 2^32 · 2^26: no overflow
        guard skipped == skip * plane else {
            throw fail("the data ends inside image \(skipped / plane) (\(claim))", image: skipped / plane)
        }
        for i in skip..<end {
            let label = labels?[i] ?? -1
            let grey = try images.read(upTo: plane)
            guard grey.count == plane else { throw fail("the data ends inside image \(i) (\(claim))", image: i) }
            if rgb.isEmpty { rgb = [UInt8](repeating: 0, count: plane * 3) }
            for p in 0..<plane {
                rgb[p * 3] = grey[p]
                rgb[p * 3 + 1] = grey[p]
                rgb[p * 3 + 2] = grey[p]
            }
            let key = "\(keyPrefix)_\(zeroPadded(i, width: digits))"
            if options.maxSide == nil && options.encoding == .raw {
                try rgb.withUnsafeBytes { try writer.append(key: key, label: label, width: width, height: height, pixels: $0) }
            } else {
                let prepared = try options.prepare(try RGBImage(width: width, height: height, pixels: rgb))
                try writer.append(key: key, label: label, encoded: prepared.image)
                if prepared.resized { resized += 1 }
            }
            importedLabels.append(label)
            progress?(i + 1 - skip, end - skip)
        }
        // The images not imported are still read: a partial import checks the same bytes a full one does.
        let rest = (n - end) * plane
        let read = try images.skip(rest)
        guard read == rest else { throw fail("the data ends inside image \(end + read / plane) (\(claim))", image: end + read / plane) }
        guard try images.isAtEnd() else { throw fail("the data goes on after the last image (\(claim))") }
        let bytes = try writer.finish()
        return ImportSummary(labels: importedLabels, classNames: classNames, classCount: classCount, bytes: bytes,
                             encoding: options.encoding, resized: resized)
    }

    /// Reads an IDX file's header: magic (0, 0, 0x08, `expecting`), then the dimensions.
    static func readHeader(_ file: GzipReader, expecting rank: Int, what: String) throws -> Header {
        func fail(_ message: String) -> ImageStoreError { ImageStoreError(.badInput, message, file: file.path) }
        let magic = try file.read(upTo: 4)
        guard magic.count == 4 else { throw fail("not an IDX file: \(magic.count) bytes, shorter than the 4-byte magic") }
        guard magic[0] == 0, magic[1] == 0, typeNames[magic[2]] != nil else {
            let hex = magic.map { String($0, radix: 16).leftPadded(2) }.joined(separator: " ")
            throw fail("not an IDX file: magic \(hex), expected 00 00 08 0\(rank)")
        }
        guard magic[2] == 0x08 else {
            throw fail("elements are \(typeNames[magic[2]] ?? "?") (type 0x\(String(magic[2], radix: 16))); only unsigned bytes (0x08) are imported")
        }
        guard Int(magic[3]) == rank else {
            throw fail("\(magic[3]) dimensions; \(what) need \(rank) (magic 00 00 08 0\(rank))")
        }
        let sizes = try file.read(upTo: 4 * rank)
        guard sizes.count == 4 * rank else { throw fail("the header ends inside its \(rank) dimensions") }
        let dimensions = (0..<rank).map { d in
            (0..<4).reduce(0) { $0 << 8 | Int(sizes[4 * d + $1]) }
        }
        return Header(elementType: magic[2], dimensions: dimensions)
    }

    /// The labels file: `[count]` unsigned bytes, exactly `count` of them.
    static func readLabels(_ path: String, count: Int) throws -> [Int] {
        let file = try GzipReader(path)
        let header = try readHeader(file, expecting: 1, what: "labels [N]")
        func fail(_ message: String) -> ImageStoreError { ImageStoreError(.badInput, message, file: path) }
        guard header.dimensions[0] == count else {
            throw fail("the header says \(header.dimensions[0]) labels, the images file holds \(count) images")
        }
        let bytes = try file.read(upTo: count)
        guard bytes.count == count else { throw fail("the data ends after \(bytes.count) of the header's \(count) labels") }
        guard try file.isAtEnd() else { throw fail("the data goes on after the header's \(count) labels") }
        return bytes.map(Int.init)
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
