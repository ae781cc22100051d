#if canImport(Glibc)
import Glibc
#endif

/// How the CLI's allocator hands memory back.
enum ProcessMemory {
    /// Maps every allocation of 1 MiB or more on its own and unmaps it when freed (glibc's mallopt
    /// M_MMAP_THRESHOLD). glibc's default threshold rises to the size of each mapped block freed, up to
    /// 32 MiB, after which such buffers come from the heap and stay in the process once freed:
    /// converting an ImageNet-21k pass left ~115 MB of freed per-rank key buffers resident next to its
    /// 316 MB key table (measured with /proc/self/status). Elsewhere nothing changes.
    static func returnLargeFreedBuffers() {
        #if canImport(Glibc)
        // mallopt is declared in malloc.h, which the Glibc module does not import; M_MMAP_THRESHOLD is -3.
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let process = dlopen(nil, RTLD_NOW), let symbol = dlsym(process, "mallopt") else { return }
        _ = unsafeBitCast(symbol, to: Mallopt.self)(-3, 1 << 20)
        #endif
    }
}
