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

/// A value computed on another thread from the moment this is made (or, with `async: false`, right
/// away on this one); ``value()`` waits for it and rethrows its error.
final class Pending<T>: @unchecked Sendable {  // `result` is written once, before `done` is signalled
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, Error>?

    init(async: Bool, _ body: @escaping () throws -> T) {
        guard async else {
            result = Result(catching: body)
            done.signal()
            return
        }
        DispatchQueue.global().async {
            self.result = Result(catching: body)
            self.done.signal()
        }
    }

    func value() throws -> T {
        done.wait()
        done.signal()  // a second call does not block
        return try result!.get()
    }
}
