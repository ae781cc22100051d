import Foundation
import ShardFormat
import XCTest
@testable import ShardConvert

/// The converter's key machinery without strings: per-file sorts, chunked runs merged into the union,
/// and line → id mapping, against plain Swift sets and `KeyTable(sorting:)`.
final class KeyUnionTests: XCTestCase {
    /// Keys that defeat a fixed-length prefix: shared 16+ byte prefixes, prefixes of each other, short
    /// keys, multi-byte UTF-8 (whose bytes sort above ASCII).
    private func randomKey(using rng: inout SeededRandom) -> String {
        let n = rng.next() % 400
        switch rng.next() % 6 {
        case 0: return "k\(n)"
        case 1: return "train/n01440764/n01440764_\(n).JPEG"
        case 2: return "train/n01440764/n01440764_\(n)"
        case 3: return "é\(n % 7)/ß\(n)"
        case 4: return String(repeating: "a", count: Int(n % 40) + 1)
        default: return "abcdefghijklmnop\(n)"
        }
    }

    /// Front coding at its edges: shared prefixes past the one-byte cap (255), rests whose length takes
    /// one, two and three LEB128 bytes, a key that is a prefix of the next, chunks smaller than one key.
    func testFrontCodedRunsGiveBackEveryKey() throws {
        let long = String(repeating: "p", count: 300)
        let keys = ["a", "ab", "abc", long, long + "a", long + "b" + String(repeating: "x", count: 200),
                    long + "c" + String(repeating: "y", count: 20_000), "q", "é", "éa"].sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        for chunkSize in [1, 7, 300, KeyRun.defaultChunkSize] {
            let run = KeyRun(chunkSize: chunkSize)
            for key in keys { Array(key.utf8).withUnsafeBytes { run.append($0) } }
            XCTAssertEqual(run.count, keys.count)
            XCTAssertEqual(run.byteCount, keys.reduce(0) { $0 + $1.utf8.count + 1 })
            var read: [String] = []
            var cursor = KeyRunCursor(run, consuming: false)
            while let key = cursor.key {
                read.append(String(decoding: key, as: UTF8.self))
                cursor.advance()
            }
            XCTAssertEqual(read, keys, "chunk size \(chunkSize)")
            let joined = try run.joined()
            XCTAssertEqual(joined.text, Array(keys.map { $0 + "\n" }.joined().utf8), "chunk size \(chunkSize)")
            XCTAssertEqual(joined.count, keys.count)
        }
        for value in [0, 1, 127, 128, 16_383, 16_384, 1 << 40] {
            var bytes = [UInt8](repeating: 0, count: 10)
            let end = bytes.withUnsafeMutableBytes { LEB128.write(value, into: $0, at: 1) }
            XCTAssertEqual(end, 1 + LEB128.length(value))
            var back = -1
            XCTAssertEqual(bytes.withUnsafeBytes { LEB128.read(&back, from: $0, at: 1) }, end)
            XCTAssertEqual(back, value)
        }
    }

    func testUnionAndIdsMatchAStringKeyTable() throws {
        let folder = TemporaryFolder("keys")
        var rng = SeededRandom(seed: 11)
        for (chunkSize, files) in [(7, 5), (64, 3), (KeyRun.defaultChunkSize, 4)] {
            var everything = Set<String>()
            var files = try (0..<files).map { number -> KeyLines in
                let keys = (0..<Int(rng.next() % 300)).map { _ in randomKey(using: &rng) }  // repeats included
                everything.formUnion(keys)
                let path = folder.file("keys-\(chunkSize)-\(number).txt")
                try Data(keys.map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: path))
                return try KeyLines(path: path)
            }
            files.append(try KeyLines(path: files[0].path))  // a file whose keys are all known already

            // Two "epochs": the first half of the files, then the rest, each filtered against the union.
            // Files sorted in pieces of `piece` lines, as the converter does with its much larger pieces.
            let piece = chunkSize == 7 ? 13 : 1000
            var union = KeyRun(chunkSize: chunkSize)
            for epoch in [files.prefix(files.count / 2), files.suffix(from: files.count / 2)] {
                let known = union
                let new = try epoch.map { lines -> KeyRun in
                    let pieces = KeySort.pieces(lines, size: piece).map {
                        KeyRun.distinct(lines, sortedLines: KeySort.sortedLines(lines, $0), chunkSize: chunkSize)
                    }
                    return KeyRun.subtracting(try KeyRun.union(pieces, threads: 2), known)
                }
                union = try KeyRun.union([union] + new, threads: 2)
            }
            let sorted = try union.joined()
            let reference = try KeyTable(sorting: everything)
            let table = try sorted.table()
            XCTAssertEqual(table.keys, reference.keys, "chunk size \(chunkSize)")

            for file in files {
                let ids = try sorted.ids(of: file, pieceLines: piece)
                var seen = Set<String>()
                var repeats = 0
                for line in 0..<file.count {
                    let key = file.key(line)
                    if seen.insert(key).inserted {
                        XCTAssertEqual(ids.ids[line], reference.id(of: key), "\(file.path) line \(line + 1)")
                    } else {
                        XCTAssertEqual(ids.ids[line], LineIDs.repeated, "\(file.path) line \(line + 1) repeats \(key)")
                        repeats += 1
                    }
                }
                XCTAssertEqual(ids.repeats, repeats)
            }
        }
    }

    func testKeysFileLinesAreChecked() throws {
        let folder = TemporaryFolder("key-lines")
        let cases: [(String, [UInt8], Int)] = [
            ("empty line", Array("a\n\nb\n".utf8), 2),
            ("carriage return", Array("a\nb\r\n".utf8), 2),
            ("NUL", [0x61, 0x0A, 0x62, 0x00, 0x0A], 2),
            ("bad UTF-8", [0x61, 0x0A, 0x62, 0x0A, 0xC0, 0xAF, 0x0A], 3),
        ]
        for (name, bytes, line) in cases {
            let path = folder.file(name)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try KeyLines(path: path), name) { error in
                XCTAssertEqual((error as? ConversionError)?.line, line, "\(name): \(error)")
                XCTAssertEqual((error as? ConversionError)?.file, path)
            }
        }
        let path = folder.file("no final newline")
        try Data("b\na".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try KeyLines(path: path).keys, ["b", "a"])
    }
}
