/// One value per index, written by concurrent workers that each touch only their own indices and read
/// after every worker has returned (the verifier's per-worker problems and per-block flags, the dataset
/// statistics' per-shard results). Swift cannot see "each worker its own index", hence
/// `@unchecked Sendable`; a buffer rather than an array property, because concurrent writes to one array
/// property would be overlapping accesses.
final class WorkerSlots<Element>: @unchecked Sendable {
    private let buffer: UnsafeMutableBufferPointer<Element>

    init(count: Int, repeating value: Element) {
        buffer = .allocate(capacity: count)
        buffer.initialize(repeating: value)
    }

    deinit {
        buffer.deinitialize()
        buffer.deallocate()
    }

    subscript(index: Int) -> Element {
        get { buffer[index] }
        set { buffer[index] = newValue }
    }

    /// Every slot, in index order (once the workers are done).
    var values: [Element] { Array(buffer) }
}
