import Foundation
import ShardFormat
import XCTest
@testable import ShardConvert

/// Bad official-layout input: each error names the file (and the record or line) at fault.
final class OfficialErrorTests: XCTestCase {
    private func convert(_ source: String, classes: Int = 100, out: String? = nil) throws -> ConversionSummary {
        try OfficialImporter.importDataset(from: source, to: out ?? source + "-out", options: OfficialImportOptions(classes: classes))
    }

    private func expectError(_ body: @autoclosure () throws -> Any, code: String, file: String,
                             line: UInt = #line, _ check: (ConversionError) -> Void = { _ in }) {
        XCTAssertThrowsError(try body(), line: line) { error in
            guard let error = error as? ConversionError else { return XCTFail("not a ConversionError: \(error)", line: line) }
            XCTAssertEqual(error.code, code, "\(error)", line: line)
            XCTAssertEqual(error.file, file, "\(error)", line: line)
            XCTAssertTrue(error.description.contains(file), error.description, line: line)
            check(error)
        }
    }

    func testMissingFolder() {
        let folder = TemporaryFolder()
        expectError(try convert(folder.file("absent")), code: "io", file: folder.file("absent"))
    }

    func testFolderWithoutEpochs() {
        let folder = TemporaryFolder()
        expectError(try convert(folder.path), code: "bad-layout", file: folder.path)
    }

    func testKeysAndValuesCountMismatch() throws {
        let folder = TemporaryFolder()
        try OfficialWriter.write(to: folder.path, k: 3, epoch: 0, ranks: [["a", "b", "c"]])
        let keys = folder.file("logits_top3_epoch0/rank0-keys.txt")
        try Data("a\nb\nc\nd\n".utf8).write(to: URL(fileURLWithPath: keys))
        expectError(try convert(folder.path), code: "bad-layout", file: folder.file("logits_top3_epoch0/rank0-values.bin")) {
            XCTAssertTrue($0.message.contains(keys), $0.message)
            XCTAssertTrue($0.message.contains("3 records") && $0.message.contains("4 keys"), $0.message)
        }
    }

    func testTruncatedValuesFile() throws {
        let folder = TemporaryFolder()
        try OfficialWriter.write(to: folder.path, k: 3, epoch: 0, ranks: [["a", "b", "c"]])
        let values = folder.file("logits_top3_epoch0/rank0-values.bin")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: values))
        try bytes.dropLast(5).write(to: URL(fileURLWithPath: values))
        expectError(try convert(folder.path), code: "bad-layout", file: values) { XCTAssertEqual($0.record, 2) }
    }

    func testKDiffersBetweenFolders() throws {
        let folder = TemporaryFolder()
        try OfficialWriter.write(to: folder.path, k: 3, epoch: 0, ranks: [["a"]])
        try OfficialWriter.write(to: folder.path, k: 4, epoch: 1, ranks: [["a"]])
        expectError(try convert(folder.path), code: "bad-layout", file: folder.file("logits_top4_epoch1"))
    }

    func testClassIndexNotBelowClasses() throws {
        let folder = TemporaryFolder()
        // Row r holds classes (7j + r) % 50: rank 0's only row reaches 14, rank 1's second row 15.
        try OfficialWriter.write(to: folder.path, k: 3, epoch: 0, ranks: [["a"], ["c", "d"]])
        let values = folder.file("logits_top3_epoch0/rank1-values.bin")
        expectError(try convert(folder.path, classes: 15), code: "index-out-of-range", file: values) { error in
            XCTAssertEqual(error.record, 1)
            XCTAssertEqual(error.key, "d")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.path + "-out"), "a failed conversion leaves nothing behind")
    }

    func testMissingValuesFileOfARank() throws {
        let folder = TemporaryFolder()
        try OfficialWriter.write(to: folder.path, k: 3, epoch: 0, ranks: [["a"], ["b"]])
        try FileManager.default.removeItem(atPath: folder.file("logits_top3_epoch0/rank1-values.bin"))
        expectError(try convert(folder.path), code: "bad-layout", file: folder.file("logits_top3_epoch0/rank1-values.bin"))
    }

    func testBadKeyLine() throws {
        let folder = TemporaryFolder()
        try OfficialWriter.write(to: folder.path, k: 3, epoch: 0, ranks: [["a", "b"]])
        let keys = folder.file("logits_top3_epoch0/rank0-keys.txt")
        try Data("a\n\n".utf8).write(to: URL(fileURLWithPath: keys))
        expectError(try convert(folder.path), code: "bad-keys", file: keys) { XCTAssertEqual($0.line, 2) }
    }

    func testOutputFolderWithOtherFilesIsRefused() throws {
        let folder = TemporaryFolder()
        try OfficialWriter.write(to: folder.path, k: 3, epoch: 0, ranks: [["a"]])
        let out = folder.file("out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: out + "/notes.txt"))
        expectError(try convert(folder.path, out: out), code: "invalid-argument", file: out)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/notes.txt"))
    }

    func testSmallLayoutRoundTripAndReplacingAnEarlierDataset() throws {
        let folder = TemporaryFolder()
        try OfficialWriter.write(to: folder.path, k: 3, epoch: 0, ranks: [["b", "a"], ["a", "c"]])
        let out = folder.file("dataset")
        let first = try convert(folder.path, out: out)
        XCTAssertEqual(first.duplicatesDropped, 0)
        XCTAssertEqual(first.keysInSeveralRanks, 1)
        XCTAssertEqual(first.recordsWritten, 4)
        let again = try convert(folder.path, out: out)  // an earlier dataset is replaced
        XCTAssertEqual(again, first)
        let exported = folder.file("exported")
        let summary = try OfficialExporter.export(dataset: out, to: exported)
        XCTAssertEqual(summary.records, 4)
        XCTAssertEqual(try String(contentsOfFile: exported + "/logits_top3_epoch0/rank1-keys.txt", encoding: .utf8), "a\nc\n")
        XCTAssertThrowsError(try OfficialExporter.export(dataset: out, to: exported), "export refuses a non-empty folder")
    }
}
