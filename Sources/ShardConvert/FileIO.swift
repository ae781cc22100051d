#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ShardFormat

/// A source file read front to back in chunks, so that a converter's memory does not grow with it.
/// Errors name the file.
final class InputFile {
    let path: String
    let size: Int
    private var fd: Int32
    private(set) var offset = 0

    init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ConversionError.io("cannot open: \(String(cString: strerror(errno)))", file: path) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            close(fd)
            throw ConversionError.io("cannot stat: \(String(cString: strerror(errno)))", file: path)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw ConversionError.io("not a regular file", file: path)
        }
        size = Int(info.st_size)
    }

    deinit { Glibc.close(fd) }

    /// The size of a file without opening it for reading, or nil when it does not exist.
    static func size(of path: String) -> Int? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int(info.st_size)
    }

    /// Fills `buffer` completely from the current offset; throws if the file ends first.
    func readExactly(into buffer: UnsafeMutableRawBufferPointer) throws {
        var done = 0
        while done < buffer.count {
            let n = Glibc.read(fd, buffer.baseAddress! + done, buffer.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw ConversionError.io("cannot read: \(String(cString: strerror(errno)))", file: path)
            }
            if n == 0 {
                throw ConversionError.io("file ended after \(offset + done) bytes (expected \(offset + buffer.count))", file: path)
            }
            done += n
        }
        offset += done
    }

    /// The next `count` bytes.
    func read(count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        if count > 0 { try bytes.withUnsafeMutableBytes { try readExactly(into: $0) } }
        return bytes
    }

    /// A whole (small) file.
    static func readAll(path: String) throws -> [UInt8] {
        let file = try InputFile(path: path)
        return try file.read(count: file.size)
    }
}

/// A file written through a buffer. `close()` flushes; a writer that fails calls `remove()`.
final class OutputFile {
    let path: String
    private var fd: Int32
    private var buffer: [UInt8] = []
    private let capacity = 1 << 20

    init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ConversionError.io("cannot create: \(String(cString: strerror(errno)))", file: path) }
        buffer.reserveCapacity(capacity)
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        buffer.append(contentsOf: bytes)
        if buffer.count >= capacity { try flush() }
    }

    func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    private func flush() throws {
        try buffer.withUnsafeBytes { bytes in
            guard FileDescriptorIO.writeAll(bytes, to: fd) else {
                throw ConversionError.io("cannot write: \(String(cString: strerror(errno)))", file: path)
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    func close() throws {
        try flush()
        let status = Glibc.close(fd)
        fd = -1
        guard status == 0 else { throw ConversionError.io("cannot close: \(String(cString: strerror(errno)))", file: path) }
    }

    /// Closes (without flushing) and deletes the file.
    func remove() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
        unlink(path)
    }
}
