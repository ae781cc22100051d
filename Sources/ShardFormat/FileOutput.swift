#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file written under a temporary name and moved into place only when complete: write, fsync, rename,
/// fsync the folder. Until `commit`, the final name is untouched. The running CRC-32 and size of what was
/// written feed the dataset manifest without reading the file back.
final class AtomicFileOutput {
    let finalPath: String
    let temporaryPath: String
    private var fd: Int32
    private(set) var size = 0
    private(set) var crc: UInt32 = 0

    /// The name a writer uses while the file is incomplete (what `recover` reads after a crash).
    static func temporaryPath(for path: String) -> String { path + ".partial" }

    init(path: String) throws {
        finalPath = path
        temporaryPath = Self.temporaryPath(for: path)
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Self.error("cannot create", temporaryPath) }
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { buffer in
            var done = 0
            while done < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + done, buffer.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw Self.error("cannot write", temporaryPath)
                }
                done += n
            }
            crc = CRC32.checksum(buffer, continuing: crc)
        }
        size += bytes.count
    }

    /// Makes the file durable and gives it its final name.
    func commit() throws {
        guard fsync(fd) == 0 else { throw Self.error("cannot fsync", temporaryPath) }
        close(fd)
        fd = -1
        guard rename(temporaryPath, finalPath) == 0 else { throw Self.error("cannot rename to \(finalPath)", temporaryPath) }
        let folder = finalPath.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let dirfd = open(folder.isEmpty ? "." : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
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

    private static func error(_ what: String, _ path: String) -> ShardError {
        ShardError(.io, "\(what): \(String(cString: strerror(errno)))", at: ShardLocation(file: path))
    }
}
