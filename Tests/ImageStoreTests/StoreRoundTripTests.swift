import XCTest
import Augment
@testable import ImageStore

/// Writing and reading back stores: every image, key, label and class name survives; lookups work.
final class StoreRoundTripTests: XCTestCase {
    func testRoundTrip() throws {
        let folder = TemporaryFolder()
        let path = folder.file("a.tsimg")
        let images = try writeSampleStore(path)
        let store = try ImageStore(path: path)
        XCTAssertEqual(store.count, 6)
        XCTAssertEqual(store.classCount, 3)
        XCTAssertEqual(store.classNames, ["cat", "dog", "fox"])
        for i in 0..<6 {
            XCTAssertEqual(try store.image(at: i), images[i])
            XCTAssertEqual(try store.key(at: i), "img_00\(i)")
            XCTAssertEqual(try store.label(at: i), i % 3)
            let size = try store.size(at: i)
            XCTAssertEqual(size.width, images[i].width)
            XCTAssertEqual(size.height, images[i].height)
            try store.withPixels(at: i) { pixels, width, height in
                XCTAssertEqual(Array(pixels), images[i].pixels)
                XCTAssertEqual(width * height * 3, pixels.count)
            }
        }
        XCTAssertEqual(store.index(ofKey: "img_004"), 4)
        XCTAssertEqual(store.index(ofKey: "img_000"), 0)
        XCTAssertNil(store.index(ofKey: "img_0041"))
        XCTAssertNil(store.index(ofKey: ""))
        XCTAssertEqual(store.labelHistogram().counts, [2, 2, 2])
        try store.verifyPixels()
        // Exact size: header + pixels + 32 per entry + keys + names.
        let pixels = images.map { $0.pixels.count }.reduce(0, +)
        XCTAssertEqual(try readFile(path).count, 64 + pixels + 6 * 32 + 6 * 7 + "cat\ndog\nfox\n".utf8.count)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".partial"))
    }

    func testEmptyStoreAndUnlabelledImages() throws {
        let folder = TemporaryFolder()
        let empty = folder.file("empty.tsimg")
        try ImageStoreWriter(path: empty).finish()
        let store = try ImageStore(path: empty)
        XCTAssertEqual(store.count, 0)
        XCTAssertEqual(try readFile(empty).count, 64)
        XCTAssertNil(store.index(ofKey: "x"))

        let unlabelled = folder.file("u.tsimg")
        try writeSampleStore(unlabelled, count: 3, classes: [])
        let u = try ImageStore(path: unlabelled)
        XCTAssertEqual(u.labels(), [-1, -1, -1])
        XCTAssertEqual(u.labelHistogram().unlabelled, 3)
        XCTAssertEqual(u.classNames, [])
    }

    func testNumberedClassesWithoutNamesAndUnicodeKeys() throws {
        let folder = TemporaryFolder()
        let path = folder.file("n.tsimg")
        let writer = try ImageStoreWriter(path: path, classCount: 1000)
        let keys = ["n01440764/a.JPEG", "n01440764/b.JPEG", "z\u{00E9}bre/\u{732B}.png"]
        for (i, key) in keys.enumerated() { try writer.append(key: key, label: 999 - i, image: testImage(width: 2, height: 2, seed: i)) }
        try writer.finish()
        let store = try ImageStore(path: path)
        XCTAssertEqual(store.keys(), keys)
        XCTAssertEqual(store.labels(), [999, 998, 997])
        XCTAssertEqual(store.classCount, 1000)
        XCTAssertEqual(store.index(ofKey: keys[2]), 2)
    }

    func testConcurrentReaders() throws {
        let folder = TemporaryFolder()
        let path = folder.file("c.tsimg")
        let images = try writeSampleStore(path, count: 20)
        let store = try ImageStore(path: path)
        // Each worker writes only its own slot.
        nonisolated(unsafe) let ok = UnsafeMutableBufferPointer<Bool>.allocate(capacity: 400)
        ok.initialize(repeating: false)
        defer { ok.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 400) { n in
            ok[n] = (try? store.image(at: n % 20)) == images[n % 20]
        }
        XCTAssertTrue(ok.allSatisfy { $0 })
    }

    func testOutOfRangeIndexIsAnErrorNotACrash() throws {
        let folder = TemporaryFolder()
        let path = folder.file("r.tsimg")
        try writeSampleStore(path, count: 2)
        let store = try ImageStore(path: path)
        let error = storeError(try store.image(at: 2))
        XCTAssertEqual(error?.code, .invalidArgument)
        XCTAssertTrue(error?.description.contains(path) == true)
        XCTAssertEqual(storeError(try store.key(at: -1))?.code, .invalidArgument)
    }
}
