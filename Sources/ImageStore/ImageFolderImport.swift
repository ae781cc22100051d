import Foundation
import TinyShardBase

/// torchvision's ImageFolder layout: `root/<class>/…/<file>`. Classes are the sub-folders of `root`
/// sorted by name (label = position); images are the `.png`, `.jpg` and `.jpeg` files (any case) anywhere
/// below a class folder. Hidden files and folders (leading `.`) are skipped, as are other file types.
///
/// Keys are the paths relative to `root` with `/` separators (`cat/0001.jpg`); the store holds the images
/// in key byte order (which can differ from torchvision's class-by-class order when a class name is a
/// prefix of another, e.g. `a` and `a-b`; labels are unaffected).
public enum ImageFolderImport {
    /// The file extensions imported, compared in lower case.
    public static let extensions: Set<String> = ["png", "jpg", "jpeg"]

    /// What a folder holds: its classes and image files, before anything is decoded.
    public struct Listing: Sendable, Equatable {
        /// The class folders' names, sorted; label i is name i.
        public var classNames: [String]
        /// (key, label) in key byte order.
        public var files: [(key: String, label: Int)]

        /// Equal when the class names and every (key, label) pair are.
        public static func == (a: Listing, b: Listing) -> Bool {
            a.classNames == b.classNames && a.files.elementsEqual(b.files, by: { $0.key == $1.key && $0.label == $1.label })
        }
    }

    /// Lists classes and image files without decoding anything.
    public static func scan(root: String) throws -> Listing {
        let fm = FileManager.default
        var isFolder: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isFolder), isFolder.boolValue else {
            throw ImageStoreError(.io, "not a folder", file: root)
        }
        let entries: [String]
        do { entries = try fm.contentsOfDirectory(atPath: root) } catch {
            throw ImageStoreError(.io, "cannot list: \(error.localizedDescription)", file: root)
        }
        let classNames = entries.filter { name in
            var folder: ObjCBool = false
            return !name.hasPrefix(".") && fm.fileExists(atPath: root + "/" + name, isDirectory: &folder) && folder.boolValue
        }.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        guard !classNames.isEmpty else { throw ImageStoreError(.badInput, "no class folders inside", file: root) }
        var files: [(key: String, label: Int)] = []
        for (label, name) in classNames.enumerated() {
            for relative in try imageFiles(under: root + "/" + name) {
                files.append((key: name + "/" + relative, label: label))
            }
        }
        guard !files.isEmpty else { throw ImageStoreError(.badInput, "no .png/.jpg/.jpeg files in the class folders", file: root) }
        files.sort { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
        return Listing(classNames: classNames, files: files)
    }

    /// Decodes every image with libpng / libturbojpeg (on `options.threads` threads, a chunk at a time),
    /// resizes and encodes it as `options` say, and writes the store in key order. A file that cannot be
    /// imported (unreadable, not a PNG/JPEG, over ``ImageLimits``, a path that is not a valid key) is
    /// skipped and listed in the summary with its reason — or, with `options.strict`, ends the import
    /// with that error; so does a class left without images. `progress` gets (files done, total).
    @discardableResult
    public static func importStore(from root: String, to storePath: String, options: ImportOptions = ImportOptions(),
                                   progress: ((Int, Int) -> Void)? = nil) throws -> ImportSummary {
        try options.validate(store: storePath)
        let listing = try scan(root: root)
        let writer = try ImageStoreWriter(path: storePath, classNames: listing.classNames, encoding: options.encoding)
        var summary = ImportSummary(labels: [], classNames: listing.classNames, classCount: listing.classNames.count,
                                    bytes: 0, encoding: options.encoding)
        var labels: [Int] = []
        let threads = max(1, options.threads)
        let chunk = 4 * threads  // bounds memory: at most this many decoded or encoded images at once
        var done = 0
        for chunkStart in stride(from: 0, to: listing.files.count, by: chunk) {
            let files = Array(listing.files[chunkStart..<min(chunkStart + chunk, listing.files.count)])
            let results = prepareConcurrently(files.map { root + "/" + $0.key }, keys: files.map(\.key),
                                              options: options, threads: threads)
            for (file, result) in zip(files, results) {
                done += 1
                switch result {
                case let .success(prepared):
                    try writer.append(key: file.key, label: file.label, encoded: prepared.image)
                    labels.append(file.label)
                    if prepared.resized { summary.resized += 1 }
                case let .failure(error):
                    if options.strict { throw error }
                    summary.skipped.append(SkippedFile(path: file.key, reason: "[\(error.code.rawValue)] \(error.message)"))
                }
                progress?(done, listing.files.count)
            }
        }
        var histogram = [Int](repeating: 0, count: listing.classNames.count)
        for label in labels { histogram[label] += 1 }
        summary.emptyClasses = zip(listing.classNames, histogram).filter { $0.1 == 0 }.map(\.0)
        if options.strict, let empty = summary.emptyClasses.first {
            throw ImageStoreError(.badInput, "class folder \"\(empty)\" holds no .png/.jpg/.jpeg image", file: root + "/" + empty)
        }
        guard !labels.isEmpty else {
            let first = summary.skipped.first.map { ": first \($0.path): \($0.reason)" } ?? ""
            throw ImageStoreError(.badInput, "none of the \(listing.files.count) image files could be imported\(first)", file: root)
        }
        summary.images = labels.count
        summary.labelHistogram = histogram
        summary.bytes = try writer.finish()
        return summary
    }

    /// Decodes, resizes and encodes `paths` on up to `threads` threads; results in input order.
    private static func prepareConcurrently(_ paths: [String], keys: [String], options: ImportOptions, threads: Int)
        -> [Result<(image: EncodedImage, resized: Bool), ImageStoreError>] {
        let results = ResultSlots<(image: EncodedImage, resized: Bool)>(count: paths.count)
        // @Sendable for concurrentPerform: it captures only Sendable values (the lock-guarded slots, the
        // paths, keys and options); each call writes only its own index.
        let work: @Sendable (Int) -> Void = { i in
            results.set(i, Result {
                if let problem = Array(keys[i].utf8).withUnsafeBytes({ StoreLayout.keyProblem($0) }) {
                    throw ImageStoreError(.badInput, "the path is not a valid key: \(problem)", file: paths[i])
                }
                return try options.prepare(try ImageDecoding.decode(file: paths[i]))
            }.mapError { error in
                error as? ImageStoreError ?? ImageStoreError(.badInput, "\(error)", file: paths[i])
            })
        }
        if threads == 1 || paths.count == 1 {
            for i in paths.indices { work(i) }
        } else {
            // Strided so each thread takes every threads-th file (neighbours in key order are often alike in size).
            DispatchQueue.concurrentPerform(iterations: min(threads, paths.count)) { worker in
                for i in stride(from: worker, to: paths.count, by: threads) { work(i) }
            }
        }
        return results.values
    }

    /// Image files below `folder`, as paths relative to it.
    private static func imageFiles(under folder: String) throws -> [String] {
        let fm = FileManager.default
        guard let walker = fm.enumerator(at: URL(fileURLWithPath: folder), includingPropertiesForKeys: [.isRegularFileKey],
                                         options: [.skipsHiddenFiles]) else {
            throw ImageStoreError(.io, "cannot list", file: folder)
        }
        let prefix = URL(fileURLWithPath: folder).standardizedFileURL.path + "/"
        var found: [String] = []
        for case let url as URL in walker {
            guard extensions.contains(url.pathExtension.lowercased()),
                  (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
            let path = url.standardizedFileURL.path
            guard path.hasPrefix(prefix) else { continue }
            found.append(String(path.dropFirst(prefix.count)))
        }
        return found
    }
}

/// One result slot per input, filled from several threads (each slot by exactly one).
private final class ResultSlots<T>: @unchecked Sendable {
    private var slots: [Result<T, ImageStoreError>?]
    private let lock = NSLock()

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ value: Result<T, ImageStoreError>) {
        lock.lock()
        slots[index] = value
        lock.unlock()
    }

    var values: [Result<T, ImageStoreError>] {
        slots.map { $0 ?? .failure(ImageStoreError(.io, "not processed")) }
    }
}
