/// A keys text file: one key per line, lines ended by "\n" (the last newline may be missing).
///
/// Every key must be usable in a key table (Spec/FORMAT.md 5): non-empty UTF-8 without "\r" or NUL.
/// Errors name the file and the 1-based line.
enum KeyLines {
    static func read(path: String) throws -> [String] {
        let bytes = try InputFile.readAll(path: path)
        var keys: [String] = []
        var start = 0
        var line = 1
        while start < bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != 0x0A { end += 1 }
            keys.append(try key(bytes[start..<end], path: path, line: line))
            start = end + 1
            line += 1
        }
        return keys
    }

    private static func key(_ bytes: ArraySlice<UInt8>, path: String, line: Int) throws -> String {
        func fail(_ message: String) -> ConversionError { ConversionError("bad-keys", message, file: path, line: line) }
        guard !bytes.isEmpty else { throw fail("empty line; every line must hold a key") }
        if bytes.contains(0x0D) { throw fail("the key holds a carriage return (\\r); use \\n line ends") }
        if bytes.contains(0) { throw fail("the key holds a NUL byte") }
        guard let key = String(validating: bytes, as: UTF8.self) else { throw fail("the key is not valid UTF-8") }
        return key
    }

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
