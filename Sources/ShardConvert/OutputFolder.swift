import Foundation
import ShardFormat

/// The folder a converter writes into. It must be absent, empty, or (for a dataset) hold nothing but an
/// earlier TinyShard dataset, which is then replaced: a converter never deletes files it did not make.
/// Package-visible: DemoData writes its demo dataset through it too.
package struct OutputFolder {
    let path: String
    /// True when this run created the folder (so a failed run removes it again).
    private let created: Bool

    /// Files a dataset folder may hold: the manifest, the key table, shards, and their partial forms.
    static func isDatasetFile(_ name: String) -> Bool {
        let base = name.hasSuffix(".partial") ? String(name.dropLast(".partial".count)) : name
        return base == DatasetManifest.fileName || base == DatasetManifest.keysFileName || base.hasSuffix(".tshard")
    }

    /// Prepares a folder for a new dataset. An earlier dataset in it (only the files a dataset holds, with
    /// a manifest, a key table or a partial file that a killed run left) is removed first; anything else
    /// is an error.
    package static func forDataset(_ path: String) throws -> OutputFolder {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        let earlierDataset = names.contains(DatasetManifest.fileName) || names.contains(DatasetManifest.keysFileName)
            || names.contains { $0.hasSuffix(".partial") }
        return try prepare(path, replaceable: { earlierDataset && isDatasetFile($0) }, what: "a TinyShard dataset")
    }

    /// Prepares an absent or empty folder.
    static func empty(_ path: String) throws -> OutputFolder {
        try prepare(path, replaceable: { _ in false }, what: "empty")
    }

    private static func prepare(_ path: String, replaceable: (String) -> Bool, what: String) throws -> OutputFolder {
        let manager = FileManager.default
        var isFolder: ObjCBool = false
        guard manager.fileExists(atPath: path, isDirectory: &isFolder) else {
            do {
                try manager.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                throw ConversionError.io("cannot create the output folder: \(error.localizedDescription)", file: path)
            }
            return OutputFolder(path: path, created: true)
        }
        guard isFolder.boolValue else { throw ConversionError.io("the output path exists and is not a folder", file: path) }
        let names: [String]
        do {
            names = try manager.contentsOfDirectory(atPath: path)
        } catch {
            throw ConversionError.io("cannot list the output folder: \(error.localizedDescription)", file: path)
        }
        if let foreign = names.sorted().first(where: { !replaceable($0) }) {
            throw ConversionError("invalid-argument",
                                  "the output folder must be \(what == "empty" ? "absent or empty" : "absent, empty or an earlier TinyShard dataset"); it holds '\(foreign)'",
                                  file: path)
        }
        let folder = OutputFolder(path: path, created: false)
        folder.removeDatasetFiles()
        return folder
    }

    private init(path: String, created: Bool) {
        self.path = path
        self.created = created
    }

    func file(_ name: String) -> String { path + "/" + name }

    /// Removes the dataset files in the folder (after a failure, or before replacing a dataset).
    func removeDatasetFiles() {
        let manager = FileManager.default
        for name in (try? manager.contentsOfDirectory(atPath: path)) ?? [] where Self.isDatasetFile(name) {
            try? manager.removeItem(atPath: file(name))
        }
    }

    /// Undoes a failed run: removes what `names` lists (files or folders this run made), then the folder
    /// itself if this run created it and it is empty.
    package func clean(removing names: [String]) {
        let manager = FileManager.default
        for name in names { try? manager.removeItem(atPath: file(name)) }
        if created, (try? manager.contentsOfDirectory(atPath: path))?.isEmpty == true {
            try? manager.removeItem(atPath: path)
        }
    }
}
