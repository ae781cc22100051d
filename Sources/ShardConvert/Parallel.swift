import Foundation

/// Independent pieces of work on a few threads.
enum Parallel {
    /// `body(0) ... body(count - 1)` on up to `threads` threads; the results in index order. When several
    /// pieces throw, the error of the lowest index is thrown (the one a sequential loop would meet first).
    static func map<T>(_ count: Int, threads: Int, _ body: (Int) throws -> T) throws -> [T] {
        guard threads > 1, count > 1 else { return try (0..<count).map(body) }
        let lock = NSLock()
        var next = 0
        var results = [Result<T, Error>?](repeating: nil, count: count)
        DispatchQueue.concurrentPerform(iterations: min(threads, count)) { _ in
            while true {
                let index: Int = lock.withLock {
                    defer { next += 1 }
                    return next
                }
                guard index < count else { return }
                let result = Result { try body(index) }
                lock.withLock { results[index] = result }
            }
        }
        return try results.map { try $0!.get() }
    }
}
