import Interchange
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A keys text file: one key per line, lines ended by "\n" (the last newline may be missing).
///
/// Every key must be usable in a key table (Spec/FORMAT.md 5): non-empty UTF-8 without "\r" or NUL.
/// Errors name the file and the 1-based line. The lines are held as the file's bytes and offsets, not as
/// a `String` each: one epoch of an ImageNet-21k pass has 14 million of them.
struct KeyLines {
    let path: String
    /// The file's bytes, with a final "\n" added when the file lacks one.
    let text: [UInt8]
    /// Line i is `text[starts[i] ..< starts[i + 1] - 1]`; `starts.count` is the line count + 1.
    let starts: [UInt32]

    var count: Int { starts.count - 1 }

    init(path: String) throws {
        var text = try InputFile.readAll(path: path)
        if let last = text.last, last != 0x0A { text.append(0x0A) }
        guard text.count <= Int(UInt32.max) else {
            throw ConversionError("bad-keys", "the keys file is \(text.count) bytes; at most 4 GiB is supported", file: path)
        }
        self.path = path
        starts = try text.withUnsafeBytes { try Self.lineStarts($0, path: path) }
        self.text = text
    }

    /// Where each line starts, checking every line's key rules on the way.
    private static func lineStarts(_ text: UnsafeRawBufferPointer, path: String) throws -> [UInt32] {
        var starts: [UInt32] = [0]
        var start = 0
        while start < text.count {
            let end = UnsafeRawPointer(memchr(text.baseAddress! + start, 0x0A, text.count - start)!) - text.baseAddress!
            let key = UnsafeRawBufferPointer(rebasing: text[start..<end])
            func fail(_ message: String) -> ConversionError {
                ConversionError("bad-keys", message, file: path, line: starts.count)
            }
            guard !key.isEmpty else { throw fail("empty line; every line must hold a key") }
            if memchr(key.baseAddress!, 0x0D, key.count) != nil { throw fail("the key holds a carriage return (\\r); use \\n line ends") }
            if memchr(key.baseAddress!, 0, key.count) != nil { throw fail("the key holds a NUL byte") }
            guard UTF8Check.isValid(key) else { throw fail("the key is not valid UTF-8") }
            start = end + 1
            starts.append(UInt32(start))
        }
        return starts
    }

    /// The bytes of line i, without its newline, while `body` runs.
    func withLine<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try text.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[Int(starts[i])..<(Int(starts[i + 1]) - 1)])) }
    }

    /// Line i as a string (for messages, and for small files).
    func key(_ i: Int) -> String { withLine(i) { String(decoding: $0, as: UTF8.self) } }

    var keys: [String] { (0..<count).map(key) }

    /// The file's bytes for `keys`, as the official writer makes them: each key followed by "\n".
    static func encoded<Keys: Sequence<String>>(_ keys: Keys) -> [UInt8] {
        var bytes: [UInt8] = []
        for key in keys {
            bytes.append(contentsOf: key.utf8)
            bytes.append(0x0A)
        }
        return bytes
    }
}
