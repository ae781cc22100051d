#if canImport(Glibc)
import Glibc
#endif

/// Plain file-descriptor writes, shared by the writers of every module (``AtomicFileOutput``,
/// ShardConvert's buffered output): the project's one write loop.
public enum FileDescriptorIO {
    /// Writes all of `bytes` to `fd`, continuing after short writes and retrying writes interrupted by a
    /// signal (EINTR). Returns false on the first other failure, with `errno` telling why.
    public static func writeAll(_ bytes: UnsafeRawBufferPointer, to fd: Int32) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            done += n
        }
        return true
    }
}

/// Standard error as the command-line tools use it: whole lines written with the one write loop, from any
/// thread (C's `stderr` is a mutable global, which Swift 6 does not let concurrent code touch).
public enum StandardError {
    /// Writes `text` as is (the caller adds the newline); a failed write is ignored, as `fputs` would be.
    public static func write(_ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { FileDescriptorIO.writeAll(UnsafeRawBufferPointer($0), to: 2) }
    }
}
