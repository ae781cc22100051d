import Foundation

/// The threading layer for Swift kernels: `DispatchQueue.concurrentPerform` over one worker per
/// core; oneDNN's GEMMs run on its own OpenMP team. Calls are synchronous, so the two pools take
/// turns rather than run together.
///
/// Measured alternative (opt-in with `TINYSHARD_OPENMP_KERNELS=1`): run the Swift kernels on
/// oneDNN's OpenMP team itself through libgomp's `GOMP_parallel` (resolved at run time in the
/// already-loaded libgomp), which avoids a second pool but makes every kernel end in an OpenMP
/// barrier; on this 2-core machine shared with other jobs that was 2× slower (spinning barriers
/// under oversubscription), so Dispatch is the default.
public enum Parallel {
    /// Number of workers used by Swift kernels (OpenMP's thread count when opted in, else
    /// `defaultWorkerCount`).
    nonisolated(unsafe) public static var workerCount: Int = {
        if let f = OpenMP.maxThreads { return max(1, Int(f())) }
        return defaultWorkerCount(environment: ProcessInfo.processInfo.environment, allowedCPUs: allowedCPUCount())
    }()

    /// The rule oneDNN's OpenMP team (libgomp) follows too, so that one setting governs both pools:
    /// `OMP_NUM_THREADS` when it starts with a positive number (e.g. `1`, or `4,2` for nested teams), else
    /// the CPUs this process may run on (its affinity mask: `mpirun` binds each rank to its cores), else
    /// the number of cores. Several processes per host (MPI ranks) should each get cores / ranks.
    public static func defaultWorkerCount(environment: [String: String], allowedCPUs: Int?) -> Int {
        if let value = environment["OMP_NUM_THREADS"],
           let first = value.split(separator: ",").first.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }), first > 0 {
            return first
        }
        if let allowedCPUs, allowedCPUs > 0 { return min(allowedCPUs, max(1, ProcessInfo.processInfo.activeProcessorCount)) }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// CPUs in this process's affinity mask (Linux `sched_getaffinity`, looked up at run time because
    /// Swift's Glibc module does not export it), or nil when unknown.
    public static func allowedCPUCount() -> Int? {
        #if os(Linux)
        typealias GetAffinity = @convention(c) (Int32, Int, UnsafeMutableRawPointer?) -> Int32
        guard let symbol = dlsym(OpenMP.handle, "sched_getaffinity") else { return nil }
        let getAffinity = unsafeBitCast(symbol, to: GetAffinity.self)
        var mask = [UInt64](repeating: 0, count: 16)  // 1024 CPUs, glibc's cpu_set_t
        let status = mask.withUnsafeMutableBytes { getAffinity(0, $0.count, $0.baseAddress) }
        guard status == 0 else { return nil }
        let count = mask.reduce(0) { $0 + $1.nonzeroBitCount }
        return count > 0 ? count : nil
        #else
        return nil
        #endif
    }

    /// Splits `0..<count` into contiguous ranges of at least `grain` items and runs `body`
    /// on each, concurrently when there is more than one range.
    @inline(__always)
    public static func forRanges(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        forWorkers(count, grain: grain) { _, r in body(r) }
    }

    /// Like ``forRanges(_:grain:_:)`` but also passes the worker index (0..<parts) and returns
    /// the number of parts, for kernels that keep per-worker partial sums.
    @discardableResult
    public static func forWorkers(_ count: Int, grain: Int = 1,
                                  _ body: (_ worker: Int, _ range: Range<Int>) -> Void) -> Int {
        if count <= 0 { return 0 }
        let parts = min(workerCount, max(1, count / max(grain, 1)))
        if parts == 1 { body(0, 0..<count); return 1 }
        let run: (Int) -> Void = { p in
            let lo = count * p / parts, hi = count * (p + 1) / parts
            if lo < hi { body(p, lo..<hi) }
        }
        if let parallel = OpenMP.parallel, let threadNum = OpenMP.threadNum {
            withoutActuallyEscaping(run) { run in
                var job = OpenMP.Job(body: run, parts: parts, threadNum: threadNum)
                withUnsafeMutablePointer(to: &job) { parallel(OpenMP.trampoline, UnsafeMutableRawPointer($0), UInt32(parts), 0) }
            }
        } else {
            // A kernel's body writes only its own range (this function's contract), which Swift cannot see:
            // it crosses to Dispatch's workers in an unchecked box.
            withoutActuallyEscaping(run) { run in
                let shared = UncheckedSendable(run)
                DispatchQueue.concurrentPerform(iterations: parts) { shared.value($0) }
            }
        }
        return parts
    }
}

/// A value handed to concurrently running code whose safety the caller guarantees (see its use).
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// libgomp entry points resolved with `dlsym` in the running process.
enum OpenMP {
    typealias Region = @convention(c) (UnsafeMutableRawPointer?) -> Void
    typealias ParallelFn = @convention(c) (Region, UnsafeMutableRawPointer?, UInt32, UInt32) -> Void
    typealias IntFn = @convention(c) () -> Int32

    struct Job {
        let body: (Int) -> Void
        let parts: Int
        let threadNum: IntFn
    }

    // Set once (a static let is initialised once, thread-safely) and only read after: a plain pointer.
    nonisolated(unsafe) static let handle = dlopen(nil, RTLD_NOW)
    static let parallel: ParallelFn? = symbol("GOMP_parallel")
    static let threadNum: IntFn? = symbol("omp_get_thread_num")
    static let maxThreads: IntFn? = symbol("omp_get_max_threads")

    static func symbol<T>(_ name: String) -> T? {
        guard ProcessInfo.processInfo.environment["TINYSHARD_OPENMP_KERNELS"] == "1",
              let p = dlsym(handle, name) else { return nil }
        return unsafeBitCast(p, to: T.self)
    }

    /// Runs on every team thread: thread t executes part t.
    static let trampoline: Region = { raw in
        let job = raw!.assumingMemoryBound(to: Job.self).pointee
        let t = Int(job.threadNum())
        if t < job.parts { job.body(t) }
    }
}
