import Foundation
import Augment

/// torchvision's ImageFolder layout: `root/<class>/…/<file>`. Classes are the sub-folders of `root`
/// sorted by name (label = position); images are the `.png`, `.jpg` and `.jpeg` files (any case) anywhere
/// below a class folder. Hidden files and folders (leading `.`) are skipped, as are other file types.
///
/// Keys are the paths relative to `root` with `/` separators (`cat/0001.jpg`); the store holds the images
/// in key byte order (which can differ from torchvision's class-by-class order when a class name is a
/// prefix of another, e.g. `a` and `a-b`; labels are unaffected).
public enum ImageFolderImport {
    public static let extensions: Set<String> = ["png", "jpg", "jpeg"]

    public struct Listing: Sendable, Equatable {
        public var classNames: [String]
        /// (key, label) in key byte order.
        public var files: [(key: String, label: Int)]

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

    /// Decodes every image with libpng / libturbojpeg and writes the store. `progress` gets (done, total).
    @discardableResult
    public static func importStore(from root: String, to storePath: String,
                                   progress: ((Int, Int) -> Void)? = nil) throws -> ImportSummary {
        let listing = try scan(root: root)
        let writer = try ImageStoreWriter(path: storePath, classNames: listing.classNames)
        for (done, file) in listing.files.enumerated() {
            let image = try ImageDecoding.decode(file: root + "/" + file.key)
            try writer.append(key: file.key, label: file.label, image: image)
            progress?(done + 1, listing.files.count)
        }
        let bytes = try writer.finish()
        return ImportSummary(labels: listing.files.map(\.label), classNames: listing.classNames,
                             classCount: listing.classNames.count, bytes: bytes)
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
