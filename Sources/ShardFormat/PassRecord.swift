import Foundation
import Interchange

/// `pass.json` (Spec/PASS.md 2): what a teacher pass is — the epochs it was asked for and the fingerprint of
/// everything that decides a record's bytes — so that a resumed pass can refuse to mix two passes in one
/// folder. Written first, atomically; rewritten when epochs are added.
public struct PassRecord: Sendable, Equatable {
    /// The pass record's name inside a teacher-pass folder.
    public static let fileName = "pass.json"
    static let format = "tinyshard-teacher-pass"

    /// Epochs the pass has been asked for so far.
    public var epochs: Int
    /// Every value a string; compared key by key on resume.
    public var fingerprint: [String: String]

    /// A record of a pass planned for `epochs` epochs with the given fingerprint.
    public init(epochs: Int, fingerprint: [String: String]) {
        self.epochs = epochs
        self.fingerprint = fingerprint
    }

    /// The record in `directory`, or nil when the folder has none (it is not a pass folder).
    /// - Throws: ``ShardError`` naming the file when it exists but is not a pass record.
    public static func read(directory: String) throws -> PassRecord? {
        let path = directory + "/" + fileName
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let file = try MappedFile.format(path: path)
        do {
            return try parse(file.bytes)
        } catch let error as ShardError {
            throw error.located(ShardLocation(file: path))
        }
    }

    static func parse(_ bytes: UnsafeRawBufferPointer) throws -> PassRecord {
        func fail(_ message: String) -> ShardError { ShardError(.manifestMismatch, "pass record: " + message) }
        guard bytes.count <= 1 << 20 else { throw fail("more than 1 MiB") }
        let document: JSONDocument
        do {
            document = try StrictJSON.parse(bytes)
        } catch let error as JSONSyntaxError {
            throw fail("not JSON of the spec's grammar: \(error)")
        }
        let root = try JSONFields(document.root, fail: { fail($0) })
        guard root.optional("format")?.string == format else { throw fail("format must be \"\(format)\"") }
        guard let version = root.optional("version"), version.isIntegerToken, version.integer == 1 else {
            throw ShardError(.unsupportedVersion, "pass record version is not 1")
        }
        return PassRecord(epochs: try root.integer("epochs", in: 1...Int(Int32.max)), fingerprint: try root.stringMap("fingerprint"))
    }

    /// The file's bytes: keys sorted, so that the same record always writes the same bytes.
    public func encoded() throws -> [UInt8] {
        let object: [String: Any] = ["format": Self.format, "version": 1, "epochs": epochs, "fingerprint": fingerprint]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return [UInt8](data) + [0x0A]
    }

    /// Writes `directory/pass.json` atomically (temporary name, fsync, rename).
    public func write(directory: String) throws {
        let output = try formatIO { try AtomicFileOutput(path: directory + "/" + Self.fileName) }
        do {
            let bytes = try encoded()
            try formatIO {
                try output.write(bytes)
                try output.commit()
            }
        } catch {
            output.discard()
            throw error
        }
    }

    /// How `stored` (the folder's record) and this one (the run's) differ, key by key, or nil when the
    /// fingerprints are equal: "seed is 0 in the folder, 7 in this run".
    public func fingerprintDifference(from stored: PassRecord) -> String? {
        for key in Set(stored.fingerprint.keys).union(fingerprint.keys).sorted() where stored.fingerprint[key] != fingerprint[key] {
            return "\(key) is \(stored.fingerprint[key].map { "\"\($0)\"" } ?? "absent") in the folder, "
                + "\(fingerprint[key].map { "\"\($0)\"" } ?? "absent") in this run"
        }
        return nil
    }
}
