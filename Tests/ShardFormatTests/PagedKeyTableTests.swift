import Foundation
import XCTest
@testable import ShardFormat

/// A version-2 key table built by hand from Spec/FORMAT.md 5.2 (independently of `PagedKeyTable.encode`), with
/// every field open to damage; checksums are recomputed after any change unless told otherwise.
struct PagedKeyTableModel {
    var count: Int
    var keysPerPage: Int
    var pageCount: Int
    var reserved: UInt32 = 0
    /// Each page's decoded text (keys each followed by "\n").
    var pages: [[UInt8]]
    var fences: [[UInt8]]
    /// Overrides of a page's stored bytes (e.g. a stream that does not inflate), by page.
    var storedOverride: [Int: [UInt8]] = [:]
    var decodedOverride: [Int: Int] = [:]
    var keepHeadCRC: UInt32?
    var keepDirectoryCRC: UInt32?
    var offsetShift: [Int: Int] = [:]

    init(keys: [String], keysPerPage: Int) {
        count = keys.count
        self.keysPerPage = keysPerPage
        pageCount = (keys.count + keysPerPage - 1) / keysPerPage
        pages = stride(from: 0, to: keys.count, by: keysPerPage).map { start in
            keys[start..<min(keys.count, start + keysPerPage)].flatMap { Array($0.utf8) + [0x0A] }
        }
        fences = stride(from: 0, to: keys.count, by: keysPerPage).map { Array(keys[$0].utf8) }
    }

    func bytes() -> [UInt8] {
        let stored = pages.enumerated().map { g, text in storedOverride[g] ?? text.withUnsafeBytes { Zlib.compress($0, level: 9) } }
        let fenceBytes = fences.flatMap { $0 }
        var out = Array("TSKY".utf8)
        out.append32(2)
        out.append32(UInt32(count))
        out.append32(UInt32(keysPerPage))
        out.append32(UInt32(pageCount))
        out.append32(UInt32(fenceBytes.count))
        out.append32(reserved)
        out.append32(keepHeadCRC ?? referenceCRC32(out))
        var offset = 32 + 24 * pages.count + fenceBytes.count + 4
        var fenceEnd = 0
        for g in 0..<pages.count {
            out.append64(UInt64(offset + (offsetShift[g] ?? 0)))
            out.append32(UInt32(stored[g].count))
            out.append32(UInt32(decodedOverride[g] ?? pages[g].count))
            out.append32(referenceCRC32(stored[g]))
            fenceEnd += fences[g].count
            out.append32(UInt32(fenceEnd))
            offset += stored[g].count
        }
        out += fenceBytes
        out.append32(keepDirectoryCRC ?? referenceCRC32(out[32...]))
        for page in stored { out += page }
        return out
    }
}

/// Key table version 2 (Spec/FORMAT.md 5.2): the writer against a hand-built file, the mapped reader's lookups
/// and laziness, and every rule of the three groups.
final class PagedKeyTableTests: XCTestCase {
    static let keys = (0..<1000).map { String(format: "n%08d_%05d", 1_440_764 + $0 / 37 * 13, 10_000 + $0 * 7) }

    func parse(_ bytes: [UInt8]) throws -> KeyTable { try bytes.withUnsafeBytes { try KeyTable(fileBytes: $0) } }

    func mapped(_ bytes: [UInt8], _ name: String = "keys.tsk") throws -> MappedKeyTable {
        let directory = try TemporaryDirectory("paged")
        try writeBytes(bytes, to: directory.file(name))
        return try MappedKeyTable(path: directory.file(name))
    }

    func testWriterMatchesTheSpecAndReadsBack() throws {
        for count in [0, 1, 255, 256, 257, 1000] {
            let keys = Array(Self.keys.prefix(count))
            let table = try KeyTable(sorting: keys)
            let written = try table.encoded(version: 2)
            XCTAssertEqual(written.u32(at: 4), 2)
            XCTAssertEqual(Int(written.u32(at: 12)), PagedKeyTable.defaultKeysPerPage)
            // Fields the spec fixes, from a file built by hand: the same head, directory and fences (pages may
            // be compressed differently).
            let model = PagedKeyTableModel(keys: keys, keysPerPage: PagedKeyTable.defaultKeysPerPage).bytes()
            XCTAssertEqual(Array(written[0..<32]), Array(model[0..<32]), "head, \(count) keys")
            XCTAssertEqual(try parse(written).keys, keys)
            XCTAssertEqual(try parse(model).keys, keys)
            XCTAssertEqual(try written.withUnsafeBytes { try KeyTable.check(fileBytes: $0) }, count)
        }
    }

    func testMappedLookupsAgreeWithTheTableInMemory() throws {
        for keysPerPage in [1, 3, 256] {
            let model = PagedKeyTableModel(keys: Self.keys, keysPerPage: keysPerPage)
            let table = try mapped(model.bytes())
            XCTAssertEqual(table.version, 2)
            XCTAssertEqual(table.count, Self.keys.count)
            for (id, key) in Self.keys.enumerated() {
                XCTAssertEqual(try table.id(of: key), UInt32(id), key)
                XCTAssertEqual(try table.key(id), key)
            }
            // Before the first key, between keys, after the last, and prefixes of fences.
            for miss in ["", "a", "n0", "n01440764", "n01440764_1000", "n01440764_10000x", "zzz", Self.keys[0] + "\u{0}"] {
                XCTAssertNil(try table.id(of: miss), miss)
            }
            assertShardError(.invalidArgument, try table.key(Self.keys.count))
        }
        let empty = try mapped(PagedKeyTableModel(keys: [], keysPerPage: 4).bytes())
        XCTAssertEqual(empty.count, 0)
        XCTAssertNil(try empty.id(of: "a"))
        // Version 1 reads the same through the mapped reader (inflated whole on first use).
        let version1 = try mapped(try KeyTable(sorting: Self.keys).encoded(version: 1))
        XCTAssertEqual(version1.version, 1)
        XCTAssertEqual(try version1.id(of: Self.keys[777]), 777)
        XCTAssertEqual(try version1.key(5), Self.keys[5])
    }

    /// Opening reads the head only; a damaged page fails exactly the lookups that land in it.
    func testOpeningIsLazyAndDamageStaysInItsPage() throws {
        var bytes = PagedKeyTableModel(keys: Self.keys, keysPerPage: 100).bytes()
        // Flip a byte inside page 3's stored stream, leaving its CRC in the directory as it was.
        let offset = Int(bytes.u64(at: 32 + 24 * 3))
        bytes[offset + 4] ^= 0x40
        let table = try mapped(bytes)
        XCTAssertEqual(try table.id(of: Self.keys[50]), 50)
        XCTAssertEqual(try table.key(999), Self.keys[999])
        let error = shardError(try table.id(of: Self.keys[350]))
        XCTAssertEqual(error?.code, .badKeys)
        XCTAssertTrue(error?.message.contains("page 3") ?? false, error?.message ?? "")
        XCTAssertNotNil(error?.location.file)
        assertShardError(.badKeys, try table.key(301))
        assertShardError(.badKeys, try bytes.withUnsafeBytes { try KeyTable.check(fileBytes: $0) })
    }

    func testEveryRuleIsEnforced() throws {
        let keys = Array(Self.keys.prefix(10))
        let good = PagedKeyTableModel(keys: keys, keysPerPage: 4)
        XCTAssertEqual(try parse(good.bytes()).keys, keys)
        func damaged(_ change: (inout PagedKeyTableModel) -> Void) -> [UInt8] {
            var model = good
            change(&model)
            return model.bytes()
        }
        let head: [(String, [UInt8])] = [
            ("head CRC", damaged { $0.keepHeadCRC = 0x1234 }),
            ("reserved", damaged { $0.reserved = 1 }),
            ("P = 0", damaged { $0.keysPerPage = 0 }),
            ("P too large", damaged { $0.keysPerPage = 65_537 }),
            ("G wrong", damaged { $0.pageCount = 2 }),
            ("short of the directory", Array(good.bytes().prefix(40))),
        ]
        let directory: [(String, [UInt8])] = [
            ("directory CRC", damaged { $0.keepDirectoryCRC = 0x1234 }),
            ("page offset", damaged { $0.offsetShift[1] = 1 }),
            ("decoded length beyond 1032:1", damaged { $0.decodedOverride[0] = 1 << 24 }),
            ("fences unsorted", damaged { $0.fences.swapAt(0, 1) }),
            ("empty fence", damaged { $0.fences[1] = [] }),
            ("fence with a newline", damaged { $0.fences[1] += [0x0A] }),
            ("trailing bytes", good.bytes() + [0]),
        ]
        let page: [(String, [UInt8], Int)] = [
            ("first key is not the fence", damaged { $0.fences[1] = Array((keys[4] + "0").utf8) }, 1),
            ("last key not before the next fence", damaged { $0.pages[0] = Array([keys[0], keys[1], keys[2], keys[5]].map { $0 + "\n" }.joined().utf8) }, 0),
            ("too few keys", damaged { $0.pages[1] = Array((keys[4] + "\n").utf8) }, 1),
            ("unsorted inside", damaged { $0.pages[1] = Array((keys[4] + "\n" + keys[6] + "\n" + keys[5] + "\n" + keys[7] + "\n").utf8) }, 1),
            ("decoded length off", damaged { $0.decodedOverride[2] = 5 }, 2),
            ("not zlib", damaged { $0.storedOverride[2] = [1, 2, 3, 4, 5, 6, 7, 8] }, 2),
            ("not UTF-8", damaged { $0.pages[2] = Array((keys[8] + "\n").utf8) + [0xFF, 0x0A] }, 2),
        ]
        for (what, bytes) in head + directory + page.map({ ($0.0, $0.1) }) {
            assertShardError(.badKeys, try parse(bytes), what)
            assertShardError(.badKeys, try bytes.withUnsafeBytes { try KeyTable.check(fileBytes: $0) }, what)
        }
        // The head's rules are checked at open; the directory's before the first lookup; a page's before a
        // key of it is used, and only then.
        for (what, bytes) in head { assertShardError(.badKeys, try mapped(bytes), what) }
        for (what, bytes) in directory { assertShardError(.badKeys, try mapped(bytes).key(9), what) }
        for (what, bytes, damagedPage) in page {
            let table = try mapped(bytes)
            assertShardError(.badKeys, try table.key(damagedPage * 4), what)
            let elsewhere = damagedPage == 2 ? 0 : 9
            XCTAssertEqual(try table.key(elsewhere), keys[elsewhere], what)
        }
        var version = good.bytes()
        version[4] = 3
        assertShardError(.unsupportedVersion, try mapped(version))
    }

    /// A page's check runs the byte rules over the whole page first and per key only when that fails
    /// (KeyRules.feedWhole); whichever key breaks a rule, and wherever, the error must be the one the
    /// key-by-key scan (KeyRules.feed, version 1's reader) gives.
    func testWholePageCheckNamesTheSameKeyAsTheKeyByKeyScan() throws {
        let keys = Array(Self.keys.prefix(6)).map { Array($0.utf8) }
        // Each case puts a key that breaks one rule at every position of a page of six good keys.
        let bad: [(String, (Int) -> [UInt8])] = [
            ("empty", { _ in [] }), ("CR", { _ in Array("n1\r".utf8) }), ("NUL", { _ in [0x6E, 0x00] }),
            ("lone continuation", { _ in [0x6E, 0x80] }), ("overlong", { _ in [0xC0, 0xAF] }),
            ("surrogate", { _ in [0xED, 0xA0, 0x80] }), ("above U+10FFFF", { _ in [0xF4, 0x90, 0x80, 0x80] }),
            ("truncated", { _ in [0x6E, 0xE2, 0x82] }), ("unsorted", { position in Array((position + 1 < keys.count ? "zz" : "a").utf8) }),
            ("repeat", { position in keys[position == 0 ? 1 : position - 1] }),
        ]
        for (what, key) in bad {
            for position in 0..<keys.count {
                var page = keys
                page[position] = key(position)
                let text: [UInt8] = page.flatMap { $0 + [0x0A] }
                func message(_ body: (inout KeyRules) throws -> Void) -> String? {
                    var rules = KeyRules()
                    do { try body(&rules); try rules.finish(); return nil } catch { return (error as? ShardError)?.message ?? "\(error)" }
                }
                let keyByKey = message { rules in try text.withUnsafeBytes { try rules.feed($0) } }
                let wholePage = message { rules in
                    var starts: [UInt32] = [0]
                    try text.withUnsafeBytes { try rules.feedWhole($0, starts: &starts) }
                }
                XCTAssertNotNil(keyByKey, "\(what) at \(position)")
                XCTAssertEqual(wholePage, keyByKey, "\(what) at \(position)")
            }
        }
        // A clean page passes both, with the same key starts as its newlines give.
        let text: [UInt8] = keys.flatMap { $0 + [0x0A] }
        var rules = KeyRules()
        var starts: [UInt32] = [0]
        try text.withUnsafeBytes { try rules.feedWhole($0, starts: &starts) }
        try rules.finish()
        XCTAssertEqual(rules.count, keys.count)
        let newlines: [UInt32] = text.indices.filter { text[$0] == 0x0A }.map { UInt32($0 + 1) }
        XCTAssertEqual(starts, [0] + newlines)
    }

    func testLongKeysAreRefusedInVersion2() throws {
        let table = try KeyTable(sorting: ["a", String(repeating: "b", count: 65_536)])
        assertShardError(.badKeys, try table.encoded(version: 2))
        XCTAssertNoThrow(try table.encoded(version: 1))
    }
}
