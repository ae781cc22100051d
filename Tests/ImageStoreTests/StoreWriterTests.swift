import XCTest
import Augment
@testable import ImageStore

/// The writer refuses what the spec forbids, before anything reaches the file, and never leaves a
/// half-written file under the final name.
final class StoreWriterTests: XCTestCase {
    func testRejectsBadImagesKeysAndLabels() throws {
        let folder = TemporaryFolder()
        let path = folder.file("w.tsimg")
        let writer = try ImageStoreWriter(path: path, classNames: ["a", "b"])
        let image = testImage(width: 4, height: 4, seed: 1)
        try writer.append(key: "k1", label: 0, image: image)
        var error = storeError(try writer.append(key: "k1", label: 0, image: image))
        XCTAssertEqual(error?.code, .invalidArgument)
        XCTAssertTrue(error?.description.contains("image 1 (key k1)") == true, error?.description ?? "")
        XCTAssertTrue(error?.message.contains("ascending") == true)
        error = storeError(try writer.append(key: "k0", label: 0, image: image))
        XCTAssertTrue(error?.message.contains("ascending") == true)
        XCTAssertEqual(storeError(try writer.append(key: "", label: 0, image: image))?.code, .invalidArgument)
        XCTAssertEqual(storeError(try writer.append(key: "k2\n", label: 0, image: image))?.code, .invalidArgument)
        XCTAssertTrue(storeError(try writer.append(key: "k2", label: 2, image: image))?.message.contains("label 2") == true)
        XCTAssertEqual(storeError(try writer.append(key: "k2", label: -2, image: image))?.code, .invalidArgument)
        let short: [UInt8] = [1, 2, 3]
        XCTAssertEqual(storeError(try short.withUnsafeBytes { try writer.append(key: "k2", label: 0, width: 2, height: 2, pixels: $0) })?.code,
                       .invalidArgument)
        XCTAssertEqual(storeError(try short.withUnsafeBytes { try writer.append(key: "k2", label: 0, width: 0, height: 1, pixels: $0) })?.code,
                       .invalidArgument)
        // Nothing bad reached the file: it finishes with the one good image.
        try writer.append(key: "k2", label: 1, image: image)
        try writer.finish()
        XCTAssertEqual(try ImageStore(path: path).keys(), ["k1", "k2"])
        XCTAssertEqual(storeError(try writer.finish())?.code, .invalidArgument)
        XCTAssertEqual(storeError(try writer.append(key: "k3", label: 0, image: image))?.code, .invalidArgument)
    }

    func testRejectsBadClassNames() throws {
        let folder = TemporaryFolder()
        XCTAssertEqual(storeError(try ImageStoreWriter(path: folder.file("x"), classNames: ["a", "a"]))?.code, .invalidArgument)
        XCTAssertEqual(storeError(try ImageStoreWriter(path: folder.file("x"), classNames: ["a\nb"]))?.code, .invalidArgument)
        XCTAssertEqual(storeError(try ImageStoreWriter(path: folder.file("x"), classNames: [""]))?.code, .invalidArgument)
        let noClasses = try ImageStoreWriter(path: folder.file("y"))
        XCTAssertTrue(storeError(try noClasses.append(key: "a", label: 0, image: testImage(width: 1, height: 1, seed: 0)))?
            .message.contains("no classes") == true)
        noClasses.discard()
    }

    /// Until finish, the final name keeps its old content; a dropped or discarded writer removes its
    /// temporary file.
    func testCrashSafeFinish() throws {
        let folder = TemporaryFolder()
        let path = folder.file("s.tsimg")
        try writeFile([1, 2, 3], path)
        do {
            let writer = try ImageStoreWriter(path: path)
            try writer.append(key: "a", label: -1, image: testImage(width: 3, height: 3, seed: 0))
            XCTAssertEqual(try readFile(path), [1, 2, 3])
            XCTAssertTrue(FileManager.default.fileExists(atPath: path + ".partial"))
            // The unfinished file is recognisably unfinished.
            let partial = storeError(try ImageStore(path: path + ".partial"))
            XCTAssertEqual(partial?.code, .incomplete)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".partial"), "a dropped writer deletes its temporary file")
        XCTAssertEqual(try readFile(path), [1, 2, 3])
        let writer = try ImageStoreWriter(path: path)
        writer.discard()
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".partial"))
        let done = try ImageStoreWriter(path: path)
        try done.append(key: "a", label: -1, image: testImage(width: 3, height: 3, seed: 0))
        try done.finish()
        XCTAssertEqual(try ImageStore(path: path).count, 1)
    }
}
