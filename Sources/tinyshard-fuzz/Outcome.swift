import Foundation
import ShardFormat

/// What the Swift implementation says about one file, for the Swift/Python differential: the reader's
/// first error (open, read every record, build the sample-id table) and the verifier's verdict.
struct Outcome {
    var file: String
    var reader: String?
    var clean: Bool
    var first: String?

    static func check(_ kind: String, path: String) -> Outcome {
        switch kind {
        case "shard":
            var readerCode: String?
            do {
                let reader = try ShardReader(path: path)
                try reader.forEachRecord { _, _ in }
                _ = try reader.ordinal(ofSample: 0)
            } catch let error as ShardError {
                readerCode = error.code.rawValue
            } catch {
                readerCode = "io"
            }
            let report = ShardVerifier(maxProblems: 1000, depth: .full, threads: 1).verifyShard(path: path)
            return Outcome(file: path, reader: readerCode, clean: report.isClean, first: report.problems.first?.code)
        case "keys":
            let code = codeOf { _ = try KeyTable.read(path: path) }
            return Outcome(file: path, reader: code, clean: code == nil, first: code)
        case "manifest":
            let code = codeOf {
                let file = try MappedFile.format(path: path)
                _ = try DatasetManifest.parse(file.bytes)
            }
            return Outcome(file: path, reader: code, clean: code == nil, first: code)
        default:
            fail("check: unknown kind \(kind)")
        }
    }

    private static func codeOf(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as ShardError {
            return error.code.rawValue
        } catch {
            return "io"
        }
    }

    var jsonLine: String {
        func quoted(_ s: String?) -> String { s.map { "\"\($0)\"" } ?? "null" }
        return "{\"file\": \(quoted(file)), \"reader\": \(quoted(reader)), \"clean\": \(clean), \"first\": \(quoted(first))}"
    }
}
