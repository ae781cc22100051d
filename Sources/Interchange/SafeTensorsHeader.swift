/// Why a safetensors file cannot be read; callers wrap it with the file name.
public struct SafeTensorsFormatError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, without the file name.
    public var message: String
    /// An error saying `message`.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// The header of a safetensors file, parsed and checked against the file size: an 8-byte little-endian
/// header length N, N bytes of JSON (the project's strict grammar, ``StrictJSON``) mapping each tensor
/// name to `{"dtype", "shape", "data_offsets": [begin, end]}` plus an optional `__metadata__` map of
/// strings, then the data. As the safetensors format requires, the entries' byte ranges must tile the
/// data exactly (no holes, no overlaps), and each range must hold exactly shape × dtype size bytes.
/// The one safetensors parser of the project; cost is linear in the header, which is capped at 100 MB.
public struct SafeTensorsHeader: Sendable {
    /// The largest header length accepted, in bytes (100 MB, as the safetensors library itself limits it).
    public static let maxHeaderLength = 100_000_000

    /// One tensor of the file: name, dtype, shape and where its bytes are.
    public struct Entry: Sendable, Equatable {
        /// The tensor's name (the header's key).
        public var name: String
        /// The safetensors dtype string, e.g. `F32`, `F16`, `BF16`, `I64`.
        public var dtype: String
        /// The tensor's dimensions; empty for a scalar.
        public var shape: [Int]
        /// Byte range inside the data (relative to ``SafeTensorsHeader/dataOffset``).
        public var begin: Int
        /// End of the byte range (exclusive), relative to ``SafeTensorsHeader/dataOffset``.
        public var end: Int
        /// Elements: the product of the shape (1 for a scalar).
        public var count: Int { shape.reduce(1, *) }
    }

    /// Entries in the header's order.
    public var entries: [Entry]
    /// The optional `__metadata__` object: string keys to string values.
    public var metadata: [String: String]
    /// Where the data starts in the file (8 + N).
    public var dataOffset: Int

    /// Bytes per element of each dtype name the format defines.
    public static let dtypeSizes: [String: Int] = [
        "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
        "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
    ]

    /// Parses the header of a whole safetensors file (`bytes` from its first byte) and checks every entry's dtype,
    /// shape and byte range against the data; throws ``SafeTensorsFormatError``.
    public init(file bytes: UnsafeRawBufferPointer) throws {
        func fail(_ message: String) -> SafeTensorsFormatError { SafeTensorsFormatError(message) }
        guard bytes.count >= 8 else { throw fail("shorter than the 8-byte header length") }
        let length = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[$1]) << (8 * UInt64($1)) }
        guard length <= UInt64(Self.maxHeaderLength) else { throw fail("header length \(length) is above \(Self.maxHeaderLength)") }
        guard length <= UInt64(bytes.count - 8) else { throw fail("header length \(length) runs past the \(bytes.count)-byte file") }
        dataOffset = 8 + Int(length)
        let document: JSONDocument
        do {
            document = try StrictJSON.parse(UnsafeRawBufferPointer(rebasing: bytes[8..<dataOffset]))
        } catch let error as JSONSyntaxError {
            throw fail("header is not JSON of the strict grammar: \(error)")
        }
        let fields = try JSONFields(document.root, fail: { fail($0) })
        guard let members = document.root.members else { throw fail("header is not a JSON object") }
        let dataLength = bytes.count - dataOffset
        metadata = [:]
        entries = []
        for (name, value) in members {
            if name == "__metadata__" {
                metadata = try fields.stringMap(name)
                continue
            }
            let entry = try JSONFields(value, path: name, fail: { fail($0) })
            let dtype = try entry.string("dtype")
            guard let size = Self.dtypeSizes[dtype] else { throw fail("entry '\(name)' has the unknown dtype \(dtype)") }
            var count = 1
            let shape = try entry.array("shape").enumerated().map { axis, dimension -> Int in
                let n = try JSONFields.integer(dimension, in: 0...(1 << 48), name: "\(name).shape[\(axis)]", fail: { fail($0) })
                let (product, overflow) = count.multipliedReportingOverflow(by: n)
                guard !overflow, product <= 1 << 56 else { throw fail("entry '\(name)' has a shape too large") }
                count = product
                return n
            }
            let offsets = try entry.array("data_offsets")
            guard offsets.count == 2 else { throw fail("entry '\(name)': data_offsets must be [begin, end]") }
            let begin = try JSONFields.integer(offsets[0], in: 0...dataLength, name: "\(name).data_offsets[0]", fail: { fail($0) })
            let end = try JSONFields.integer(offsets[1], in: begin...max(begin, dataLength), name: "\(name).data_offsets[1]", fail: { fail($0) })
            guard end <= dataLength else { throw fail("entry '\(name)' ends at \(end), past the \(dataLength) data bytes") }
            guard end - begin == count * size else {
                throw fail("entry '\(name)' holds \(end - begin) bytes; shape \(shape) of \(dtype) needs \(count * size)")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end))
        }
        // The ranges must tile the data: sorted by begin, each starts where the previous ended.
        var covered = 0
        for entry in entries.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
            guard entry.begin == covered else {
                throw fail("entry '\(entry.name)' starts at \(entry.begin); the data before it ends at \(covered) (holes and overlaps are not allowed)")
            }
            covered = entry.end
        }
        guard covered == dataLength else { throw fail("the entries cover \(covered) of the \(dataLength) data bytes") }
    }
}
