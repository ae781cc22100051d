#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file written under a temporary name and moved into place only when complete: write, fsync, rename,
/// fsync the folder. Until `commit`, the final name is untouched. The running CRC-32 and size of what
/// was appended feed the dataset manifest without reading the file back.
///
/// Public because every file this project writes (shards, key tables, manifests, image stores) is
/// written this way.
public final class AtomicFileOutput {
    /// Where the file ends up after ``commit()``.
    public let finalPath: String
    /// Where the bytes go until then: `finalPath + ".partial"`.
    public let temporaryPath: String
    private var fd: Int32
    private var buffer: [UInt8] = []
    private let bufferLimit: Int
    /// Bytes appended so far, buffered or not.
    public private(set) var size = 0
    /// CRC-32 of the appended bytes. A patch with ``write(_:at:)`` is not reflected in it.
    public private(set) var crc: UInt32 = 0

    /// The name a writer uses while the file is incomplete (what `recover` reads after a crash).
    public static func temporaryPath(for path: String) -> String { path + ".partial" }

    /// Creates (or truncates) `PATH.partial`; throws ``FileIOError`` naming it when it cannot.
    /// - Parameter path: the final path; nothing is written there before ``commit()``.
    /// - Parameter bufferBytes: appends smaller than this are gathered before a system call (for writers
    ///   of many small pieces, like one image at a time). 0, the default, writes each append at once, so
    ///   that everything appended before a crash is on disk for `recover` (shards append whole blocks).
    public init(path: String, bufferBytes: Int = 0) throws {
        bufferLimit = max(0, bufferBytes)
        finalPath = path
        temporaryPath = Self.temporaryPath(for: path)
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Self.error("cannot create", temporaryPath) }
    }

    /// Reopens the temporary file of an earlier, interrupted writer of `path` and keeps its first `bytes`
    /// bytes (cutting what follows: a torn block), so that appends continue after them. The running size and
    /// CRC-32 cover the kept bytes, as if this writer had appended them.
    public init(resuming path: String, keeping bytes: Int) throws {
        bufferLimit = 0
        finalPath = path
        temporaryPath = Self.temporaryPath(for: path)
        fd = open(temporaryPath, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw Self.error("cannot reopen", temporaryPath) }
        guard ftruncate(fd, off_t(bytes)) == 0, lseek(fd, off_t(bytes), SEEK_SET) == off_t(bytes) else {
            close(fd)
            throw Self.error("cannot cut to \(bytes) bytes", temporaryPath)
        }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var done = 0
        while done < bytes {
            let wanted = min(chunk.count, bytes - done)
            let got = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, wanted, off_t(done)) }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else {
                close(fd)
                throw Self.error("cannot read back", temporaryPath)
            }
            crc = chunk.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<got]), continuing: crc) }
            done += got
        }
        size = bytes
    }

    /// Appends `bytes` (gathered in the buffer when smaller than its limit) and adds them to ``size`` and ``crc``;
    /// throws ``FileIOError`` when the write fails.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        crc = CRC32.checksum(bytes, continuing: crc)
        size += bytes.count
        if buffer.count + bytes.count > bufferLimit { try flush() }
        if bytes.count >= bufferLimit || bufferLimit == 0 {
            try writeFully(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
    }

    /// Appends `bytes`; see ``write(_:)-(UnsafeRawBufferPointer)``.
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Overwrites bytes at `offset`, inside what was already appended (a header written last).
    public func write(_ bytes: [UInt8], at offset: Int) throws {
        precondition(offset >= 0 && offset + bytes.count <= size, "patch outside the written bytes")
        try flush()
        let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        guard written == bytes.count else { throw Self.error("cannot write", temporaryPath) }
    }

    /// Makes what was written so far durable, under the temporary name (a writer that stops and will be
    /// resumed).
    public func sync() throws {
        try flush()
        guard fsync(fd) == 0 else { throw Self.error("cannot fsync", temporaryPath) }
    }

    /// Makes the file durable and gives it its final name.
    public func commit() throws {
        try flush()
        guard fsync(fd) == 0 else { throw Self.error("cannot fsync", temporaryPath) }
        close(fd)
        fd = -1
        guard rename(temporaryPath, finalPath) == 0 else { throw Self.error("cannot rename to \(finalPath)", temporaryPath) }
        let folder = finalPath.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let dirfd = open(folder.isEmpty ? (finalPath.hasPrefix("/") ? "/" : ".") : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 {  // the rename itself must survive a power cut
            fsync(dirfd)
            close(dirfd)
        }
    }

    /// Closes and deletes the temporary file.
    public func discard() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(temporaryPath)
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try writeFully($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeFully(_ bytes: UnsafeRawBufferPointer) throws {
        guard FileDescriptorIO.writeAll(bytes, to: fd) else { throw Self.error("cannot write", temporaryPath) }
    }

    private static func error(_ what: String, _ path: String) -> FileIOError {
        FileIOError(path: path, message: "\(what): \(String(cString: strerror(errno)))")
    }
}
