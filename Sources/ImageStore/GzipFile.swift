import CZlib

/// Whole-file reading through zlib's gz* API, which reads gzip and plain files alike (so
/// `digits.csv` and `digits.csv.gz` both work).
enum GzipFile {
    /// The whole uncompressed content; a truncated or corrupt gzip stream is an error (``GzipReader``).
    static func read(_ path: String, limit: Int = 1 << 31) throws -> [UInt8] {
        let out = try GzipReader(path).read(upTo: limit + 1)
        guard out.count <= limit else { throw ImageStoreError(.badInput, "larger than \(limit) bytes uncompressed", file: path) }
        return out
    }
}

/// Sequential reading of a gzip (or plain) file in pieces, so an importer can check a header before it
/// reads, and hold, only what the header justifies (IDX files: `IdxImport`). zlib checks each gzip
/// member's CRC-32 and length when a read reaches the member's end; a truncated or corrupt stream is an
/// error, not a short read.
final class GzipReader {
    let path: String
    private let file: gzFile

    init(_ path: String) throws {
        guard let file = gzopen(path, "rb") else { throw ImageStoreError(.io, "cannot open", file: path) }
        gzbuffer(file, 1 << 17)
        self.path = path
        self.file = file
    }

    deinit { gzclose(file) }

    /// Fills `buffer` from the stream; returns how many bytes it got (fewer only at the end of the data).
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var done = 0
        while done < buffer.count {
            let want = UInt32(min(buffer.count - done, 1 << 30))
            let n = gzread(file, buffer.baseAddress! + done, want)
            if n <= 0 {
                // gzread reports a gzip stream cut short (Z_BUF_ERROR) as a 0-byte read, not as -1: ask.
                var code: Int32 = 0
                var text = gzerror(file, &code).map { String(cString: $0) } ?? "unknown zlib error"
                if text.hasPrefix(path + ": ") { text.removeFirst(path.count + 2) }  // zlib prefixes the path
                if n < 0 || code != Z_OK { throw ImageStoreError(.badInput, "cannot decompress: \(text)", file: path) }
                break
            }
            done += Int(n)
        }
        return done
    }

    /// Up to `count` bytes: all of them, or what is left when the data ends first. Memory grows with the
    /// bytes actually read (64 KiB pieces), never with what a header claims.
    func read(upTo count: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: max(0, min(count, 1 << 16)))
        while out.count < count {
            let want = min(count - out.count, chunk.count)
            let n = try chunk.withUnsafeMutableBytes { try read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<want])) }
            out.append(contentsOf: chunk[0..<n])
            if n < want { break }
        }
        return out
    }

    /// Reads and discards up to `count` bytes; returns how many there were.
    func skip(_ count: Int) throws -> Int {
        var skipped = 0
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while skipped < count {
            let want = min(count - skipped, chunk.count)
            let n = try chunk.withUnsafeMutableBytes { try read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<want])) }
            skipped += n
            if n < want { break }
        }
        return skipped
    }

    /// True when the data ends here. Reading to the end is what makes zlib check the last gzip
    /// member's CRC-32 and length, so a corrupt trailer surfaces here as an error.
    func isAtEnd() throws -> Bool {
        var byte: UInt8 = 0
        return try withUnsafeMutableBytes(of: &byte) { try read(into: $0) } == 0
    }
}
