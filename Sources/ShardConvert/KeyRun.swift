#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Sorted distinct keys (memcmp order), each followed by "\n", in chunks of about 1 MiB.
///
/// A merge reads its inputs front to back and releases each chunk once it is past it, so merging runs
/// needs about the memory of its output, not twice it: how the converter builds the union of 14
/// million keys (~260 MB) in little more than the union's own size. Chunks are mapped and unmapped
/// directly (``KeyChunk``), so a released chunk is returned to the system at once; from malloc, freed
/// megabyte chunks stayed in the process (measured: 760 MB peak instead of ~450 MB for that union).
final class KeyRun: @unchecked Sendable {  // filled by one thread, then read; released only by a consuming cursor
    static let defaultChunkSize = 1 << 20

    /// Bytes per chunk (a longer key gets a chunk of its own size).
    let chunkSize: Int
    // Touched per key: without `unchecked`, each access pays a dynamic exclusivity check (a third of
    // building the key union, measured). A run is only ever used by one thread at a time.
    @exclusivity(unchecked) fileprivate var chunks: [UnsafeMutableRawBufferPointer?] = []
    @exclusivity(unchecked) fileprivate var used: [Int] = []
    @exclusivity(unchecked) private(set) var count = 0
    /// Bytes of all keys with their newlines.
    @exclusivity(unchecked) private(set) var byteCount = 0

    init(chunkSize: Int = KeyRun.defaultChunkSize) {
        self.chunkSize = max(1, chunkSize)
    }

    deinit {
        for chunk in chunks { chunk.map(KeyChunk.release) }
    }

    /// Adds a key after every key already here (the caller keeps the order).
    func append(_ key: UnsafeRawBufferPointer) {
        let needed = key.count + 1
        if chunks.isEmpty || used[used.count - 1] + needed > chunks[chunks.count - 1]!.count {
            chunks.append(KeyChunk.allocate(max(chunkSize, needed)))
            used.append(0)
        }
        let chunk = chunks[chunks.count - 1]!
        let at = used[used.count - 1]
        if !key.isEmpty { UnsafeMutableRawBufferPointer(rebasing: chunk[at..<(at + key.count)]).copyMemory(from: key) }
        chunk[at + key.count] = 0x0A
        used[used.count - 1] = at + needed
        count += 1
        byteCount += needed
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
        for chunk in chunks.indices {
            guard let bytes = chunks[chunk] else { continue }
            let chunkBytes = UnsafeRawBufferPointer(rebasing: bytes[0..<used[chunk]])
            text.append(contentsOf: chunkBytes)
            var at = 0
            while at < chunkBytes.count {
                let newline = UnsafeRawPointer(memchr(chunkBytes.baseAddress! + at, 0x0A, chunkBytes.count - at)!) - chunkBytes.baseAddress!
                at = newline + 1
                starts.append(UInt32(text.count - chunkBytes.count + at))
            }
            release(chunk)
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
    /// The current key without its newline; nil past the last.
    private(set) var key: UnsafeRawBufferPointer?

    init(_ run: KeyRun, consuming: Bool) {
        self.run = run
        self.consuming = consuming
        key = find()
    }

    mutating func advance() {
        guard let current = key else { return }
        offset += current.count + 1
        key = find()
    }

    /// The key at (chunk, offset), moving to the next chunk (and releasing the last one) at a chunk's end.
    private mutating func find() -> UnsafeRawBufferPointer? {
        while chunk < run.chunks.count {
            if offset < run.used[chunk], let bytes = run.chunks[chunk] {
                let base = bytes.baseAddress! + offset
                let newline = UnsafeRawPointer(memchr(base, 0x0A, run.used[chunk] - offset)!)
                return UnsafeRawBufferPointer(start: base, count: newline - UnsafeRawPointer(base))
            }
            if consuming { run.release(chunk) }
            chunk += 1
            offset = 0
        }
        return nil
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
