import CZlib

/// The bytes of a version-2 key table (Spec/FORMAT.md 5.2): a 32-byte head, a directory of pages with each
/// page's first key (its fence), and the pages, each one zlib stream of P keys. Encoding, and the three
/// groups of reading rules: the head (at open, O(1)), the directory (before the first lookup, O(pages)),
/// and one page (before any of its keys is used).
enum PagedKeyTable {
    static let version: UInt32 = 2
    static let headSize = 32
    static let entrySize = 24
    static let maxKeysPerPage = 65_536
    static let maxPageBytes = 1 << 25
    static let maxZlibRatio = 1032
    /// Keys longer than this are refused in version 2, so that a page of 256 keys stays within 2^25 bytes.
    static let maxKeyBytes = 65_535
    /// Keys per page this project writes: a page of ImageNet-style keys (~4 KiB) inflates in microseconds.
    static let defaultKeysPerPage = 256

    /// The head's fields (rule 3 checked).
    struct Head: Sendable, Equatable {
        var count: Int
        var keysPerPage: Int
        var pageCount: Int
        var fenceBytes: Int
        /// Where the directory's CRC sits; the pages start 4 bytes later.
        var directoryEnd: Int { headSize + entrySize * pageCount + fenceBytes }
        var pagesStart: Int { directoryEnd + 4 }
        /// Keys in page `g` (every page holds P but the last).
        func keys(inPage g: Int) -> Int { min(keysPerPage, count - g * keysPerPage) }
    }

    /// One directory entry.
    struct Entry {
        var offset: Int
        var stored: Int
        var decoded: Int
        var crc: UInt32
        var fenceStart: Int
        var fenceEnd: Int
    }

    // MARK: Writing

    /// The file's bytes for keys given as `text` (each key followed by "\n", sorted, distinct) and
    /// `starts` (key i at text[starts[i] ..< starts[i + 1] - 1]).
    static func encode(text: UnsafeRawBufferPointer, starts: [UInt32], keysPerPage: Int, level: Int32) throws -> [UInt8] {
        precondition((1...maxKeysPerPage).contains(keysPerPage), "keys per page must be 1...\(maxKeysPerPage)")
        let count = starts.count - 1
        let pageCount = (count + keysPerPage - 1) / keysPerPage
        var fences: [UInt8] = []
        var fenceEnds: [UInt32] = []
        // The pages back to back, not one array each: a compressed page's array keeps the capacity
        // reserved for its worst case (the page's plain size), so 55 k of them held the key table's
        // plain bytes again (+250 MB converting 14.2 M keys, measured).
        var pageBytes: [UInt8] = []
        var pageEnds: [Int] = []
        pageEnds.reserveCapacity(pageCount)
        for g in 0..<pageCount {
            let first = g * keysPerPage
            let end = min(count, first + keysPerPage)
            for i in first..<end where Int(starts[i + 1] - starts[i]) - 1 > maxKeyBytes {
                throw ShardError(.badKeys, "key \(i) is \(starts[i + 1] - starts[i] - 1) bytes; a version-2 key table holds keys of at most \(maxKeyBytes) bytes")
            }
            fences.append(contentsOf: text[Int(starts[first])..<(Int(starts[first + 1]) - 1)])
            guard fences.count <= Int(UInt32.max) else { throw ShardError(.badKeys, "the page fences take more than 4 GiB") }
            fenceEnds.append(UInt32(fences.count))
            pageBytes += Zlib.compress(UnsafeRawBufferPointer(rebasing: text[Int(starts[first])..<Int(starts[end])]), level: level)
            pageEnds.append(pageBytes.count)
        }
        var out = ByteWriter(capacity: headSize + entrySize * pageCount + fences.count + 4 + pageBytes.count)
        out.append(KeyTable.magic)
        out.u32(version)
        out.u32(UInt32(count))
        out.u32(UInt32(keysPerPage))
        out.u32(UInt32(pageCount))
        out.u32(UInt32(fences.count))
        out.u32(0)
        out.u32(CRC32.checksum(out.bytes))
        let pagesStart = headSize + entrySize * pageCount + fences.count + 4
        pageBytes.withUnsafeBytes { pagesOnly in
            for g in 0..<pageCount {
                let first = g * keysPerPage
                let end = min(count, first + keysPerPage)
                let pageStart = g == 0 ? 0 : pageEnds[g - 1]
                let page = UnsafeRawBufferPointer(rebasing: pagesOnly[pageStart..<pageEnds[g]])
                out.u64(UInt64(pagesStart + pageStart))
                out.u32(UInt32(page.count))
                out.u32(starts[end] - starts[first])
                out.u32(CRC32.checksum(page))
                out.u32(fenceEnds[g])
            }
        }
        out.append(fences)
        let directoryCRC = out.bytes.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[headSize...])) }
        out.u32(directoryCRC)
        out.append(pageBytes)
        return out.bytes
    }

    // MARK: Reading rules

    /// Rule 3: the head (after the magic and version rules every key table shares).
    static func head(_ bytes: UnsafeRawBufferPointer) throws -> Head {
        guard bytes.count >= headSize + 4 else {
            throw ShardError(.badKeys, "key table is \(bytes.count) bytes, shorter than a version-2 head and directory checksum (36)")
        }
        guard CRC32.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<28])) == bytes.u32(at: 28) else {
            throw ShardError(.badKeys, "key table head checksum mismatch")
        }
        guard bytes.u32(at: 24) == 0 else { throw ShardError(.badKeys, "key table head: reserved bytes are not 0") }
        let head = Head(count: Int(bytes.u32(at: 8)), keysPerPage: Int(bytes.u32(at: 12)), pageCount: Int(bytes.u32(at: 16)),
                        fenceBytes: Int(bytes.u32(at: 20)))
        guard (1...maxKeysPerPage).contains(head.keysPerPage) else {
            throw ShardError(.badKeys, "key table head: \(head.keysPerPage) keys per page is outside 1...\(maxKeysPerPage)")
        }
        guard head.pageCount == (head.count + head.keysPerPage - 1) / head.keysPerPage else {
            throw ShardError(.badKeys, "key table head: \(head.count) keys in pages of \(head.keysPerPage) need \((head.count + head.keysPerPage - 1) / head.keysPerPage) pages, not \(head.pageCount)")
        }
        guard bytes.count >= head.pagesStart else {
            throw ShardError(.badKeys, "key table is \(bytes.count) bytes; its directory and fences need \(head.pagesStart)")
        }
        return head
    }

    static func entry(_ bytes: UnsafeRawBufferPointer, _ head: Head, _ g: Int) -> Entry {
        let at = headSize + entrySize * g
        let fenceStart = g == 0 ? 0 : Int(bytes.u32(at: at - entrySize + 20))
        return Entry(offset: Int(truncatingIfNeeded: bytes.u64(at: at)), stored: Int(bytes.u32(at: at + 8)),
                     decoded: Int(bytes.u32(at: at + 12)), crc: bytes.u32(at: at + 16),
                     fenceStart: fenceStart, fenceEnd: Int(bytes.u32(at: at + 20)))
    }

    /// Fence `g`'s bytes (only after ``checkDirectory(_:_:)`` passed).
    static func fence(_ bytes: UnsafeRawBufferPointer, _ head: Head, _ g: Int) -> UnsafeRawBufferPointer {
        let e = entry(bytes, head, g)
        let base = headSize + entrySize * head.pageCount
        return UnsafeRawBufferPointer(rebasing: bytes[(base + e.fenceStart)..<(base + e.fenceEnd)])
    }

    /// Rule 4: the directory's checksum, the pages tiling the file, the decoded-size bounds, and the fences
    /// (non-empty keys, strictly ascending). O(pages + fence bytes).
    static func checkDirectory(_ bytes: UnsafeRawBufferPointer, _ head: Head) throws {
        let stored = bytes.u32(at: head.directoryEnd)
        guard CRC32.checksum(UnsafeRawBufferPointer(rebasing: bytes[headSize..<head.directoryEnd])) == stored else {
            throw ShardError(.badKeys, "key table directory checksum mismatch")
        }
        var expectedOffset = head.pagesStart
        var previousEnd = 0
        for g in 0..<head.pageCount {
            let e = entry(bytes, head, g)
            func fail(_ message: String) -> ShardError { ShardError(.badKeys, "key table page \(g): " + message) }
            guard e.offset == expectedOffset else { throw fail("starts at \(e.offset), not where the page before ends (\(expectedOffset))") }
            guard e.stored <= bytes.count - e.offset else { throw fail("\(e.stored) stored bytes run past the end of the file") }
            guard e.decoded <= maxZlibRatio * e.stored, e.decoded <= maxPageBytes else {
                throw fail("\(e.decoded) decoded bytes exceed 1032 × its \(e.stored) stored bytes or 2^25")
            }
            guard e.fenceEnd > previousEnd else { throw fail("its fence is empty or ends before the previous one") }
            previousEnd = e.fenceEnd
            expectedOffset = e.offset + e.stored
        }
        guard expectedOffset == bytes.count else {
            throw ShardError(.badKeys, "key table pages end at \(expectedOffset), the file at \(bytes.count)")
        }
        guard previousEnd == head.fenceBytes else {
            throw ShardError(.badKeys, "key table fences end at \(previousEnd), not at the \(head.fenceBytes) fence bytes")
        }
        var rules = KeyRules()
        for g in 0..<head.pageCount {
            let fence = fence(bytes, head, g)
            do {
                try rules.checkOne(fence)
            } catch let error as ShardError {
                throw ShardError(.badKeys, "key table fence \(g): " + error.message)
            }
        }
    }

    /// Rule 5: page `g` inflated and checked, as a small in-memory table of its keys.
    static func page(_ bytes: UnsafeRawBufferPointer, _ head: Head, _ g: Int) throws -> KeyTable {
        let e = entry(bytes, head, g)
        func fail(_ message: String) -> ShardError { ShardError(.badKeys, "key table page \(g): " + message) }
        let stored = UnsafeRawBufferPointer(rebasing: bytes[e.offset..<(e.offset + e.stored)])
        guard CRC32.checksum(stored) == e.crc else { throw fail("checksum mismatch") }
        var text = [UInt8](repeating: 0, count: e.decoded)
        let inflated = text.withUnsafeMutableBytes { Zlib.decompress(stored, into: $0) }
        guard inflated else { throw fail("its bytes are not one zlib stream of exactly \(e.decoded) bytes") }
        var starts: [UInt32] = [0]
        starts.reserveCapacity(head.keys(inPage: g) + 1)
        var rules = KeyRules()
        do {
            try text.withUnsafeBytes { try rules.feedWhole($0, starts: &starts) }
            try rules.finish()
        } catch let error as ShardError {
            throw fail(error.message)
        }
        let expected = head.keys(inPage: g)
        guard rules.count == expected else { throw fail("holds \(rules.count) keys, not \(expected)") }
        let table = KeyTable(checkedText: text, starts: starts)
        let firstMatches = table.withKeyBytes(0) { first in KeyTable.bytesEqual(first, fence(bytes, head, g)) }
        guard firstMatches else { throw fail("its first key is not its fence") }
        if g + 1 < head.pageCount {
            let next = fence(bytes, head, g + 1)
            let before = table.withKeyBytes(expected - 1) { last in KeyTable.bytesPrecede(last, next) }
            guard before else { throw fail("its last key does not sort before the next page's fence") }
        }
        return table
    }

    /// The page that would hold `key` by the spec's lookup rule: the last page whose fence sorts at or
    /// before it, or nil. Binary search over the checked fences.
    static func page(holding key: UnsafeRawBufferPointer, _ bytes: UnsafeRawBufferPointer, _ head: Head) -> Int? {
        var low = 0
        var high = head.pageCount
        while low < high {  // first page whose fence sorts after the key
            let middle = (low + high) / 2
            if KeyTable.bytesPrecede(key, fence(bytes, head, middle)) { high = middle } else { low = middle + 1 }
        }
        return low == 0 ? nil : low - 1
    }
}
