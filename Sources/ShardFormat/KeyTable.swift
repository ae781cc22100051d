import Foundation

/// The dataset's sample keys (Spec/FORMAT.md section 5): strictly ascending by bytes, a sample's id is
/// its key's position. Stored once per dataset; lookup by key is a binary search.
public struct KeyTable: Sendable {
    static let magic: [UInt8] = Array("TSKY".utf8)
    static let version: UInt32 = 1
    static let headerSize = 24

    /// Keys joined, each followed by "\n" (the decoded form of the file).
    private let text: [UInt8]
    /// starts[i] is where key i begins in `text`; starts[count] is text.count. 32-bit: D is a u32 field,
    /// and memory is then D + 4·(M + 1) bytes, bounded by the file (Spec §5's ratio rule).
    private let starts: [UInt32]

    /// M, the number of keys; sample ids run 0..<M.
    public var count: Int { starts.count - 1 }

    /// Appends the keys' text (each followed by a newline) to `buffer`.
    func appendText(to buffer: inout [UInt8]) { buffer.append(contentsOf: text) }

    /// Builds a table from any keys: sorted by bytes, duplicates removed.
    public init(sorting keys: some Sequence<String>) throws {
        let unique = Set(keys.map { Array($0.utf8) })
        try self.init(sortedUTF8: unique.sorted(by: Self.bytesPrecede))
    }

    /// Byte order with memcmp: the generic `lexicographicallyPrecedes` made sorting a million keys take
    /// ~8 s (release), the bulk of converting an ImageNet-sized key set.
    private static func bytesPrecede(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.withUnsafeBytes { x in b.withUnsafeBytes { y in bytesPrecede(x, y) } }
    }

    static func bytesEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        a.count == b.count && (a.isEmpty || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0)
    }

    static func bytesPrecede(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        let common = min(a.count, b.count)
        let order = common == 0 ? 0 : memcmp(a.baseAddress!, b.baseAddress!, common)
        return order != 0 ? order < 0 : a.count < b.count
    }

    /// A table from keys already in one buffer, each followed by `\n`, sorted by bytes and distinct: key i is
    /// `text[starts[i] ..< starts[i + 1] - 1]`. Nothing is copied or sorted; every key rule is checked
    /// (`.badKeys` naming the key). What a converter of millions of keys uses instead of `init(sorting:)`,
    /// which holds a `String` per key.
    public init(sortedText text: [UInt8], starts: [UInt32]) throws {
        guard let first = starts.first, first == 0, let last = starts.last, Int(last) == text.count else {
            throw ShardError(.invalidArgument, "key offsets must start at 0 and end at the text's \(text.count) bytes")
        }
        var rules = KeyRules()
        try text.withUnsafeBytes { try rules.feed($0) }
        try rules.finish()
        guard rules.count == starts.count - 1 else {
            throw ShardError(.invalidArgument, "\(starts.count - 1) key offsets for \(rules.count) keys")
        }
        for i in 0..<(starts.count - 1) where starts[i] >= starts[i + 1] || text[Int(starts[i + 1]) - 1] != 0x0A {
            throw ShardError(.invalidArgument, "key offset \(i) does not start a key")
        }
        self.text = text
        self.starts = starts
    }

    private init(sortedUTF8 keys: [[UInt8]]) throws {
        var text: [UInt8] = []
        var starts: [UInt32] = [0]
        var rules = KeyRules()
        for (i, key) in keys.enumerated() {
            guard !key.contains(0x0A) else { throw ShardError(.badKeys, "key \(i) holds a newline") }
            text.append(contentsOf: key)
            text.append(0x0A)
            guard text.count <= Int(UInt32.max) else { throw ShardError(.badKeys, "the keys take more than 4 GiB") }
            starts.append(UInt32(text.count))
        }
        try text.withUnsafeBytes { try rules.feed($0) }
        self.text = text
        self.starts = starts
    }

    /// A table over text already checked (a decoded page).
    init(checkedText text: [UInt8], starts: [UInt32]) {
        self.text = text
        self.starts = starts
    }

    /// The key of sample id `id` (0..<``count``; traps outside).
    public func key(_ id: Int) -> String {
        String(decoding: text[Int(starts[id])..<(Int(starts[id + 1]) - 1)], as: UTF8.self)
    }

    /// Calls `body` with key `id`'s bytes (no newline).
    func withKeyBytes<R>(_ id: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try text.withUnsafeBytes { all in
            try body(UnsafeRawBufferPointer(rebasing: all[Int(starts[id])..<(Int(starts[id + 1]) - 1)]))
        }
    }

    /// The sample id of `key`, or nil. A binary search comparing UTF-8 bytes (memcmp order).
    public func id(of key: String) -> UInt32? {
        var target = key
        return target.withUTF8 { id(ofBytes: UnsafeRawBufferPointer($0)) }
    }

    /// The position of the key with these UTF-8 bytes, or nil.
    func id(ofBytes wanted: UnsafeRawBufferPointer) -> UInt32? {
        text.withUnsafeBytes { all in
            var low = 0
            var high = count
            while low < high {
                let middle = (low + high) / 2
                let start = Int(starts[middle])
                let length = Int(starts[middle + 1]) - 1 - start
                let common = min(length, wanted.count)
                var order = common == 0 ? 0 : memcmp(all.baseAddress! + start, wanted.baseAddress!, common)
                if order == 0 { order = length < wanted.count ? -1 : length > wanted.count ? 1 : 0 }
                if order == 0 { return UInt32(middle) }
                if order < 0 { low = middle + 1 } else { high = middle }
            }
            return nil
        }
    }

    /// Every key, in sample-id order (byte-wise ascending); builds M strings, so meant for small tables.
    public var keys: [String] { (0..<count).map(key) }

    /// The version this project writes (Spec/FORMAT.md 5.2); version 1 on request, for readers of revision 1.1.
    public static let defaultVersion = 2

    /// The file's bytes, in key-table `version` 1 or 2.
    public func encoded(version: Int = KeyTable.defaultVersion) throws -> [UInt8] {
        switch version {
        case 1: return encodedVersion1()
        case 2:
            return try text.withUnsafeBytes {
                try PagedKeyTable.encode(text: $0, starts: starts, keysPerPage: PagedKeyTable.defaultKeysPerPage, level: 6)
            }
        default: throw ShardError(.invalidArgument, "key table version must be 1 or 2, got \(version)")
        }
    }

    private func encodedVersion1() -> [UInt8] {
        let compressed = text.withUnsafeBytes { Zlib.compress($0, level: 9) }
        var writer = ByteWriter(capacity: Self.headerSize + compressed.count)
        writer.append(Self.magic)
        writer.u32(Self.version)
        writer.u32(UInt32(count))
        writer.u32(UInt32(compressed.count))
        writer.u32(UInt32(text.count))
        writer.u32(CRC32.checksum(compressed))
        writer.append(compressed)
        return writer.bytes
    }

    /// Writes the table atomically in key-table `version`; returns its size and CRC-32 for the manifest.
    public func write(to path: String, version: Int = KeyTable.defaultVersion) throws -> (bytes: Int, crc32: UInt32) {
        let bytes = try encoded(version: version)
        // Spec 5.1's ratio rule: readers refuse a version-1 table whose keys inflate more than 32:1 (+ 64 KiB).
        guard version != 1 || text.count <= KeyTableScan.maxRatio * (bytes.count - Self.headerSize) + KeyTableScan.ratioSlack else {
            throw ShardError(.badKeys, "the keys compress more than \(KeyTableScan.maxRatio):1, which readers refuse (Spec §5)",
                             at: ShardLocation(file: path))
        }
        let output = try formatIO { try AtomicFileOutput(path: path) }
        do {
            try formatIO {
                try output.write(bytes)
                try output.commit()
            }
        } catch {
            output.discard()
            throw error
        }
        return (output.size, output.crc)
    }

    /// Reads a whole key table file of either version into memory (every rule checked). A dataset's
    /// reader maps the file instead (``MappedKeyTable``), which opens in O(1).
    public static func read(path: String) throws -> KeyTable {
        let file = try MappedFile.format(path: path)
        do {
            return try KeyTable(fileBytes: file.bytes)
        } catch let error as ShardError {
            throw error.located(ShardLocation(file: path))
        }
    }

    /// Parses a key table file of either version, trusting nothing (every rule of Spec §5, in its order).
    public init(fileBytes bytes: UnsafeRawBufferPointer) throws {
        if try KeyTableScan.version(bytes) == 2 {
            let head = try PagedKeyTable.head(bytes)
            try PagedKeyTable.checkDirectory(bytes, head)
            var text: [UInt8] = []
            var starts: [UInt32] = [0]
            for g in 0..<head.pageCount {
                let page = try PagedKeyTable.page(bytes, head, g)
                let base = UInt32(text.count)
                page.appendText(to: &text)
                starts.append(contentsOf: page.starts.dropFirst().map { $0 + base })
            }
            self.text = text
            self.starts = starts
            return
        }
        let head = try KeyTableScan.head(bytes)
        var text: [UInt8] = []
        text.reserveCapacity(head.decodedLength)
        try KeyTableScan.scan(bytes) { text.append(contentsOf: $0) }
        var starts: [UInt32] = [0]
        starts.reserveCapacity(head.count + 1)
        text.withUnsafeBytes { all in
            var at = 0
            while let newline = KeyRules.newline(in: all, from: at) {
                starts.append(UInt32(newline + 1))
                at = newline + 1
            }
        }
        self.text = text
        self.starts = starts
    }

    /// Checks a key table file of either version without keeping its keys (memory: one chunk or page, the
    /// directory and the longest key); returns the number of keys. What the verifier uses.
    public static func check(fileBytes bytes: UnsafeRawBufferPointer) throws -> Int {
        guard try KeyTableScan.version(bytes) == 2 else { return try KeyTableScan.scan(bytes) }
        let head = try PagedKeyTable.head(bytes)
        try PagedKeyTable.checkDirectory(bytes, head)
        for g in 0..<head.pageCount { _ = try PagedKeyTable.page(bytes, head, g) }
        return head.count
    }

    /// The keys of the given ids, read by streaming through the file (for naming samples in reports
    /// without holding the table).
    public static func keys(_ ids: Set<Int>, fileBytes bytes: UnsafeRawBufferPointer) throws -> [Int: String] {
        guard !ids.isEmpty else { return [:] }
        if try KeyTableScan.version(bytes) == 2 {
            let head = try PagedKeyTable.head(bytes)
            try PagedKeyTable.checkDirectory(bytes, head)
            var found: [Int: String] = [:]
            for id in ids where id < head.count {
                let page = try PagedKeyTable.page(bytes, head, id / head.keysPerPage)
                found[id] = page.key(id % head.keysPerPage)
            }
            return found
        }
        var found: [Int: String] = [:]
        var id = 0
        var partial: [UInt8] = []
        try KeyTableScan.scan(bytes) { chunk in
            var start = 0
            while let newline = KeyRules.newline(in: chunk, from: start) {
                if ids.contains(id) { found[id] = String(decoding: partial + chunk[start..<newline], as: UTF8.self) }
                partial.removeAll(keepingCapacity: true)
                id += 1
                start = newline + 1
            }
            if start < chunk.count { partial.append(contentsOf: chunk[start...]) }
        }
        return found
    }
}
