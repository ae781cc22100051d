import CZlib

/// CRC-32 as zlib computes it (the spec's checksum everywhere).
public enum CRC32 {
    /// The CRC-32 of `bytes`, continuing `crc` (the CRC of the bytes before them; 0 to start).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        var value = UInt(crc)
        var pointer = base.assumingMemoryBound(to: UInt8.self)
        var remaining = bytes.count
        // zlib's length argument is a 32-bit uInt; feed huge buffers in slices.
        while remaining > 0 {
            let chunk = min(remaining, 1 << 30)
            value = crc32(value, pointer, uInt(chunk))
            pointer += chunk
            remaining -= chunk
        }
        return UInt32(truncatingIfNeeded: value)
    }

    /// The CRC-32 of `bytes`, continuing `crc`; see ``checksum(_:continuing:)-(UnsafeRawBufferPointer,_)``.
    public static func checksum(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: crc) }
    }

    /// The 8-lowercase-hex-digit form the manifest uses.
    public static func hex(_ crc: UInt32) -> String {
        let digits = String(crc, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }
}
