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

    /// The sample id of every line of a keys file whose keys are all here: each piece of the file's lines
    /// (``KeySort``) in key order, found in the table by a galloping search forward from the previous
    /// key's place (no string, no full binary search per key). A later line of a key the file already
    /// had gets ``LineIDs/repeated``.
    func ids(of lines: KeyLines, pieceLines: Int = KeySort.pieceLines) throws -> LineIDs {
        var ids = [UInt32](repeating: LineIDs.repeated, count: lines.count)
        var repeats = 0
        // Pieces come in line order and a piece's equal keys by line, so the first line of a key is met
        // first and later ones find its id taken.
        var taken = SampleSet(capacity: count)
        try text.withUnsafeBytes { table in
            try lines.text.withUnsafeBytes { file in
                for piece in KeySort.pieces(lines, size: pieceLines) {
                    var position = 0
                    for line in KeySort.sortedLines(lines, piece) {
                        let start = Int(lines.starts[Int(line)])
                        let key = UnsafeRawBufferPointer(rebasing: file[start..<(Int(lines.starts[Int(line) + 1]) - 1)])
                        position = lowerBound(of: key, from: position, in: table)
                        guard position < count, KeyOrder.compare(self.key(position, in: table), key) == 0 else {
                            throw ConversionError.layout("the key is not in the key table built from the same file: the file changed while converting",
                                                         file: lines.path, line: Int(line) + 1)
                        }
                        if taken.insert(UInt32(position)) {
                            ids[Int(line)] = UInt32(position)
                        } else {
                            repeats += 1
                        }
                    }
                }
            }
        }
        return LineIDs(ids: ids, repeats: repeats)
    }

    private func key(_ i: Int, in table: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: table[Int(starts[i])..<(Int(starts[i + 1]) - 1)])
    }

    /// The first position at or after `start` whose key is not below `key` (`count` when none): steps of
    /// 1, 2, 4, ... forward, then a binary search in the last step.
    private func lowerBound(of key: UnsafeRawBufferPointer, from start: Int, in table: UnsafeRawBufferPointer) -> Int {
        var low = start  // every position below `low` holds a smaller key
        var high = start
        var step = 1
        while high < count, KeyOrder.compare(self.key(high, in: table), key) < 0 {
            low = high + 1
            high = low + step
            step *= 2
        }
        high = min(high, count)
        while low < high {
            let middle = (low + high) / 2
            if KeyOrder.compare(self.key(middle, in: table), key) < 0 { low = middle + 1 } else { high = middle }
        }
        return low
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
