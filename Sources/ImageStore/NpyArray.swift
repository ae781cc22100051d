import Interchange

/// A `.npy` file's header for the importers: Interchange's ``NpyHeader`` (the project's one strict
/// `.npy` parser) plus the integer dtypes the label importer accepts.
struct NpyArray {
    let header: NpyHeader

    var descr: String { header.descr }
    var shape: [Int] { header.shape }
    var dataOffset: Int { header.dataOffset }
    var count: Int { header.count }

    /// Byte width of the integer dtypes importers accept (`|u1`, `<i8`, …), or nil.
    var integerWidth: Int? {
        let table: [String: Int] = ["|u1": 1, "|i1": 1, "<u1": 1, "<i1": 1, "<u2": 2, "<i2": 2, "<u4": 4, "<i4": 4, "<u8": 8, "<i8": 8]
        return table[descr]
    }

    var isSigned: Bool { descr.hasSuffix("i1") || descr.hasSuffix("i2") || descr.hasSuffix("i4") || descr.hasSuffix("i8") }

    init(_ bytes: UnsafeRawBufferPointer, path: String) throws {
        do {
            header = try NpyHeader(bytes: bytes)
        } catch let error as NpyFormatError {
            throw ImageStoreError(.badInput, error.message, file: path)
        }
    }
}
