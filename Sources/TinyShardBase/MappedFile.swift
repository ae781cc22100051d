#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory map of a whole file. The bytes are never copied; pages load on first touch.
/// Public because every store of the project (shards, key tables, manifests, images) maps its files this way.
/// (If another process truncates the file while it is mapped, touching the lost pages raises SIGBUS —
/// the usual mmap caveat. Shards are written under a temporary name and renamed, so a finished shard is
/// never truncated in place by this project's writers.)
public final class MappedFile: @unchecked Sendable {
    /// The path the file was opened with.
    public let path: String
    /// The whole file, read-only; valid while this object lives.
    public let bytes: UnsafeRawBufferPointer
    private let mapping: UnsafeMutableRawPointer?

    /// Maps `path`; throws ``FileIOError`` naming the file when it cannot.
    public init(path: String) throws {
        self.path = path
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; it is refused below.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw FileIOError(path: path, message: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw FileIOError(path: path, message: "cannot stat: \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw FileIOError(path: path, message: "not a regular file")
        }
        let size = Int(info.st_size)
        if size == 0 {  // mmap refuses length 0; an empty file is simply zero bytes.
            mapping = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let pointer = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), pointer != MAP_FAILED else {
            throw FileIOError(path: path, message: "cannot map: \(String(cString: strerror(errno)))")
        }
        mapping = pointer
        bytes = UnsafeRawBufferPointer(start: pointer, count: size)
    }

    /// Drops the pages inside `range` from this process's memory (they stay in the page cache, and are read
    /// again if touched): a pass that walks a file of gigabytes once (statistics, tables, checksums) would
    /// otherwise keep every page it touched in its resident set. Pages only partly inside `range` are kept.
    public func releasePages(_ range: Range<Int>) {
        guard let mapping, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (max(0, range.lowerBound) + page - 1) / page * page
        let end = min(range.upperBound, bytes.count) / page * page
        guard end > start else { return }
        _ = madvise(mapping + start, end - start, MADV_DONTNEED)
    }

    /// Tells the kernel the file will be read front to back (verify, recover, sequential training).
    public func adviseSequential() {
        if let mapping { _ = madvise(mapping, bytes.count, MADV_SEQUENTIAL) }
    }

    deinit {
        if let mapping { munmap(mapping, bytes.count) }
    }
}
