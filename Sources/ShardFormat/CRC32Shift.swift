import CZlib

/// CRC-32 of any byte range from prefix CRCs, in O(log length): crc(B) = crc(A‖B) ⊕ shift(crc(A), |B|),
/// where shift (zlib's `crc32_combine(c, 0, n)`) is linear over GF(2). It lets the salvage scan check
/// the payload checksums of many overlapping candidate blocks with one pass over the file instead of
/// one pass per candidate (which made it quadratic on hostile files).
///
/// shift by 2^k bytes is tabulated as four 256-entry byte tables per k (built from zlib itself, so the
/// tables cannot disagree with the checksum the spec names); shifting by n applies the tables of n's set bits.
enum CRC32Shift {
    private static let levels = 48
    /// tables[k][256 · byte + value]: the shift by 2^k bytes of `value` placed in byte `byte`.
    private static let tables: [[UInt32]] = (0..<levels).map { k in
        var table = [UInt32](repeating: 0, count: 4 * 256)
        let length = Int64(1) << Int64(k)
        var basis = [UInt32](repeating: 0, count: 32)
        for bit in 0..<32 { basis[bit] = UInt32(truncatingIfNeeded: crc32_combine(uLong(UInt32(1) << UInt32(bit)), 0, Int(length))) }
        for byte in 0..<4 {
            for value in 0..<256 {
                var out: UInt32 = 0
                for bit in 0..<8 where value & (1 << bit) != 0 { out ^= basis[8 * byte + bit] }
                table[256 * byte + value] = out
            }
        }
        return table
    }

    /// `crc` (the CRC-32 of some bytes A) shifted as if `count` zero-information bytes followed: the
    /// term crc(A) contributes to crc(A‖B).
    static func shift(_ crc: UInt32, by count: Int) -> UInt32 {
        var c = crc
        var n = count
        var k = 0
        while n > 0 && k < levels {
            if n & 1 != 0 {
                tables[k].withUnsafeBufferPointer { t in
                    c = t[Int(c & 0xFF)] ^ t[256 + Int((c >> 8) & 0xFF)] ^ t[512 + Int((c >> 16) & 0xFF)] ^ t[768 + Int(c >> 24)]
                }
            }
            n >>= 1
            k += 1
        }
        return c
    }

    /// CRC-32 of bytes [s, e) given the CRC-32s of [base, s) and [base, e).
    static func range(prefixToStart: UInt32, prefixToEnd: UInt32, length: Int) -> UInt32 {
        prefixToEnd ^ shift(prefixToStart, by: length)
    }
}
