/// A set of u32 sample ids for duplicate checks (the writer's, the verifier's). The id space is cut into
/// 65,536 pages of 65,536 ids; a page holds its ids as a small sorted array until it has 64, then as an
/// 8 KiB bitmap. Memory follows how the ids are spread, never the largest id alone: a shard's usual ids
/// (dense runs) cost ~1 bit each, scattered ids ~2 bytes each, and nothing can exceed 513 MiB (every
/// page a bitmap), the size of the whole id space. Insert and lookup are O(64) at most.
struct SampleIDSet {
    private enum Page {
        case small([UInt16])
        case bitmap([UInt64])
    }

    private static let smallLimit = 64
    private var pages = [Page?](repeating: nil, count: 1 << 16)
    private(set) var count = 0

    func contains(_ id: UInt32) -> Bool {
        let low = UInt16(truncatingIfNeeded: id)
        switch pages[Int(id >> 16)] {
        case nil: return false
        case let .small(ids)?: return Self.position(of: low, in: ids).found
        case let .bitmap(words)?: return words[Int(low >> 6)] & (1 << UInt64(low & 63)) != 0
        }
    }

    /// Inserts `id`; false when it was already there.
    @discardableResult
    mutating func insert(_ id: UInt32) -> Bool {
        let page = Int(id >> 16)
        let low = UInt16(truncatingIfNeeded: id)
        switch pages[page] {
        case nil:
            pages[page] = .small([low])
        case var .small(ids)?:
            let (at, found) = Self.position(of: low, in: ids)
            if found { return false }
            pages[page] = nil  // keep the array uniquely referenced while it changes
            if ids.count < Self.smallLimit {
                ids.insert(low, at: at)
                pages[page] = .small(ids)
            } else {
                var words = [UInt64](repeating: 0, count: 1024)
                for value in ids + [low] { words[Int(value >> 6)] |= 1 << UInt64(value & 63) }
                pages[page] = .bitmap(words)
            }
        case var .bitmap(words)?:
            let bit: UInt64 = 1 << UInt64(low & 63)
            if words[Int(low >> 6)] & bit != 0 { return false }
            pages[page] = nil
            words[Int(low >> 6)] |= bit
            pages[page] = .bitmap(words)
        }
        count += 1
        return true
    }

    private static func position(of value: UInt16, in ids: [UInt16]) -> (at: Int, found: Bool) {
        var low = 0
        var high = ids.count
        while low < high {
            let middle = (low + high) / 2
            if ids[middle] < value { low = middle + 1 } else { high = middle }
        }
        return (low, low < ids.count && ids[low] == value)
    }
}
