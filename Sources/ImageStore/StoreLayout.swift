import CZlib
import TinyShardBase

/// The byte layout of Spec/IMAGESTORE.md: header fields, index entries and the rules that tie them
/// together, shared by the writer and the reader so they cannot drift apart.
enum StoreLayout {
    static let magic: [UInt8] = Array("TSIM".utf8)
    /// Raw stores are version 1.0 (every version-1 reader reads them); JPEG stores are 2.0.
    static let rawMajorVersion: UInt16 = 1
    static let jpegMajorVersion: UInt16 = 2
    static let minorVersion: UInt16 = 0
    /// Header offset 36 of a version-2 store.
    static let jpegEncodingCode: UInt32 = 1
    static let headerSize = 64
    static let entrySize = 32
    static let channels: UInt16 = 3
    static let noLabel: Int32 = -1
    static let maxKeyLength = 65535

    /// The 64-byte header, decoded.
    struct Header: Equatable {
        var kind: StoreKind
        var count: UInt32
        var classCount: UInt32
        var indexOffset: UInt64
        var keyBytes: UInt32
        var classNameBytes: UInt32
        var metadataCRC: UInt32

        var metadataSize: Int { Int(count) * StoreLayout.entrySize + Int(keyBytes) + Int(classNameBytes) }

        func encoded() -> [UInt8] {
            var bytes = StoreLayout.magic
            bytes.appendLE(kind == .raw ? StoreLayout.rawMajorVersion : StoreLayout.jpegMajorVersion)
            bytes.appendLE(StoreLayout.minorVersion)
            bytes.appendLE(count)
            bytes.appendLE(classCount)
            bytes.appendLE(indexOffset)
            bytes.appendLE(keyBytes)
            bytes.appendLE(classNameBytes)
            bytes.appendLE(metadataCRC)
            bytes.appendLE(kind == .raw ? 0 : StoreLayout.jpegEncodingCode)  // flags (v1) / encoding (v2)
            bytes += [UInt8](repeating: 0, count: 20)       // reserved
            bytes.appendLE(CRC32.checksum(bytes))
            assert(bytes.count == StoreLayout.headerSize)
            return bytes
        }
    }

    /// One 32-byte index entry, decoded.
    struct Entry: Equatable {
        var dataOffset: UInt64
        var width: UInt16
        var height: UInt16
        var label: Int32
        var keyOffset: UInt32
        var keyLength: UInt16
        /// CRC-32 of the stored bytes (pixels or JPEG).
        var dataCRC: UInt32
        /// Bytes 28-31: 0 in a raw store, the JPEG's length in a JPEG store.
        var storedLength: UInt32

        func encoded() -> [UInt8] {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(StoreLayout.entrySize)
            bytes.appendLE(dataOffset)
            bytes.appendLE(width)
            bytes.appendLE(height)
            bytes.appendLE(UInt32(bitPattern: label))
            bytes.appendLE(keyOffset)
            bytes.appendLE(keyLength)
            bytes.appendLE(StoreLayout.channels)
            bytes.appendLE(dataCRC)
            bytes.appendLE(storedLength)
            return bytes
        }
    }

    /// A key is valid if non-empty, at most 65,535 bytes, valid UTF-8 without `\n`, `\r` or NUL (the
    /// key-table rule of Spec/FORMAT.md §5, so a store's keys can become a dataset's key table). Class
    /// names follow the same rule; `what` names the thing in the message.
    static func keyProblem(_ bytes: UnsafeRawBufferPointer, what: String = "key") -> String? {
        if bytes.isEmpty { return "a \(what) must not be empty" }
        if bytes.count > maxKeyLength { return "a \(what) is at most \(maxKeyLength) bytes, got \(bytes.count)" }
        if bytes.contains(where: { $0 == 0x0A || $0 == 0x0D || $0 == 0 }) { return "a \(what) must not contain \\n, \\r or NUL" }
        if String(validating: bytes, as: UTF8.self) == nil { return "a \(what) must be valid UTF-8" }
        return nil
    }

    static func classNameProblem(_ name: String) -> String? {
        Array(name.utf8).withUnsafeBytes { keyProblem($0, what: "class name") }
    }

    /// Byte-wise order of UTF-8 strings (memcmp, shorter prefix first).
    static func precedes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        let n = min(a.count, b.count)
        if n > 0 {
            let c = memcmp(a.baseAddress!, b.baseAddress!, n)
            if c != 0 { return c < 0 }
        }
        return a.count < b.count
    }
}

extension Array where Element == UInt8 {
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        var v = value.littleEndian
        Swift.withUnsafeBytes(of: &v) { append(contentsOf: $0) }
    }
}

extension UnsafeRawBufferPointer {
    /// A little-endian integer at any (unaligned) offset; the caller has checked the bounds.
    @inline(__always)
    func le<T: FixedWidthInteger>(_ offset: Int, as: T.Type = T.self) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
