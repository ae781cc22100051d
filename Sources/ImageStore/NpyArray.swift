/// A `.npy` file's header (format 1.0–3.0), parsed strictly enough for importing: the dtype string, the
/// shape, Fortran order, and where the data starts. Only the dictionary literal numpy writes is accepted.
struct NpyArray {
    var descr: String
    var shape: [Int]
    var dataOffset: Int

    var count: Int { shape.reduce(1, *) }

    /// Byte width of the integer dtypes importers accept (`|u1`, `<i8`, …), or nil.
    var integerWidth: Int? {
        let table: [String: Int] = ["|u1": 1, "|i1": 1, "<u1": 1, "<i1": 1, "<u2": 2, "<i2": 2, "<u4": 4, "<i4": 4, "<u8": 8, "<i8": 8]
        return table[descr]
    }

    var isSigned: Bool { descr.hasSuffix("i1") || descr.hasSuffix("i2") || descr.hasSuffix("i4") || descr.hasSuffix("i8") }

    init(_ bytes: UnsafeRawBufferPointer, path: String) throws {
        func fail(_ message: String) -> ImageStoreError { ImageStoreError(.badInput, message, file: path) }
        guard bytes.count >= 10, Array(bytes.prefix(6)) == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] else {
            throw fail("not a .npy file (no \\x93NUMPY magic)")
        }
        let major = bytes[6]
        guard (1...3).contains(major) else { throw fail("npy format version \(major).\(bytes[7]) is not supported") }
        let lengthSize = major == 1 ? 2 : 4
        guard bytes.count >= 8 + lengthSize else { throw fail("file ends inside the header length") }
        let length = major == 1 ? Int(bytes.le(8, as: UInt16.self)) : Int(bytes.le(8, as: UInt32.self))
        let start = 8 + lengthSize
        guard length <= bytes.count - start else { throw fail("file ends inside the header") }
        let text = String(decoding: bytes[start..<(start + length)], as: UTF8.self)
        guard let descr = Self.value(of: "descr", in: text).flatMap(Self.quoted) else { throw fail("header has no descr string") }
        guard let fortran = Self.value(of: "fortran_order", in: text) else { throw fail("header has no fortran_order") }
        guard fortran.hasPrefix("False") else { throw fail("Fortran-order arrays are not supported; save with np.ascontiguousarray") }
        guard let shapeText = Self.value(of: "shape", in: text), shapeText.hasPrefix("("), let close = shapeText.firstIndex(of: ")") else {
            throw fail("header has no shape tuple")
        }
        let inner = shapeText[shapeText.index(after: shapeText.startIndex)..<close]
        var shape: [Int] = []
        for part in inner.split(separator: ",") {
            let trimmed = part.trimmed(" ")
            if trimmed.isEmpty { continue }
            guard let n = Int(trimmed), n >= 0 else { throw fail("shape entry \"\(trimmed)\" is not a size") }
            shape.append(n)
        }
        var total = 1
        for n in shape {
            let (product, overflow) = total.multipliedReportingOverflow(by: n)
            guard !overflow else { throw fail("shape \(shape) is too large") }
            total = product
        }
        self.descr = descr
        self.shape = shape
        self.dataOffset = start + length
    }

    /// The text after `'key':` up to the end of the header.
    private static func value(of key: String, in text: String) -> String? {
        guard let range = text.range(of: "'\(key)':") else { return nil }
        return String(text[range.upperBound...]).trimmed(" ")
    }

    private static func quoted(_ text: String) -> String? {
        guard text.first == "'", let end = text.dropFirst().firstIndex(of: "'") else { return nil }
        return String(text[text.index(after: text.startIndex)..<end])
    }
}

extension StringProtocol {
    /// The text without leading and trailing `character`s.
    func trimmed(_ character: Character) -> String {
        var s = Substring(self)
        while s.first == character { s = s.dropFirst() }
        while s.last == character { s = s.dropLast() }
        return String(s)
    }
}
