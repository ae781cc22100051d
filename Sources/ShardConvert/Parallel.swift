import Foundation

/// Independent pieces of work on a few threads.
enum Parallel {
    /// `body(0) ... body(count - 1)` on up to `threads` threads; the results in index order. When several
    /// pieces throw, the error of the lowest index is thrown (the one a sequential loop would meet first).
    /// The caller promises what the name says: the pieces are independent (each touches its own data, or
    /// only reads shared data).
    static func map<T>(_ count: Int, threads: Int, _ body: (Int) throws -> T) throws -> [T] {
        guard threads > 1, count > 1 else { return try (0..<count).map(body) }
        return try withoutActuallyEscaping(body) { body in
            let work = ParallelWork(count: count, body: body)
            DispatchQueue.concurrentPerform(iterations: min(threads, count)) { _ in work.run() }
            return try work.results()
        }
    }
}

/// What the workers of ``Parallel/map(_:threads:_:)`` share: the next index and the results, touched only
/// under `lock`, and the body, which the caller declared safe to run on several threads at once — hence
/// `@unchecked Sendable`.
private final class ParallelWork<T>: @unchecked Sendable {
    private let lock = NSLock()
    private let count: Int
    private let body: (Int) throws -> T
    private var next = 0
    private var slots: [Result<T, Error>?]

    init(count: Int, body: @escaping (Int) throws -> T) {
        self.count = count
        self.body = body
        slots = Array(repeating: nil, count: count)
    }

    /// Takes pieces until none is left.
    func run() {
        while true {
            let index: Int = lock.withLock {
                defer { next += 1 }
                return next
            }
            guard index < count else { return }
            let result = Result { try body(index) }
            lock.withLock { slots[index] = result }
        }
    }

    func results() throws -> [T] { try slots.map { try $0!.get() } }
}

/// A value computed on another thread from the moment this is made (or, with `async: false`, right
/// away on this one); ``value()`` waits for it and rethrows its error.
final class Pending<T>: @unchecked Sendable {  // `result` is written once, before `done` is signalled; `body` runs once
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, Error>?
    private var body: (() throws -> T)?

    init(async: Bool, _ body: @escaping () throws -> T) {
        guard async else {
            result = Result(catching: body)
            done.signal()
            return
        }
        self.body = body
        DispatchQueue.global().async { self.compute() }
    }

    private func compute() {
        result = Result(catching: body!)
        body = nil
        done.signal()
    }

    func value() throws -> T {
        done.wait()
        done.signal()  // a second call does not block
        return try result!.get()
    }
}
