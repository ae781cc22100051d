import CZlib

/// One zlib deflate stream with a fixed strategy (Z_RLE or Z_HUFFMAN_ONLY), reset, not rebuilt, for
/// each section it compresses: setting a stream up allocates and clears ~300 KB, more than a small
/// block's sections.
///
/// Not thread-safe: one per block encoder.
final class SectionDeflater {
    // zlib keeps a pointer back to the z_stream in its state and checks it: the struct must not move.
    private let stream: UnsafeMutablePointer<z_stream>
    private let huffmanOnly: Bool

    /// - Parameter strategy: Z_RLE or Z_HUFFMAN_ONLY.
    init(strategy: Int32) {
        precondition(strategy == Z_RLE || strategy == Z_HUFFMAN_ONLY, "a section deflater is RLE or Huffman-only")
        huffmanOnly = strategy == Z_HUFFMAN_ONLY
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // The level is ignored by these strategies (zlib picks its RLE or Huffman-only coder for any level
        // above 0). Only an out-of-memory or a bad constant can fail here, never the data.
        guard deflateInit2_(stream, 6, Z_DEFLATED, MAX_WBITS, 8, strategy, ZLIB_VERSION,
                            Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            preconditionFailure("zlib deflateInit2 failed")
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// True for Huffman-only, whose bound is a byte count; an RLE bound replays zlib's parse.
    var hasCheapBound: Bool { huffmanOnly }

    /// A length this stream cannot go below for `input` (``DeflateBound``).
    func lowerBound(_ input: UnsafeRawBufferPointer, planeEnds: [Int]) -> Int {
        huffmanOnly ? DeflateBound.huffmanOnly(input, planeEnds: planeEnds) : DeflateBound.rle(input, planeEnds: planeEnds)
    }

    /// Compresses `input` into one zlib stream in `output`, ending a deflate block (Z_BLOCK) at each of
    /// `planeEnds` so that every byte plane gets its own Huffman table (~5% smaller class-index sections at
    /// K = 100). Returns the stream's length, or nil when it does not fit in `output`: a caller that gives
    /// room for one byte less than the stored section stops as soon as zlib cannot win.
    func compress(_ input: UnsafeRawBufferPointer, planeEnds: [Int], into output: UnsafeMutableRawBufferPointer) -> Int? {
        guard let inputBase = input.baseAddress, let outputBase = output.baseAddress, output.count > 0 else { return nil }
        guard deflateReset(stream) == Z_OK else { preconditionFailure("zlib deflateReset failed") }
        stream.pointee.next_out = outputBase.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_out = uInt(output.count)
        var start = 0
        for (number, end) in planeEnds.enumerated() {
            let last = number == planeEnds.count - 1
            // An empty plane (the later-values planes at K = 1) has nothing to end: a second Z_BLOCK
            // without new input makes no progress and deflate returns Z_BUF_ERROR.
            if end == start && !last { continue }
            stream.pointee.next_in = UnsafeMutablePointer(mutating: (inputBase + start).assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(end - start)
            let status = deflate(stream, last ? Z_FINISH : Z_BLOCK)
            if last {
                guard status == Z_STREAM_END else { return nil }  // out of room
            } else {
                // With room left, deflate returns only once the plane is consumed and its block ended.
                guard status == Z_OK || status == Z_BUF_ERROR, stream.pointee.avail_out > 0, stream.pointee.avail_in == 0 else {
                    return nil
                }
            }
            start = end
        }
        return output.count - Int(stream.pointee.avail_out)
    }
}

/// One-shot zlib (RFC 1950) compression.
enum Zlib {
    /// One zlib stream of `input` (the bytes compress2 makes), written a chunk at a time into reserved
    /// space rather than into a zeroed compressBound-sized array: for the key table of an ImageNet-21k
    /// pass that bound is ~240 MB for a ~60 MB stream.
    static func compress(_ input: UnsafeRawBufferPointer, level: Int32 = 6) -> [UInt8] {
        // zlib keeps a pointer back to the z_stream in its state: the struct must not move.
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer { stream.deallocate() }
        // Only an out-of-memory or a bad level can fail here, never the data.
        guard deflateInit_(stream, level, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            preconditionFailure("zlib deflateInit failed")
        }
        defer { deflateEnd(stream) }
        let chunkSize = 1 << 20
        var output: [UInt8] = []
        // Reserved, not touched: pages the stream never reaches cost no memory, and the array is never
        // copied to grow.
        output.reserveCapacity(Int(deflateBound(stream, uLong(input.count))))
        var fed = 0
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: chunkSize) { chunk in
            var status = Z_OK
            while status != Z_STREAM_END {
                // avail_in is 32-bit: feed a huge input in slices.
                if stream.pointee.avail_in == 0, fed < input.count {
                    let slice = min(input.count - fed, 1 << 30)
                    stream.pointee.next_in = UnsafeMutablePointer(mutating: (input.baseAddress! + fed).assumingMemoryBound(to: Bytef.self))
                    stream.pointee.avail_in = uInt(slice)
                    fed += slice
                }
                stream.pointee.next_out = chunk.baseAddress!
                stream.pointee.avail_out = uInt(chunkSize)
                status = deflate(stream, fed == input.count ? Z_FINISH : Z_NO_FLUSH)
                precondition(status == Z_OK || status == Z_STREAM_END, "zlib deflate failed with status \(status)")
                output.append(contentsOf: chunk[0..<(chunkSize - Int(stream.pointee.avail_out))])
            }
        }
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
