#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory map of a whole file. Pages load on first touch, so opening a store of any size is
/// cheap and many threads can read images without copies or locks. (The usual mmap caveat: if another
/// process truncates the file while it is mapped, touching the lost pages raises SIGBUS. Stores are
/// written under a temporary name and renamed, so this project never truncates a finished store.)
final class MappedFile: @unchecked Sendable {
    let path: String
    let bytes: UnsafeRawBufferPointer
    private let mapping: UnsafeMutableRawPointer?

    init(path: String) throws {
        self.path = path
        func fail(_ what: String) -> ImageStoreError {
            ImageStoreError(.io, "\(what): \(String(cString: strerror(errno)))", file: path)
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw fail("cannot open") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw fail("cannot stat") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw ImageStoreError(.io, "not a regular file", file: path) }
        let size = Int(info.st_size)
        if size == 0 {  // mmap refuses length 0
            mapping = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let pointer = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), pointer != MAP_FAILED else {
            throw fail("cannot map")
        }
        mapping = pointer
        bytes = UnsafeRawBufferPointer(start: pointer, count: size)
    }

    deinit {
        if let mapping { munmap(mapping, bytes.count) }
    }
}
