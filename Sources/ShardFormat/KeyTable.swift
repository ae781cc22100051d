import Foundation

/// The dataset's sample keys (Spec/FORMAT.md section 5): strictly ascending by bytes, a sample's id is
/// its key's position. Stored once per dataset; lookup by key is a binary search.
public struct KeyTable: Sendable {
    static let magic: [UInt8] = Array("TSKY".utf8)
    static let version: UInt32 = 1
    static let headerSize = 24

    /// Keys joined, each followed by "\n" (the decoded form of the file).
    private let text: [UInt8]
    /// starts[i] is where key i begins in `text`; starts[count] is text.count.
    private let starts: [Int]

    public var count: Int { starts.count - 1 }

    /// Builds a table from any keys: sorted by bytes, duplicates removed.
    public init(sorting keys: some Sequence<String>) throws {
        let unique = Set(keys.map { Array($0.utf8) })
        try self.init(sortedUTF8: unique.sorted(by: Self.bytesPrecede))
    }

    /// Byte order with memcmp: the generic `lexicographicallyPrecedes` made sorting a million keys take
    /// ~8 s (release), the bulk of converting an ImageNet-sized key set.
    private static func bytesPrecede(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        let common = min(a.count, b.count)
        let order = common == 0 ? 0 : a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, common) } }
        return order != 0 ? order < 0 : a.count < b.count
    }

    private init(sortedUTF8 keys: [[UInt8]]) throws {
        var text: [UInt8] = []
        var starts = [0]
        for key in keys {
            text.append(contentsOf: key)
            text.append(0x0A)
            starts.append(text.count)
        }
        try self.init(decoded: text, starts: starts)
    }

    private init(decoded text: [UInt8], starts: [Int]) throws {
        self.text = text
        self.starts = starts
        for i in 0..<count {
            let key = text[starts[i]..<(starts[i + 1] - 1)]
            guard !key.isEmpty, !key.contains(where: { $0 == 0x0A || $0 == 0x0D || $0 == 0 }),
                  String(validating: key, as: UTF8.self) != nil
            else { throw ShardError(.badKeys, "key \(i) is empty, has a newline/CR/NUL, or is not UTF-8") }
            if i > 0 {
                let previous = text[starts[i - 1]..<(starts[i] - 1)]
                guard previous.lexicographicallyPrecedes(key) else {
                    throw ShardError(.badKeys, "key \(i) '\(String(decoding: key, as: UTF8.self))' does not sort after key \(i - 1)")
                }
            }
        }
    }

    public func key(_ id: Int) -> String {
        String(decoding: text[starts[id]..<(starts[id + 1] - 1)], as: UTF8.self)
    }

    /// The sample id of `key`, or nil. A binary search comparing UTF-8 bytes (memcmp order).
    public func id(of key: String) -> UInt32? {
        var target = key
        return target.withUTF8 { wanted in
            text.withUnsafeBytes { all in
                var low = 0
                var high = count
                while low < high {
                    let middle = (low + high) / 2
                    let start = starts[middle]
                    let length = starts[middle + 1] - 1 - start
                    let common = min(length, wanted.count)
                    var order = common == 0 ? 0 : memcmp(all.baseAddress! + start, wanted.baseAddress!, common)
                    if order == 0 { order = length < wanted.count ? -1 : length > wanted.count ? 1 : 0 }
                    if order == 0 { return UInt32(middle) }
                    if order < 0 { low = middle + 1 } else { high = middle }
                }
                return nil
            }
        }
    }

    public var keys: [String] { (0..<count).map(key) }

    /// The file's bytes.
    public func encoded() -> [UInt8] {
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

    /// Writes the table atomically; returns its size and CRC-32 for the manifest.
    public func write(to path: String) throws -> (bytes: Int, crc32: UInt32) {
        let output = try AtomicFileOutput(path: path)
        do {
            try output.write(encoded())
            try output.commit()
        } catch {
            output.discard()
            throw error
        }
        return (output.size, output.crc)
    }

    public static func read(path: String) throws -> KeyTable {
        let file = try MappedFile(path: path)
        do {
            return try KeyTable(fileBytes: file.bytes)
        } catch let error as ShardError {
            throw error.located(ShardLocation(file: path))
        }
    }

    /// Parses a key table file, trusting nothing.
    public init(fileBytes bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count >= 4, bytes.prefix(4).elementsEqual(Self.magic) else {
            throw ShardError(.badMagic, "not a TinyShard key table (magic is not TSKY)")
        }
        var reader = ByteReader(bytes, offset: 4, failure: .badKeys)
        guard try reader.u32("version") == Self.version else { throw ShardError(.unsupportedVersion, "key table version is not 1") }
        let count = Int(try reader.u32("key count"))
        let stored = Int(try reader.u32("stored length"))
        let decoded = Int(try reader.u32("decoded length"))
        let crc = try reader.u32("checksum")
        let payload = try reader.bytes(stored, "keys")
        guard reader.remaining == 0 else { throw ShardError(.badKeys, "\(reader.remaining) bytes follow the keys") }
        guard CRC32.checksum(payload) == crc else { throw ShardError(.badKeys, "key table checksum mismatch") }
        // Each key takes at least 2 bytes ("x\n"), and deflate cannot expand more than 1032:1: bounds on
        // `decoded` before allocating it, so a forged length cannot ask for gigabytes.
        guard decoded >= 2 * count, decoded <= 1032 * stored + 64 else {
            throw ShardError(.badKeys, "decoded length \(decoded) cannot hold \(count) keys")
        }
        var text = [UInt8](repeating: 0, count: decoded)
        let ok = text.withUnsafeMutableBytes { Zlib.decompress(payload, into: $0) }
        guard ok else { throw ShardError(.badKeys, "zlib data does not inflate to \(decoded) bytes") }
        guard decoded == 0 || text.last == 0x0A else { throw ShardError(.badKeys, "the last key lacks its newline") }
        var starts = [0]
        starts.reserveCapacity(count + 1)
        for (offset, byte) in text.enumerated() where byte == 0x0A { starts.append(offset + 1) }
        guard starts.count - 1 == count else {
            throw ShardError(.badKeys, "header says \(count) keys, the table holds \(starts.count - 1)")
        }
        try self.init(decoded: text, starts: starts)
    }
}
