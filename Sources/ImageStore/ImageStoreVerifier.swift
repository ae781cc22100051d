import Foundation

/// Checks a whole store file: every rule the reader checks at open, then every image's stored bytes
/// against their CRC-32 and, in a JPEG store, every image's JPEG rules and decode. Unlike reading, it does
/// not stop at the first bad image: it lists each one (up to a limit), so a person sees how much of a
/// store is damaged.
public struct ImageStoreVerifier: Sendable {
    /// Stop listing problems after this many (the rest are counted in ``Report/omittedProblems``).
    public var maxProblems: Int
    /// Threads that check images at once (at least 1; never more than the store's images).
    public var threads: Int

    /// A verifier listing at most `maxProblems` problems, on `threads` threads.
    public init(maxProblems: Int = 100, threads: Int = 1) {
        self.maxProblems = maxProblems
        self.threads = threads
    }

    /// What a verification found.
    public struct Report: Sendable {
        /// The store checked.
        public var path: String
        /// Nil when the store could not be opened (then `problems` holds that one error).
        public var kind: StoreKind?
        /// N, the images checked (0 when the store did not open).
        public var images: Int
        /// The file's size in bytes.
        public var bytes: Int
        /// In image order; the open error alone when the store does not open.
        public var problems: [ImageStoreError]
        /// Bad images past `maxProblems`.
        public var omittedProblems: Int

        /// True when nothing at all was found.
        public var isClean: Bool { problems.isEmpty && omittedProblems == 0 }
    }

    /// `progress` gets (images checked, total), from the workers but never from two at once.
    public func verify(path: String, progress: ((Int, Int) -> Void)? = nil) -> Report {
        let store: ImageStore
        do {
            store = try ImageStore(path: path, pixelCheck: .never)
        } catch {
            let problem = error as? ImageStoreError ?? ImageStoreError(.io, "\(error)", file: path)
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            return Report(path: path, kind: nil, images: 0, bytes: size, problems: [problem], omittedProblems: 0)
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        let collected = Collector()
        let workers = max(1, min(threads, store.count))
        let report = ProgressCallback(progress)
        let work: @Sendable (Int) -> Void = { worker in
            var scratch = [UInt8]()
            for index in stride(from: worker, to: store.count, by: workers) {
                do {
                    try store.verifyImage(index, scratch: &scratch)
                } catch {
                    collected.fail(index, error as? ImageStoreError ?? ImageStoreError(.io, "\(error)", file: path, image: index))
                }
                collected.tick { report.call?($0, store.count) }
            }
        }
        if workers == 1 { work(0) } else { DispatchQueue.concurrentPerform(iterations: workers, execute: work) }
        let all = collected.failures
        return Report(path: path, kind: store.kind, images: store.count, bytes: size,
                      problems: Array(all.prefix(maxProblems)), omittedProblems: max(0, all.count - maxProblems))
    }
}

/// The caller's progress closure, carried into the verifying threads. `@unchecked Sendable` because the
/// closure need not be: it is only ever called inside ``Collector/tick(_:)``, under the collector's lock, so
/// never from two threads at once (what ``ImageStoreVerifier/verify(path:progress:)`` promises its caller).
private struct ProgressCallback: @unchecked Sendable {
    let call: ((Int, Int) -> Void)?

    init(_ call: ((Int, Int) -> Void)?) { self.call = call }
}

/// Failures by image index and a progress count, shared by the verifying threads.
private final class Collector: @unchecked Sendable {
    private let lock = NSLock()
    private var byIndex: [Int: ImageStoreError] = [:]
    private var done = 0

    func fail(_ index: Int, _ error: ImageStoreError) {
        lock.lock()
        byIndex[index] = error
        lock.unlock()
    }

    /// Counts one image and reports the count, under the lock (so a progress bar is drawn by one thread at a time).
    func tick(_ report: (Int) -> Void) {
        lock.lock()
        defer { lock.unlock() }
        done += 1
        report(done)
    }

    var failures: [ImageStoreError] {
        lock.lock()
        defer { lock.unlock() }
        return byIndex.keys.sorted().map { byIndex[$0]! }
    }
}
