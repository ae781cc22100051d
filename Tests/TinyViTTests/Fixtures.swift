import Foundation
import XCTest
import Tensor

/// Locates `../shared/fixtures/timm_tinyvit` beside the package root (or /work/shared/fixtures).
enum Fixtures {
    static var directory: URL? {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for candidate in [root.appendingPathComponent("../shared/fixtures/timm_tinyvit"),
                          URL(fileURLWithPath: "/work/shared/fixtures/timm_tinyvit")] {
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("manifest.json").path) {
                return candidate.standardizedFileURL
            }
        }
        return nil
    }

    static func require() throws -> URL {
        guard let d = directory else {
            throw XCTSkip("timm fixtures not found at <package>/../shared/fixtures/timm_tinyvit or /work/shared/fixtures; skipping parity test")
        }
        return d
    }

    /// max |a − b|.
    static func maxAbsDiff(_ a: Tensor, _ b: Tensor) -> Float {
        precondition(a.count == b.count, "\(a.shape) vs \(b.shape)")
        var m: Float = 0
        for i in 0..<a.count { m = max(m, abs(a[flat: i] - b[flat: i])) }
        return m
    }

    /// max |a − b| / max |b|.
    static func relativeDiff(_ a: Tensor, _ reference: Tensor) -> Float {
        maxAbsDiff(a, reference) / max(reference.maxAbs(), 1e-30)
    }
}
