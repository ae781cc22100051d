import Foundation

/// A temporary folder removed when the test ends (one copy for every test target that writes files).
public final class TemporaryFolder: Sendable {
    /// The folder's path (created, empty, under the system's temporary directory).
    public let path: String

    /// A fresh folder named `tinyshard-<label>-<UUID>`.
    public init(_ label: String = "test") {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("tinyshard-\(label)-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// The path of `name` inside the folder.
    public func file(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
