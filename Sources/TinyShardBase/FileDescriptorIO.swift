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
