#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file written under `<path>.partial` and renamed into place only when complete (write, fsync,
/// rename, fsync the folder), so the final name never holds a half-written store. Writes are buffered;
/// `writeAt` patches bytes already written (the header, last).
final class AtomicFile {
    let finalPath: String
    let temporaryPath: String
    private var fd: Int32
    private var buffer: [UInt8] = []
    private let bufferLimit = 1 << 20
    /// Bytes written so far, buffered or not.
    private(set) var size = 0

    init(path: String) throws {
        finalPath = path
        temporaryPath = path + ".partial"
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Self.error("cannot create", temporaryPath) }
        buffer.reserveCapacity(bufferLimit)
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if buffer.count + bytes.count > bufferLimit { try flush() }
        if bytes.count >= bufferLimit {
            try writeFully(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
        size += bytes.count
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Overwrites bytes at `offset` (inside what was already written).
    func write(_ bytes: [UInt8], at offset: Int) throws {
        try flush()
        let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        guard written == bytes.count else { throw Self.error("cannot write", temporaryPath) }
    }

    /// Makes the file durable and gives it its final name.
    func commit() throws {
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
    func discard() {
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
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw Self.error("cannot write", temporaryPath)
            }
            done += n
        }
    }

    private static func error(_ what: String, _ path: String) -> ImageStoreError {
        ImageStoreError(.io, "\(what): \(String(cString: strerror(errno)))", file: path)
    }
}
