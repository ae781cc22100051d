import XCTest
@testable import Interchange

final class NpyHeaderTests: XCTestCase {
    func header(_ dict: String, major: UInt8 = 1) -> [UInt8] {
        let body = Array(dict.utf8)
        var bytes = NpyHeader.magic + [major, 0]
        let count = major == 1 ? 2 : 4
        for b in 0..<count { bytes.append(UInt8(truncatingIfNeeded: body.count >> (8 * b))) }
        return bytes + body
    }

    func parse(_ bytes: [UInt8]) throws -> NpyHeader { try bytes.withUnsafeBytes { try NpyHeader(bytes: $0) } }

    func testRoundTrip() throws {
        let encoded = NpyHeader.encode(descr: "<f4", shape: [2, 3])
        XCTAssertEqual(encoded.count % 64, 0)
        let parsed = try parse(encoded)
        XCTAssertEqual(parsed.descr, "<f4")
        XCTAssertEqual(parsed.shape, [2, 3])
        XCTAssertEqual(parsed.dataOffset, encoded.count)
        XCTAssertEqual(parsed.itemSize, 4)
        XCTAssertEqual(try parse(header("{'descr': '|u1', 'fortran_order': False, 'shape': (), }", major: 2)).count, 1)
    }

    func testRejectsWhatNumpyDoesNotWrite() {
        let bad = [
            "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }",
            "{'descr': '<f4', 'shape': (2,), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1, }",
            "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }",
            "{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2,), }",
            "{'descr': 'a\\'b', 'fortran_order': False, 'shape': (2,), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x",
        ]
        for dict in bad { XCTAssertThrowsError(try parse(header(dict)), dict) }
        XCTAssertThrowsError(try parse(Array(NpyHeader.magic) + [1]), "cut preamble")
        XCTAssertThrowsError(try parse(Array(NpyHeader.magic) + [4, 0, 0, 0]), "version 4")
        XCTAssertThrowsError(try parse(Array(NpyHeader.magic) + [2, 0, 0xFF, 0xFF, 0xFF, 0x7F]), "huge header length")
        XCTAssertThrowsError(try parse(header("{'descr': '\u{E9}', 'fortran_order': False, 'shape': (2,), }")), "non-ASCII in 1.0")
    }
}

final class SafeTensorsHeaderTests: XCTestCase {
    func file(_ json: String, data: Int) -> [UInt8] {
        let body = Array(json.utf8)
        var bytes: [UInt8] = (0..<8).map { UInt8(truncatingIfNeeded: body.count >> (8 * $0)) }
        bytes += body
        return bytes + [UInt8](repeating: 0, count: data)
    }

    func parse(_ bytes: [UInt8]) throws -> SafeTensorsHeader { try bytes.withUnsafeBytes { try SafeTensorsHeader(file: $0) } }

    func testParsesEntriesAndMetadata() throws {
        let header = try parse(file(#"{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},"a":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}"#, data: 16))
        XCTAssertEqual(header.metadata, ["format": "pt"])
        XCTAssertEqual(header.entries.map(\.name), ["b", "a"])
        XCTAssertEqual(header.entries[0].shape, [2])
        XCTAssertEqual(header.dataOffset, 8 + 138)
    }

    func testRejectsInconsistentHeaders() {
        let cases: [(String, Int)] = [
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, 4),            // size disagrees with the shape
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, 8),            // a hole at the start
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, 8),            // bytes left over
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, 4),  // overlap
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, 8),  // duplicate
            (#"{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}"#, 4),          // 1.0 is not an integer
            (#"{"a":{"dtype":"X9","shape":[1],"data_offsets":[0,4]}}"#, 4),             // unknown dtype
            (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}"#, 4),            // past the data
            (#"{"__metadata__":{"x":1}}"#, 0),                                          // metadata must be strings
            (#"[1]"#, 0),
        ]
        for (json, data) in cases { XCTAssertThrowsError(try parse(file(json, data: data)), json) }
        var huge = file("{}", data: 0)
        huge[7] = 0x7F
        XCTAssertThrowsError(try parse(huge))
        XCTAssertThrowsError(try parse([1, 2, 3]))
    }
}
