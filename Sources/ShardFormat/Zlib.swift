import CZlib

/// CRC-32 as zlib computes it (the spec's checksum everywhere).
public enum CRC32 {
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

    public static func checksum(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: crc) }
    }

    /// The 8-lowercase-hex-digit form the manifest uses.
    public static func hex(_ crc: UInt32) -> String {
        let digits = String(crc, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }
}

/// One-shot zlib (RFC 1950) compression of section payloads.
enum Zlib {
    /// Compresses `parts` into one zlib stream, ending a deflate block after each part (Z_BLOCK) so that
    /// each byte plane gets its own Huffman table: ~5% smaller class-index sections at K = 100.
    static func compress(parts: [UnsafeRawBufferPointer], level: Int32) -> [UInt8] {
        var stream = z_stream()
        // Z_FILTERED: favour Huffman coding over string matching; the byte planes hold few repeats.
        guard deflateInit2_(&stream, level, Z_DEFLATED, MAX_WBITS, 8, Z_FILTERED, ZLIB_VERSION,
                            Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            preconditionFailure("zlib deflateInit failed")
        }
        defer { deflateEnd(&stream) }
        let total = parts.reduce(0) { $0 + $1.count }
        // Bound plus room for the per-part block ends.
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(total))) + 16 * parts.count + 64)
        let produced: Int = output.withUnsafeMutableBytes { out in
            stream.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(out.count)
            for (number, part) in parts.enumerated() {
                // An empty part (the later-values planes at K = 1) has nothing to end: a second Z_BLOCK
                // without new input makes no progress and deflate returns Z_BUF_ERROR.
                if part.count == 0 && number != parts.count - 1 { continue }
                stream.next_in = UnsafeMutablePointer(mutating: part.baseAddress?.assumingMemoryBound(to: Bytef.self))
                stream.avail_in = uInt(part.count)
                let flush = number == parts.count - 1 ? Z_FINISH : Z_BLOCK
                let status = deflate(&stream, flush)
                precondition(status == (flush == Z_FINISH ? Z_STREAM_END : Z_OK) && stream.avail_in == 0,
                             "zlib deflate failed with status \(status)")
            }
            return out.count - Int(stream.avail_out)
        }
        output.removeLast(output.count - produced)
        return output
    }

    static func compress(_ input: UnsafeRawBufferPointer, level: Int32 = 6) -> [UInt8] {
        var bound = compressBound(uLong(input.count))
        var output = [UInt8](repeating: 0, count: Int(bound))
        let status = output.withUnsafeMutableBytes { out in
            compress2(out.baseAddress!.assumingMemoryBound(to: Bytef.self), &bound,
                      input.baseAddress?.assumingMemoryBound(to: Bytef.self), uLong(input.count), level)
        }
        // compress2 only fails on a too-small buffer or bad level, both impossible here.
        precondition(status == Z_OK, "zlib compress2 failed with status \(status)")
        output.removeLast(output.count - Int(bound))
        return output
    }

    /// Inflates `input` into exactly `output.count` bytes; returns false when the stream is damaged or
    /// does not decode to exactly that many bytes.
    static func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Bool {
        if output.count == 0 {
            // zlib refuses a null output pointer; inflate an empty stream into a scratch byte instead.
            var scratch: UInt8 = 0
            return withUnsafeMutableBytes(of: &scratch) { inflateExactly(input, into: $0, expected: 0) }
        }
        return inflateExactly(input, into: output, expected: output.count)
    }

    private static func inflateExactly(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                                       expected: Int) -> Bool {
        var stream = z_stream()
        guard inflateInit_(&stream, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return false }
        defer { inflateEnd(&stream) }
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        stream.next_out = output.baseAddress?.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = uInt(output.count)
        let status = inflate(&stream, Z_FINISH)
        // Z_STREAM_END with every input byte used and the output exactly full: nothing more, nothing less.
        return status == Z_STREAM_END && output.count - Int(stream.avail_out) == expected && stream.avail_in == 0
    }
}
