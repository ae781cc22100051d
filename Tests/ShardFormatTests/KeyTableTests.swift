import Foundation
import XCTest
@testable import ShardFormat

/// The key table (Spec section 5): byte-order sorting, lookups, the version-1 file format (5.1) and its damage
/// checks. Version 2 (5.2) has its own tests (PagedKeyTableTests).
final class KeyTableTests: XCTestCase {
    /// A key table file built by hand from decoded text (keys each followed by "\n"), with a correct
    /// checksum unless told otherwise.
    static func keyTableFile(text: [UInt8], count: Int, version: UInt32 = 1, decodedLength: Int? = nil) -> [UInt8] {
        let compressed = text.withUnsafeBytes { Zlib.compress($0, level: 9) }
        var out = Array("TSKY".utf8)
        out.append32(version)
        out.append32(UInt32(count))
        out.append32(UInt32(compressed.count))
        out.append32(UInt32(decodedLength ?? text.count))
        out.append32(referenceCRC32(compressed))
        return out + compressed
    }

    static func text(_ keys: [String]) -> [UInt8] { keys.flatMap { Array($0.utf8) + [0x0A] } }

    func parse(_ bytes: [UInt8]) throws -> KeyTable { try bytes.withUnsafeBytes { try KeyTable(fileBytes: $0) } }

    func testKeysAreSortedByUTF8BytesAndDeduplicated() throws {
        // Byte order differs from Swift's String order for canonically equivalent keys ("é" precomposed
        // and decomposed are == as Strings) and from UTF-16 order for astral characters.
        let precomposed = "caf\u{E9}"
        let decomposed = "cafe\u{301}"
        let keys = ["n02/img_10.JPEG", "n01/img_2.JPEG", "Zebra", "zebra", "\u{FF5E}", "\u{1F600}", precomposed, decomposed,
                    "n01/img_2.JPEG", "a b\tc"]
        let table = try KeyTable(sorting: keys)
        let expected = Array(Set(keys.map { Array($0.utf8) })).sorted { $0.lexicographicallyPrecedes($1) }
        XCTAssertEqual(table.count, 9)
        XCTAssertEqual(table.keys.map { Array($0.utf8) }, expected)
        XCTAssertEqual(table.key(0), "Zebra")
        XCTAssertEqual(Array(table.keys.suffix(2)), ["\u{FF5E}", "\u{1F600}"])
        XCTAssertNotNil(table.id(of: precomposed))
        XCTAssertNotNil(table.id(of: decomposed))
        XCTAssertNotEqual(table.id(of: precomposed), table.id(of: decomposed))
        for (id, key) in expected.enumerated() {
            XCTAssertEqual(table.id(of: String(decoding: key, as: UTF8.self)), UInt32(id))
        }
        for miss in ["", "n01", "n01/img_2.JPE", "n01/img_2.JPEGx", "zebra ", "\u{1F601}", "ZEBRA", "0"] {
            XCTAssertNil(table.id(of: miss), miss)
        }
    }

    func testFileRoundTrip() throws {
        let directory = try TemporaryDirectory("keys")
        var rng = SplitMix64(seed: 12)
        let keys = (0..<500).map { i in "train/n\(UInt32.random(in: 0..<99999, using: &rng))/\(i)_\u{00FC}.JPEG" }
        let table = try KeyTable(sorting: keys)
        let path = directory.file("keys.tsk")
        let (size, crc) = try table.write(to: path, version: 1)
        let bytes = try readBytes(path)
        XCTAssertEqual(size, bytes.count)
        XCTAssertEqual(crc, referenceCRC32(bytes))
        XCTAssertEqual(Array(bytes[0..<4]), Array("TSKY".utf8))
        XCTAssertEqual(bytes.u32(at: 4), 1)
        XCTAssertEqual(Int(bytes.u32(at: 8)), table.count)
        XCTAssertEqual(Int(bytes.u32(at: 12)), bytes.count - 24)
        XCTAssertEqual(Array(try table.encoded(version: 1)), bytes)
        let read = try KeyTable.read(path: path)
        XCTAssertEqual(read.keys, table.keys)
        for key in keys { XCTAssertEqual(read.id(of: key), table.id(of: key)) }
        // A file built by hand from the spec reads the same.
        XCTAssertEqual(try parse(Self.keyTableFile(text: Self.text(table.keys), count: table.count)).keys, table.keys)

        let empty = try KeyTable(sorting: [String]())
        XCTAssertEqual(try parse(empty.encoded(version: 1)).count, 0)
        XCTAssertNil(empty.id(of: "a"))
    }

    func testKeysThatCannotBeStoredAreRefused() {
        for bad in [[""], ["a\nb"], ["a\rb"], ["a\u{0}b"], ["ok", "line\n"]] {
            assertShardError(.badKeys, try KeyTable(sorting: bad), "\(bad)")
        }
    }

    func testDamagedFilesAreRefused() throws {
        let good = Self.keyTableFile(text: Self.text(["alpha", "beta", "gamma"]), count: 3)
        XCTAssertEqual(try parse(good).keys, ["alpha", "beta", "gamma"])

        var crc = good
        crc[30] ^= 0x10
        assertShardError(.badKeys, try parse(crc), "payload changed, checksum not")
        var storedCRC = good
        storedCRC[20] ^= 1
        assertShardError(.badKeys, try parse(storedCRC), "checksum field changed")

        let cases: [(String, [UInt8])] = [
            ("unsorted", Self.keyTableFile(text: Self.text(["beta", "alpha"]), count: 2)),
            ("duplicate", Self.keyTableFile(text: Self.text(["alpha", "alpha"]), count: 2)),
            ("empty key", Self.keyTableFile(text: Self.text(["alpha", "", "beta"]), count: 3)),
            ("key with CR", Self.keyTableFile(text: Self.text(["al\rpha", "beta"]), count: 2)),
            ("key with NUL", Self.keyTableFile(text: Self.text(["al\u{0}pha", "beta"]), count: 2)),
            ("key split by a newline: count is off", Self.keyTableFile(text: Self.text(["alpha\nbeta"]), count: 1)),
            ("not UTF-8", Self.keyTableFile(text: [0x61, 0xFF, 0x0A], count: 1)),
            ("last key lacks its newline", Self.keyTableFile(text: Array("alpha\nbeta".utf8), count: 2)),
            ("count too high", Self.keyTableFile(text: Self.text(["alpha", "beta"]), count: 3)),
            ("count too low", Self.keyTableFile(text: Self.text(["alpha", "beta"]), count: 1)),
            ("decoded length too short", Self.keyTableFile(text: Self.text(["alpha", "beta"]), count: 2, decodedLength: 10)),
            ("decoded length too long", Self.keyTableFile(text: Self.text(["alpha", "beta"]), count: 2, decodedLength: 12)),
            ("decoded length absurd", Self.keyTableFile(text: Self.text(["alpha", "beta"]), count: 2, decodedLength: 1 << 31)),
            ("trailing bytes", good + [0]),
        ]
        for (what, bytes) in cases { assertShardError(.badKeys, try parse(bytes), what) }

        for length in 0..<good.count {
            let error = shardError(try parse(Array(good[0..<length])))
            // Spec §5: an empty file is not a key table; a shorter one that starts like one is damaged.
            XCTAssertEqual(error?.code, length == 0 ? .badMagic : .badKeys, "truncated to \(length)")
        }
        var magic = good
        magic[0] = 0x74
        assertShardError(.badMagic, try parse(magic))
        assertShardError(.unsupportedVersion, try parse(Self.keyTableFile(text: Self.text(["a"]), count: 1, version: 3)))
        // Version 2 is known, but these bytes are not a version-2 head (its checksum fails).
        assertShardError(.badKeys, try parse(Self.keyTableFile(text: Self.text(["a"]), count: 1, version: 2)))

        let directory = try TemporaryDirectory("badkeys")
        try writeBytes(Array(good.dropLast()), to: directory.file("k.tsk"))
        let error = shardError(try KeyTable.read(path: directory.file("k.tsk")))
        XCTAssertEqual(error?.code, .badKeys)
        XCTAssertEqual(error?.location.file, directory.file("k.tsk"))
        assertShardError(.io, try KeyTable.read(path: directory.file("absent.tsk")))
    }
}
