#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Sorted distinct keys (memcmp order), front-coded, in chunks of about 1 MiB.
///
/// Each key is stored as the length of the prefix it shares with the key before it (one byte, at most
/// 255), the length of the rest (LEB128) and the rest: sorted ImageNet keys share most of their bytes
/// with their neighbour, so the census of the 14.2 M-key epoch (every rank's run, then their union)
/// peaked at 220 MB instead of 347 MB with plain keys (measured, docs/scale.md).
///
/// A merge reads its inputs front to back and releases each chunk once it is past it, so merging runs
/// needs about the memory of its output, not twice it. Chunks are mapped and unmapped directly
/// (``KeyChunk``), so a released chunk is returned to the system at once; from malloc, freed megabyte
/// chunks stayed in the process (measured: 760 MB peak instead of ~450 MB for that union).
final class KeyRun: @unchecked Sendable {  // filled by one thread, then read; released only by a consuming cursor
    static let defaultChunkSize = 1 << 20

    /// Bytes per chunk (a longer key gets a chunk of its own size).
    let chunkSize: Int
    // Touched per key: without `unchecked`, each access pays a dynamic exclusivity check (a third of
    // building the key union, measured). A run is only ever used by one thread at a time.
    @exclusivity(unchecked) fileprivate var chunks: [UnsafeMutableRawBufferPointer?] = []
    @exclusivity(unchecked) fileprivate var used: [Int] = []
    @exclusivity(unchecked) private(set) var count = 0
    /// Bytes of all keys with their newlines (as ``joined()`` lays them out), not the bytes held.
    @exclusivity(unchecked) private(set) var byteCount = 0

    init(chunkSize: Int = KeyRun.defaultChunkSize) {
        self.chunkSize = max(1, chunkSize)
    }

    deinit {
        for chunk in chunks { chunk.map(KeyChunk.release) }
    }

    /// The key appended last, which the next one is coded against.
    @exclusivity(unchecked) private var last = KeyBuffer()

    /// Adds a key after every key already here (the caller keeps the order).
    func append(_ key: UnsafeRawBufferPointer) {
        let shared = min(255, last.sharedPrefix(with: key))
        let rest = key.count - shared
        let needed = 1 + LEB128.length(rest) + rest
        if chunks.isEmpty || used[used.count - 1] + needed > chunks[chunks.count - 1]!.count {
            chunks.append(KeyChunk.allocate(max(chunkSize, needed)))
            used.append(0)
        }
        let chunk = chunks[chunks.count - 1]!
        var at = used[used.count - 1]
        chunk[at] = UInt8(shared)
        at = LEB128.write(rest, into: chunk, at: at + 1)
        if rest > 0 {
            UnsafeMutableRawBufferPointer(rebasing: chunk[at..<(at + rest)]).copyMemory(from: UnsafeRawBufferPointer(rebasing: key[shared...]))
        }
        used[used.count - 1] = at + rest
        last.replace(keepingPrefix: shared, with: UnsafeRawBufferPointer(rebasing: key[shared...]))
        count += 1
        byteCount += key.count + 1
    }

    fileprivate func release(_ chunk: Int) {
        chunks[chunk].map(KeyChunk.release)
        chunks[chunk] = nil
    }

    /// The distinct keys of some lines of a keys file, given in ``KeySort`` order.
    static func distinct(_ lines: KeyLines, sortedLines: [UInt32], chunkSize: Int = defaultChunkSize) -> KeyRun {
        let out = KeyRun(chunkSize: chunkSize)
        lines.text.withUnsafeBytes { text in
            var previous: UnsafeRawBufferPointer?
            for line in sortedLines {
                let start = Int(lines.starts[Int(line)])
                let key = UnsafeRawBufferPointer(rebasing: text[start..<(Int(lines.starts[Int(line) + 1]) - 1)])
                if let previous, KeyOrder.compare(previous, key) == 0 { continue }
                previous = key
                out.append(key)
            }
        }
        return out
    }

    /// The keys of `run` that `union` does not hold, in one pass over both; consumes `run`, only reads
    /// `union` (so several threads can subtract from it at once).
    static func subtracting(_ run: KeyRun, _ union: KeyRun) -> KeyRun {
        let out = KeyRun(chunkSize: run.chunkSize)
        var keys = KeyRunCursor(run, consuming: true)
        var known = KeyRunCursor(union, consuming: false)
        while let key = keys.key {
            while let held = known.key, KeyOrder.compare(held, key) < 0 { known.advance() }
            if known.key.map({ KeyOrder.compare($0, key) != 0 }) ?? true { out.append(key) }
            keys.advance()
        }
        return out
    }

    /// The union of two runs, each key once; both inputs are consumed (left empty).
    static func merged(_ a: KeyRun, _ b: KeyRun) -> KeyRun {
        let out = KeyRun(chunkSize: a.chunkSize)
        var x = KeyRunCursor(a, consuming: true)
        var y = KeyRunCursor(b, consuming: true)
        while let p = x.key, let q = y.key {
            let order = KeyOrder.compare(p, q)
            out.append(order <= 0 ? p : q)
            if order <= 0 { x.advance() }
            if order >= 0 { y.advance() }
        }
        for var rest in [x, y] {
            while let key = rest.key {
                out.append(key)
                rest.advance()
            }
        }
        return out
    }

    /// The union of `runs`, merged pairwise in rounds (each key takes part in ⌈log2 runs⌉ merges), the
    /// merges of a round on up to `threads` threads. Consumes the runs.
    static func union(_ runs: [KeyRun], threads: Int) throws -> KeyRun {
        var round = runs.filter { $0.count > 0 }
        guard !round.isEmpty else { return KeyRun(chunkSize: runs.first?.chunkSize ?? defaultChunkSize) }
        while round.count > 1 {
            let pairs = round.count / 2
            var next = try Parallel.map(pairs, threads: threads) { merged(round[2 * $0], round[2 * $0 + 1]) }
            if round.count % 2 == 1 { next.append(round[round.count - 1]) }
            round = next
        }
        return round[0]
    }

    /// The keys as one buffer and their offsets, the form `KeyTable(sortedText:starts:)` takes; consumes
    /// the run chunk by chunk while the buffer grows.
    func joined() throws -> SortedKeys {
        guard byteCount <= Int(UInt32.max) else {
            throw ConversionError("bad-keys", "the keys take \(byteCount) bytes; a key table holds at most 4 GiB")
        }
        var text: [UInt8] = []
        var starts: [UInt32] = [0]
        text.reserveCapacity(byteCount)
        starts.reserveCapacity(count + 1)
        var keys = KeyRunCursor(self, consuming: true)
        while let key = keys.key {
            text.append(contentsOf: key)
            text.append(0x0A)
            starts.append(UInt32(text.count))
            keys.advance()
        }
        return SortedKeys(text: text, starts: starts)
    }
}

/// Reads a run's keys in order. A consuming cursor releases each chunk once past it (the run is then
/// used up); a plain one leaves the run as it is, so several can read it at once.
struct KeyRunCursor {
    private let run: KeyRun
    private let consuming: Bool
    private var chunk = 0
    private var offset = 0
    /// The current key, decoded against the one before it.
    private let current = KeyBuffer()
    /// The current key without its newline (valid until the next ``advance()``); nil past the last.
    private(set) var key: UnsafeRawBufferPointer?

    init(_ run: KeyRun, consuming: Bool) {
        self.run = run
        self.consuming = consuming
        key = find()
    }

    mutating func advance() {
        guard key != nil else { return }
        key = find()
    }

    /// Decodes the key at (chunk, offset) and moves past it, going to the next chunk (and releasing the
    /// last one) at a chunk's end.
    private mutating func find() -> UnsafeRawBufferPointer? {
        while chunk < run.chunks.count {
            if offset < run.used[chunk], let bytes = run.chunks[chunk] {
                let shared = Int(bytes[offset])
                var rest = 0
                let start = LEB128.read(&rest, from: UnsafeRawBufferPointer(bytes), at: offset + 1)
                current.replace(keepingPrefix: shared, with: UnsafeRawBufferPointer(rebasing: bytes[start..<(start + rest)]))
                offset = start + rest
                return current.bytes
            }
            if consuming { run.release(chunk) }
            chunk += 1
            offset = 0
        }
        return nil
    }
}

/// One key's bytes in a buffer of its own, grown as needed: the key a run's next key is coded against,
/// and the key a cursor decodes. A class, so that a cursor (a struct) frees it when the last copy goes.
final class KeyBuffer {
    private var storage = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 1)
    private(set) var count = 0

    deinit { storage.deallocate() }

    /// The key held.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: storage[0..<count]) }

    /// Bytes at the start of `key` equal to the key held.
    func sharedPrefix(with key: UnsafeRawBufferPointer) -> Int {
        let limit = min(count, key.count)
        var i = 0
        while i < limit, storage[i] == key[i] { i += 1 }
        return i
    }

    /// Keeps the first `prefix` bytes and appends `rest`.
    func replace(keepingPrefix prefix: Int, with rest: UnsafeRawBufferPointer) {
        precondition(prefix <= count, "a front-coded key shares more bytes than the key before it holds")
        let total = prefix + rest.count
        if total > storage.count {
            let grown = UnsafeMutableRawBufferPointer.allocate(byteCount: max(total, 2 * storage.count), alignment: 1)
            grown.copyMemory(from: UnsafeRawBufferPointer(rebasing: storage[0..<prefix]))
            storage.deallocate()
            storage = grown
        }
        if !rest.isEmpty { UnsafeMutableRawBufferPointer(rebasing: storage[prefix..<total]).copyMemory(from: rest) }
        count = total
    }
}

/// Unsigned LEB128 (7 bits per byte, low first): the length of a front-coded key's rest.
enum LEB128 {
    static func length(_ value: Int) -> Int {
        var value = value, bytes = 1
        while value >= 0x80 { value >>= 7; bytes += 1 }
        return bytes
    }

    /// Writes `value` at `at`; returns the offset after it.
    static func write(_ value: Int, into bytes: UnsafeMutableRawBufferPointer, at: Int) -> Int {
        var value = value, at = at
        while value >= 0x80 {
            bytes[at] = UInt8(value & 0x7F) | 0x80
            value >>= 7
            at += 1
        }
        bytes[at] = UInt8(value)
        return at + 1
    }

    /// Reads a value written by ``write(_:into:at:)`` at `at` into `value`; returns the offset after it.
    static func read(_ value: inout Int, from bytes: UnsafeRawBufferPointer, at: Int) -> Int {
        var at = at, shift = 0
        value = 0
        while true {
            let byte = bytes[at]
            value |= Int(byte & 0x7F) << shift
            at += 1
            if byte < 0x80 { return at }
            shift += 7
        }
    }
}

/// Memory for a run's chunks straight from mmap, so that releasing a chunk returns it to the system.
enum KeyChunk {
    static func allocate(_ bytes: Int) -> UnsafeMutableRawBufferPointer {
        let address = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        // Only running out of memory fails here, as a failed malloc would.
        guard let address, address != MAP_FAILED else { preconditionFailure("out of memory mapping \(bytes) bytes") }
        return UnsafeMutableRawBufferPointer(start: address, count: bytes)
    }

    static func release(_ chunk: UnsafeMutableRawBufferPointer) {
        munmap(chunk.baseAddress, chunk.count)
    }
}

/// Byte order of keys, as memcmp compares them (a prefix first): the key table's order.
enum KeyOrder {
    static func compare(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        let common = min(a.count, b.count)
        if common > 0 {
            let order = Int(memcmp(a.baseAddress!, b.baseAddress!, common))
            if order != 0 { return order }
        }
        return a.count < b.count ? -1 : a.count > b.count ? 1 : 0
    }
}
