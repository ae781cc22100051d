/// Appends little-endian fields to a byte array (the writer side of every structure in the spec).
struct ByteWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func append(_ other: [UInt8]) { bytes.append(contentsOf: other) }
    mutating func append(_ other: UnsafeRawBufferPointer) { bytes.append(contentsOf: other) }
}

/// Reads little-endian fields from untrusted bytes. Every read is bounds-checked and fails with a
/// `ShardError` of the caller's chosen code instead of trapping.
struct ByteReader {
    let base: UnsafeRawBufferPointer
    private(set) var offset: Int
    let failure: ShardErrorCode

    init(_ base: UnsafeRawBufferPointer, offset: Int = 0, failure: ShardErrorCode) {
        self.base = base
        self.offset = offset
        self.failure = failure
    }

    var remaining: Int { base.count - offset }

    private mutating func take(_ count: Int, _ what: @autoclosure () -> String) throws -> Int {
        guard count >= 0, count <= base.count - offset else {
            throw ShardError(failure, "\(what()) at offset \(offset) runs past the end (\(base.count) bytes)")
        }
        defer { offset += count }
        return offset
    }

    mutating func u8(_ what: @autoclosure () -> String = "field") throws -> UInt8 {
        base[try take(1, what())]
    }
    mutating func u16(_ what: @autoclosure () -> String = "field") throws -> UInt16 {
        UInt16(littleEndian: base.loadUnaligned(fromByteOffset: try take(2, what()), as: UInt16.self))
    }
    mutating func u32(_ what: @autoclosure () -> String = "field") throws -> UInt32 {
        UInt32(littleEndian: base.loadUnaligned(fromByteOffset: try take(4, what()), as: UInt32.self))
    }
    mutating func u64(_ what: @autoclosure () -> String = "field") throws -> UInt64 {
        UInt64(littleEndian: base.loadUnaligned(fromByteOffset: try take(8, what()), as: UInt64.self))
    }
    mutating func bytes(_ count: Int, _ what: @autoclosure () -> String = "bytes") throws -> UnsafeRawBufferPointer {
        let start = try take(count, what())
        return UnsafeRawBufferPointer(rebasing: base[start..<(start + count)])
    }
}

extension UnsafeRawBufferPointer {
    func u32(at offset: Int) -> UInt32 { UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
    func u64(at offset: Int) -> UInt64 { UInt64(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
}
