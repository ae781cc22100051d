import XCTest
@testable import Tensor

final class SafeTensorsTests: XCTestCase {
    func testRoundTripAndErrors() throws {
        var st = SafeTensors()
        st.tensors["a.weight"] = try Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, -6.5])
        st.integers["a.n"] = ([], [42])
        st.metadata["format"] = "pt"
        let data = st.serialized()
        let back = try SafeTensors(data: data)
        XCTAssertEqual(try back.tensor("a.weight").toArray(), [1, 2, 3, 4, 5, -6.5])
        XCTAssertEqual(try back.tensor("a.weight").shape, [2, 3])
        XCTAssertEqual(back.integers["a.n"]?.values, [42])
        XCTAssertEqual(back.metadata["format"], "pt")
        XCTAssertThrowsError(try back.tensor("nope")) { XCTAssertEqual($0 as? TensorError, .missingKey("nope")) }
        XCTAssertThrowsError(try SafeTensors(data: Data([1, 2, 3]), name: "short.safetensors"))
        var corrupt = data
        corrupt[0] = 0xFF   // header length beyond the file
        XCTAssertThrowsError(try SafeTensors(data: corrupt, name: "bad.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("bad.safetensors"))
        }
        let truncated = data.prefix(data.count - 4)
        XCTAssertThrowsError(try SafeTensors(data: truncated, name: "trunc.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("a.weight"), "\(error)")
        }
    }

    func testReadsF64() throws {
        let header = "{\"x\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}"
        var d = Data()
        var n = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &n) { d.append(contentsOf: $0) }
        d.append(Data(header.utf8))
        for v in [1.5, -2.25] { var b = v.bitPattern.littleEndian; withUnsafeBytes(of: &b) { d.append(contentsOf: $0) } }
        XCTAssertEqual(try SafeTensors(data: d).tensor("x").toArray(), [1.5, -2.25])
        let bad = d.replacingOccurrences(of: "F64", with: "BF1")
        XCTAssertThrowsError(try SafeTensors(data: bad)) { XCTAssertTrue("\($0)".contains("BF1")) }
    }
}

extension Data {
    func replacingOccurrences(of a: String, with b: String) -> Data {
        var copy = self
        if let r = copy.range(of: Data(a.utf8)) { copy.replaceSubrange(r, with: Data(b.utf8)) }
        return copy
    }
}
