import Interchange

/// A `.npy` file read row by row (a row is everything past the first axis), so that a large array is
/// never held whole. The file size must match the header's shape exactly.
public final class NpyReader {
    /// The file's path, as opened.
    public let path: String
    /// The parsed header.
    public let header: NpyHeader
    private let file: InputFile
    private var nextRow = 0

    /// Opens `path` and checks its header, dtype and size; throws ``ConversionError`` naming the file otherwise.
    public init(path: String) throws {
        self.path = path
        file = try InputFile(path: path)
        let file = self.file
        do {
            header = try NpyHeader.parse { count in try file.read(count: min(count, max(0, file.size - file.offset))) }
        } catch let error as NpyFormatError {
            throw ConversionError.npy(error.message, file: path)
        }
        guard let dtype = header.dtype else {
            let hint = header.descr.hasPrefix(">") ? " (big-endian; save it as little-endian)" : ""
            throw ConversionError.npy("dtype '\(header.descr)'\(hint) is not supported; need '<f4' (float32), '<i4' (int32) or '|u1' (uint8)",
                                      file: path)
        }
        self.dtype = dtype
        let dataBytes = header.count * dtype.size
        let expected = header.dataOffset + dataBytes
        guard file.size >= expected else {
            throw ConversionError.npy("truncated: the shape \(header.shape) needs \(dataBytes) bytes of data, the file holds \(file.size - header.dataOffset)",
                                      file: path)
        }
        guard file.size == expected else {
            throw ConversionError.npy("\(file.size - expected) bytes follow the array data of shape \(header.shape)", file: path)
        }
    }

    /// The array's dimensions.
    public var shape: [Int] { header.shape }
    /// The element type (one of the four this project reads).
    public let dtype: NpyDType
    /// Size of the first axis (1 for a 0-d array).
    public var rows: Int { header.shape.first ?? 1 }
    /// Elements per row.
    public var rowLength: Int { header.shape.dropFirst().reduce(1, *) }

    /// Checks the dtype and shape; `nil` in `shape` accepts any size on that axis.
    public func require(_ dtype: NpyDType, shape expected: [Int?], what: String) throws {
        let matches = header.shape.count == expected.count && zip(header.shape, expected).allSatisfy { $1 == nil || $0 == $1 }
        guard self.dtype == dtype, matches else {
            let wanted = "(" + expected.map { $0.map(String.init) ?? "*" }.joined(separator: ", ") + (expected.count == 1 ? ",)" : ")")
            throw ConversionError.npy("\(what) must be \(dtype.rawValue) of shape \(wanted); this file is \(self.dtype.rawValue) of shape \(header.shape)",
                                      file: path)
        }
    }

    /// Reads the next `count` rows into `buffer` (count × rowLength elements of the file's dtype).
    public func readRows<T: BitwiseCopyable>(_ count: Int, into buffer: inout [T]) throws {
        guard MemoryLayout<T>.size == dtype.size else {
            throw ConversionError.npy("cannot read \(dtype.rawValue) elements as \(T.self)", file: path)
        }
        guard count >= 0, nextRow + count <= rows else {
            throw ConversionError.npy("asked for rows \(nextRow)..<\(nextRow + count) of \(rows)", file: path)
        }
        let elements = count * rowLength
        if buffer.count != elements { buffer = Array(unsafeUninitializedCapacity: elements) { _, n in n = elements } }
        if elements > 0 { try buffer.withUnsafeMutableBytes { try file.readExactly(into: $0) } }
        nextRow += count
    }

    /// The whole array (for small arrays: keys' augmentation codes, tests).
    public func readAll<T: BitwiseCopyable>(as type: T.Type = T.self) throws -> [T] {
        var values: [T] = []
        try readRows(rows - nextRow, into: &values)
        return values
    }
}
