import CZlib
import Interchange
#if canImport(Glibc)
import Glibc
#endif

/// The reading rules of a key table file (Spec/FORMAT.md §5), applied while inflating in 1 MiB chunks:
/// cost is linear in the decoded bytes, which the ratio rule bounds by the bytes present (D ≤ 32·S +
/// 65,536), and memory is one chunk plus the longest key, whatever the file claims. The verifier uses it
/// on its own; ``KeyTable`` uses it while keeping the keys.
enum KeyTableScan {
    static let headerSize = 24
    static let maxRatio = 32
    static let ratioSlack = 65_536

    struct Head {
        var count: Int
        var decodedLength: Int
        var payload: UnsafeRawBufferPointer
    }

    /// The rules every key table shares (Spec 5, rules 1 and 2): the magic, 24 bytes at least, and a version
    /// this reader knows. Returns the version, 1 or 2.
    static func version(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        let magic = KeyTable.magic
        guard !bytes.isEmpty, bytes.prefix(4).elementsEqual(magic.prefix(min(4, bytes.count))) else {
            throw ShardError(.badMagic, "not a TinyShard key table (magic is not TSKY)")
        }
        guard bytes.count >= headerSize else { throw ShardError(.badKeys, "key table is \(bytes.count) bytes, shorter than 24") }
        let version = bytes.u32(at: 4)
        guard version == KeyTable.version || version == PagedKeyTable.version else {
            throw ShardError(.unsupportedVersion, "key table version \(version) is neither 1 nor 2")
        }
        return Int(version)
    }

    /// Version 1 (Spec 5.1): the shared rules, then lengths, CRC and the ratio rule, in the spec's order.
    static func head(_ bytes: UnsafeRawBufferPointer) throws -> Head {
        guard try version(bytes) == 1 else { throw ShardError(.unsupportedVersion, "key table version 2 read as version 1") }
        let count = Int(bytes.u32(at: 8))
        let stored = Int(bytes.u32(at: 12))
        let decoded = Int(bytes.u32(at: 16))
        guard bytes.count == headerSize + stored else {
            throw ShardError(.badKeys, "key table is \(bytes.count) bytes; its head says \(headerSize + stored)")
        }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[headerSize...])
        guard CRC32.checksum(payload) == bytes.u32(at: 20) else { throw ShardError(.badKeys, "key table checksum mismatch") }
        guard decoded <= maxRatio * stored + ratioSlack else {
            throw ShardError(.badKeys, "decoded length \(decoded) is more than \(maxRatio) × the \(stored) stored bytes + \(ratioSlack)")
        }
        guard (count == 0) == (decoded == 0) else { throw ShardError(.badKeys, "\(count) keys in \(decoded) decoded bytes") }
        return Head(count: count, decodedLength: decoded, payload: payload)
    }

    /// Checks every rule; calls `chunk` with each inflated chunk (in order) before its keys are checked.
    /// Returns the number of keys.
    @discardableResult
    static func scan(_ bytes: UnsafeRawBufferPointer, chunk: (UnsafeRawBufferPointer) -> Void = { _ in }) throws -> Int {
        let head = try head(bytes)
        var checker = KeyRules()
        var produced = 0
        try Inflater.run(head.payload, limit: head.decodedLength) { piece in
            produced += piece.count
            chunk(piece)
            try checker.feed(piece)
        }
        guard produced == head.decodedLength else {
            throw ShardError(.badKeys, "zlib data inflates to \(produced) bytes, not \(head.decodedLength)")
        }
        try checker.finish()
        guard checker.count == head.count else {
            throw ShardError(.badKeys, "head says \(head.count) keys, the table holds \(checker.count)")
        }
        return checker.count
    }
}

/// Key rules over a stream of decoded bytes: each key ends with `\n`, is non-empty, has no `\r` or NUL,
/// is UTF-8 and sorts strictly after the previous key by bytes.
struct KeyRules {
    private(set) var count = 0
    private var partial: [UInt8] = []
    private var previous: [UInt8] = []

    mutating func feed(_ bytes: UnsafeRawBufferPointer) throws {
        var start = 0
        while start < bytes.count {
            guard let newline = KeyRules.newline(in: bytes, from: start) else {
                partial.append(contentsOf: bytes[start...])
                return
            }
            if partial.isEmpty {
                try key(UnsafeRawBufferPointer(rebasing: bytes[start..<newline]))
            } else {
                partial.append(contentsOf: bytes[start..<newline])
                let whole = partial
                partial.removeAll(keepingCapacity: true)
                try whole.withUnsafeBytes { try key($0) }
            }
            start = newline + 1
        }
    }

    /// The next `\n` at or after `start` (memchr), or nil.
    static func newline(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < bytes.count, let base = bytes.baseAddress,
              let found = memchr(base + start, 0x0A, bytes.count - start) else { return nil }
        return UnsafeRawPointer(found) - base
    }

    mutating func finish() throws {
        guard partial.isEmpty else { throw ShardError(.badKeys, "the last key lacks its newline") }
    }

    /// Checks one key that stands alone (a version-2 fence): the key rules, no newline inside, and order
    /// after the key checked before it.
    mutating func checkOne(_ key: UnsafeRawBufferPointer) throws {
        guard key.isEmpty || memchr(key.baseAddress!, 0x0A, key.count) == nil else {
            throw ShardError(.badKeys, "key \(count) holds a newline")
        }
        try self.key(key)
    }

    /// Checks a whole buffer of `\n`-terminated keys in place — no copy of each key to compare the next with,
    /// as ``feed(_:)`` must make across chunks — and appends where each key after the first starts (the byte
    /// after each `\n`) to `starts`. Bytes after the last `\n` are kept for ``finish()`` to refuse.
    mutating func feedWhole(_ all: UnsafeRawBufferPointer, starts: inout [UInt32]) throws {
        precondition(count == 0 && partial.isEmpty, "feedWhole starts a fresh scan")
        // The page check is most of a lookup (docs/scale.md): when the whole buffer passes the byte rules at
        // once, only emptiness and order are left per key; any key that breaks a rule still goes through the
        // per-key check, so the error names the same key with the same message either way.
        let clean = Self.cleanText(all)
        var at = 0
        var previous: UnsafeRawBufferPointer?
        while let newline = KeyRules.newline(in: all, from: at) {
            let key = UnsafeRawBufferPointer(rebasing: all[at..<newline])
            if !clean || key.isEmpty || (previous.map { !KeyTable.bytesPrecede($0, key) } ?? false) {
                try Self.check(key, index: count, after: previous)
            }
            count += 1
            previous = key
            starts.append(UInt32(newline + 1))
            at = newline + 1
        }
        if at < all.count { partial.append(contentsOf: all[at...]) }
    }

    /// True when the whole buffer holds no CR or NUL and is valid UTF-8, so that every `\n`-separated key
    /// in it is too (a multi-byte UTF-8 sequence never contains a byte below 0x80, so cutting valid text at
    /// `\n` leaves valid pieces).
    private static func cleanText(_ all: UnsafeRawBufferPointer) -> Bool {
        guard let base = all.baseAddress, !all.isEmpty else { return true }
        return memchr(base, 0x0D, all.count) == nil && memchr(base, 0, all.count) == nil && UTF8Check.isValid(all)
    }

    private mutating func key(_ key: UnsafeRawBufferPointer) throws {
        try previous.withUnsafeBytes { previous in try Self.check(key, index: count, after: count > 0 ? previous : nil) }
        previous.removeAll(keepingCapacity: true)
        previous.append(contentsOf: key)
        count += 1
    }

    /// Key `index`'s rules, given the key before it (nil for the first).
    private static func check(_ key: UnsafeRawBufferPointer, index i: Int, after previous: UnsafeRawBufferPointer?) throws {
        guard !key.isEmpty else { throw ShardError(.badKeys, "key \(i) is empty") }
        guard memchr(key.baseAddress!, 0x0D, key.count) == nil, memchr(key.baseAddress!, 0, key.count) == nil else { throw ShardError(.badKeys, "key \(i) holds a CR or NUL byte") }
        guard UTF8Check.isValid(key) else { throw ShardError(.badKeys, "key \(i) is not valid UTF-8") }
        if let previous, !KeyTable.bytesPrecede(previous, key) {
            throw ShardError(.badKeys, "key \(i) '\(String(decoding: key, as: UTF8.self))' does not sort after key \(i - 1)")
        }
    }
}

/// Chunked zlib inflation of one whole stream: fails unless the stream ends exactly at the end of the
/// input and produces at most `limit` bytes.
enum Inflater {
    static let chunkSize = 1 << 20

    static func run(_ input: UnsafeRawBufferPointer, limit: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var stream = z_stream()
        guard inflateInit_(&stream, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw ShardError(.badKeys, "zlib cannot start")
        }
        defer { inflateEnd(&stream) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 8)
        defer { buffer.deallocate() }
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        var total = 0
        while true {
            stream.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(chunkSize)
            let status = inflate(&stream, Z_NO_FLUSH)
            let produced = chunkSize - Int(stream.avail_out)
            total += produced
            guard total <= limit else { throw ShardError(.badKeys, "zlib data inflates to more than \(limit) bytes") }
            if produced > 0 { try body(UnsafeRawBufferPointer(rebasing: buffer[0..<produced])) }
            if status == Z_STREAM_END {
                guard stream.avail_in == 0 else { throw ShardError(.badKeys, "\(stream.avail_in) bytes follow the zlib stream") }
                return
            }
            guard status == Z_OK || (status == Z_BUF_ERROR && produced > 0) else {
                throw ShardError(.badKeys, "zlib data is damaged or ends early")
            }
        }
    }
}
