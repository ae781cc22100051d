import Foundation

/// A dataset's key table read where it is mapped (Spec/FORMAT.md 5).
///
/// Opening checks the head only: O(1) for version 2, whatever the number of keys. The directory is checked
/// before the first lookup, and a page before any of its keys is used, so that a lookup costs a binary
/// search over the page fences and one page (kept in a small cache). A version-1 table has no pages: it
/// is inflated and checked whole on first use, as revision 1.1 readers did.
///
/// Thread-safe: a dataset is shared by loader threads.
public final class MappedKeyTable: @unchecked Sendable {
    /// The key table's path.
    public let path: String
    /// 1 or 2.
    public let version: Int
    /// M, the number of keys (from the head).
    public let count: Int
    /// The file's size in bytes.
    public var fileSize: Int { file.bytes.count }

    private let file: MappedFile
    private let head: PagedKeyTable.Head?
    private let lock = NSLock()
    private var checkedDirectory = false
    private var whole: KeyTable?
    private var pages: [Int: KeyTable] = [:]
    private var lastUse: [Int: Int] = [:]
    private var clock = 0
    /// Decoded pages kept: a few hundred kilobytes of ImageNet-style keys.
    static let cachedPages = 32

    /// Maps `path` and checks the rules a reader applies at open (the head of version 2; the shared magic
    /// and version rules and the length of version 1).
    /// - Throws: ``ShardError`` naming the file: `io`, `bad-magic`, `unsupported-version`, `bad-keys`.
    public init(path: String) throws {
        self.path = path
        file = try MappedFile.format(path: path)
        do {
            version = try KeyTableScan.version(file.bytes)
            if version == 2 {
                let head = try PagedKeyTable.head(file.bytes)
                self.head = head
                count = head.count
            } else {
                head = nil
                count = Int(file.bytes.u32(at: 8))
            }
        } catch let error as ShardError {
            throw error.located(ShardLocation(file: path))
        }
    }

    /// The key of sample `id`.
    /// - Throws: `.invalidArgument` for an id outside `0..<count`; the table's own error (`bad-keys`…) when
    ///   the page holding it (or, in version 1, the table) breaks a rule.
    public func key(_ id: Int) throws -> String {
        guard id >= 0, id < count else {
            throw ShardError(.invalidArgument, "sample id \(id) is outside the key table's 0..<\(count)", at: ShardLocation(file: path))
        }
        return try locked {
            guard let head else { return try wholeTable().key(id) }
            return try page(id / head.keysPerPage, head).key(id % head.keysPerPage)
        }
    }

    /// The sample id of `key`, or nil when the table does not hold it (the spec's lookup: the last page whose
    /// fence sorts at or before the key, checked, then searched).
    public func id(of key: String) throws -> UInt32? {
        var key = key
        return try key.withUTF8 { wanted in
            try locked {
                guard let head else { return try wholeTable().id(ofBytes: UnsafeRawBufferPointer(wanted)) }
                try directory(head)
                guard let g = PagedKeyTable.page(holding: UnsafeRawBufferPointer(wanted), file.bytes, head) else { return nil }
                return try page(g, head).id(ofBytes: UnsafeRawBufferPointer(wanted)).map { UInt32(g * head.keysPerPage) + $0 }
            }
        }
    }

    /// Every key in memory (D + 4·(M + 1) bytes), every rule checked: for bulk users that name many samples
    /// in random order (an export), where one page decode per key would cost more.
    public func loadAll() throws -> KeyTable {
        do {
            return try KeyTable(fileBytes: file.bytes)
        } catch let error as ShardError {
            throw error.located(ShardLocation(file: path))
        }
    }

    private func locked<T>(_ body: () throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        do {
            return try body()
        } catch let error as ShardError {
            throw error.located(ShardLocation(file: path))
        }
    }

    private func wholeTable() throws -> KeyTable {
        if let whole { return whole }
        let table = try KeyTable(fileBytes: file.bytes)
        whole = table
        return table
    }

    private func directory(_ head: PagedKeyTable.Head) throws {
        guard !checkedDirectory else { return }
        try PagedKeyTable.checkDirectory(file.bytes, head)
        checkedDirectory = true
    }

    /// Page `g`, checked (rule 5) on first use and kept in a small least-recently-used cache.
    private func page(_ g: Int, _ head: PagedKeyTable.Head) throws -> KeyTable {
        clock += 1
        if let cached = pages[g] {
            lastUse[g] = clock
            return cached
        }
        try directory(head)
        let decoded = try PagedKeyTable.page(file.bytes, head, g)
        if pages.count >= Self.cachedPages, let oldest = lastUse.min(by: { $0.value < $1.value })?.key {
            pages[oldest] = nil
            lastUse[oldest] = nil
        }
        pages[g] = decoded
        lastUse[g] = clock
        return decoded
    }
}

/// What names sample ids in reports: a key table in memory (``KeyTable``) or mapped (``MappedKeyTable``).
public protocol SampleKeys: Sendable {
    /// M, the number of keys.
    var count: Int { get }
    /// The key of sample `id`, or nil when the id is out of range or its key cannot be read.
    func keyIfReadable(_ id: Int) -> String?
}

extension KeyTable: SampleKeys {
    public func keyIfReadable(_ id: Int) -> String? { id >= 0 && id < count ? key(id) : nil }
}

extension MappedKeyTable: SampleKeys {
    public func keyIfReadable(_ id: Int) -> String? { try? key(id) }
}
