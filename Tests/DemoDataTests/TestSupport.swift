import Foundation

/// A temporary folder removed when the test ends.
final class TemporaryFolder {
    let path: String

    init(_ label: String = "demo") {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("tinyshard-\(label)-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
