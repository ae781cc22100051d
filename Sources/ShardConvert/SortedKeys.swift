import ShardFormat

/// Distinct keys in byte order, in one buffer (each key followed by "\n") with their offsets: the form a
/// key table takes (``KeyTable/init(sortedText:starts:)``). A key's position is its sample id.
struct SortedKeys {
    let text: [UInt8]
    /// Key i is `text[starts[i] ..< starts[i + 1] - 1]`.
    let starts: [UInt32]

    var count: Int { starts.count - 1 }

    /// The key table; it shares this buffer (no copy).
    func table() throws -> KeyTable {
        try KeyTable(sortedText: text, starts: starts)
    }

    /// The sample id of every line of a keys file whose keys are all here: the lines in key order, merged
    /// with the table front to back (no string, no binary search per key). A later line of a key the file
    /// already had gets ``LineIDs/repeated``.
    func ids(of lines: KeyLines) throws -> LineIDs {
        let sorted = KeySort.sortedLines(lines)
        var ids = [UInt32](repeating: LineIDs.repeated, count: lines.count)
        var repeats = 0
        try text.withUnsafeBytes { table in
            try lines.text.withUnsafeBytes { file in
                var position = 0
                var previous: UnsafeRawBufferPointer?
                for line in sorted {
                    let start = Int(lines.starts[Int(line)])
                    let key = UnsafeRawBufferPointer(rebasing: file[start..<(Int(lines.starts[Int(line) + 1]) - 1)])
                    if let previous, KeyOrder.compare(previous, key) == 0 {
                        repeats += 1
                        continue
                    }
                    previous = key
                    var order = -1
                    while position < count {
                        order = KeyOrder.compare(UnsafeRawBufferPointer(
                            rebasing: table[Int(starts[position])..<(Int(starts[position + 1]) - 1)]), key)
                        if order >= 0 { break }
                        position += 1
                    }
                    guard order == 0 else {
                        throw ConversionError.layout("the key is not in the key table built from the same file: the file changed while converting",
                                                     file: lines.path, line: Int(line) + 1)
                    }
                    ids[Int(line)] = UInt32(position)
                }
            }
        }
        return LineIDs(ids: ids, repeats: repeats)
    }
}

/// The sample id of every line of one keys file.
struct LineIDs {
    /// The id of a line that repeats an earlier line's key: no record (the official writer skips a key it
    /// already wrote, so such a line cannot be one of its records).
    static let repeated = UInt32.max

    let ids: [UInt32]
    /// Lines marked ``repeated``.
    let repeats: Int
}
