import XCTest
@testable import Interchange

/// The grammar of Spec/FORMAT.md §1.1 ("JSON grammar"), rule by rule.
final class StrictJSONTests: XCTestCase {
    func parse(_ text: String) throws -> JSONDocument { try StrictJSON.parse(Array(text.utf8)) }
    func parse(bytes: [UInt8]) throws -> JSONDocument { try StrictJSON.parse(bytes) }

    func assertRejects(_ bytes: [UInt8], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(bytes: bytes), what, file: file, line: line) { error in
            XCTAssertTrue(error is JSONSyntaxError, what, file: file, line: line)
        }
    }

    func assertRejects(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
        assertRejects(Array(text.utf8), text, file: file, line: line)
    }

    func testAcceptsRFC8259() throws {
        let doc = try parse(#" { "a" : [1, -0, 2.5e-3, true, false, null, "x\u00e9\ud83d\ude00\n"], "b": {} } "#)
        let a = try XCTUnwrap(doc.root.member("a")?.array)
        XCTAssertEqual(a.count, 7)
        XCTAssertEqual(a[0].integer, 1)
        XCTAssertEqual(a[1].integer, 0)
        XCTAssertTrue(a[1].isIntegerToken)
        XCTAssertEqual(a[2].number, 2.5e-3)
        XCTAssertFalse(a[2].isIntegerToken)
        XCTAssertEqual(a[3].bool, true)
        XCTAssertEqual(a[4].bool, false)
        XCTAssertTrue(a[5].isNull)
        XCTAssertEqual(a[6].string, "x\u{E9}\u{1F600}\n")
        XCTAssertEqual(doc.root.member("b")?.members?.count, 0)
        XCTAssertNil(doc.root.member("c"))
    }

    func testIntegersAreIntegerTokensOnly() throws {
        for text in ["1.0", "1e3", "0e5", "1.5e1", "1E2"] {
            let value = try parse(text).root
            XCTAssertFalse(value.isIntegerToken, text)
            XCTAssertNil(value.integer, text)
            XCTAssertNotNil(value.number, text)
        }
        XCTAssertNil(try parse("99999999999999999999").root.integer, "beyond 64 bits is no Int")
        XCTAssertEqual(try parse("1e400").root.number, .infinity)
    }

    func testRejectsNumberForms() {
        for text in ["01", "-", "1.", ".5", "+1", "1e", "1e+", "NaN", "Infinity", "-Infinity", "0x10", "1_0"] { assertRejects(text) }
    }

    func testRejectsDuplicateNamesAfterUnescaping() throws {
        assertRejects(#"{"a":1,"a":2}"#)
        assertRejects(#"{"k":1,"\u006b":2}"#)
        assertRejects(#"{"x":{"é":1,"\u00e9":2}}"#)
        // Different bytes are different names, even when Unicode calls them equivalent.
        let doc = try parse("{\"caf\u{E9}\":1,\"cafe\u{301}\":2}")
        XCTAssertEqual(doc.root.members?.count, 2)
        XCTAssertEqual(doc.root.member("caf\u{E9}")?.integer, 1)
        XCTAssertEqual(doc.root.member("cafe\u{301}")?.integer, 2)
    }

    func testRejectsEncodingsOtherThanUTF8() {
        assertRejects([0xEF, 0xBB, 0xBF] + Array("{}".utf8), "BOM")
        let utf16: [UInt8] = Array("{\"a\":1}".utf16).flatMap { (unit: UInt16) -> [UInt8] in [UInt8(unit & 0xFF), UInt8(unit >> 8)] }
        assertRejects(utf16, "UTF-16LE")
        assertRejects([0xFF, 0xFE] + utf16, "UTF-16LE with BOM")
        let utf32: [UInt8] = Array("{}".unicodeScalars).flatMap { (scalar: Unicode.Scalar) -> [UInt8] in [UInt8(scalar.value), 0, 0, 0] }
        assertRejects(utf32, "UTF-32LE")
        assertRejects(Array("\"".utf8) + [0xC0, 0x80] + Array("\"".utf8), "overlong NUL")
        assertRejects(Array("\"".utf8) + [0xED, 0xA0, 0x80] + Array("\"".utf8), "encoded surrogate")
        assertRejects(Array("\"".utf8) + [0xF4, 0x90, 0x80, 0x80] + Array("\"".utf8), "above U+10FFFF")
        assertRejects(Array("\"".utf8) + [0xE2, 0x82] + Array("\"".utf8), "truncated sequence")
    }

    func testRejectsLoneSurrogates() {
        for text in [#""\ud800""#, #""\udc00""#, #""\ud800\u0041""#, #""\udc00\ud800""#, #""\ud800x""#] { assertRejects(text) }
    }

    func testRejectsOtherSyntax() {
        for text in ["", " ", "{", "{\"a\":1,}", "[1,]", "[1 2]", "{'a':1}", "{\"a\" 1}", "{} {}", "\"a\u{1}\"",
                     "\"\\x\"", "\"\\u12\"", "tru", "nul", "[1]x", "{\"a\":1}\u{0}"] {
            assertRejects(text)
        }
    }

    func testDepthLimit() throws {
        let ok = String(repeating: "[", count: StrictJSON.maxDepth) + String(repeating: "]", count: StrictJSON.maxDepth)
        XCTAssertNoThrow(try parse(ok))
        let deep = "[" + ok + "]"
        assertRejects(deep)
        assertRejects(String(repeating: "[", count: 100_000))
    }

    func testFieldsApplyTypesAndRanges() throws {
        struct Failure: Error { let message: String }
        let doc = try parse(#"{"n": 3, "f": 3.0, "s": "x", "b": true, "o": {"p": "q"}, "m": {"x": 1}}"#)
        let fields = try JSONFields(doc.root, fail: { Failure(message: $0) })
        XCTAssertEqual(try fields.integer("n", in: 0...3), 3)
        XCTAssertThrowsError(try fields.integer("n", in: 0...2))
        XCTAssertThrowsError(try fields.integer("f", in: 0...10)) { XCTAssertTrue(($0 as! Failure).message.contains("3.0")) }
        XCTAssertEqual(try fields.number("f"), 3)
        XCTAssertEqual(try fields.number("n"), 3)
        XCTAssertThrowsError(try fields.string("n"))
        XCTAssertEqual(try fields.bool("b"), true)
        XCTAssertEqual(try fields.stringMap("o"), ["p": "q"])
        XCTAssertThrowsError(try fields.stringMap("m"))
        XCTAssertThrowsError(try fields.integer("missing", in: 0...1)) { XCTAssertTrue(($0 as! Failure).message.contains("missing")) }
    }

    func testCostIsLinear() throws {
        // 1 MiB of small values parses without a deep stack or quadratic work.
        let wide = "[" + Array(repeating: "0", count: 500_000).joined(separator: ",") + "]"
        XCTAssertEqual(try parse(wide).root.array?.count, 500_000)
        let members = "{" + (0..<50_000).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + "}"
        XCTAssertEqual(try parse(members).root.members?.count, 50_000)
    }
}
