/// A set of u32 sample ids for duplicate checks (the writer's, the verifier's). The id space is cut into
/// 65,536 pages of 65,536 ids; a page holds its ids as a small sorted array until it has 64, then as an
/// 8 KiB bitmap. Memory follows how the ids are spread, never the largest id alone: a shard's usual ids
/// (dense runs) cost ~1 bit each, scattered ids ~2 bytes each, and nothing can exceed 513 MiB (every
/// page a bitmap), the size of the whole id space. Insert and lookup are O(64) at most.
///
/// Pages live in two stores indexed by a slot per page, so that an insert mutates its page in place: no
/// array is copied, retained or released per id (the verifier inserts every record of a shard), and a
/// new bitmap is one allocation of its own (no store that doubles and copies as it grows).
struct SampleIDSet {
    private static let smallLimit = 64
    private static let wordsPerPage = 1 << 10

    /// Per page: 0 empty; s > 0 the small page `smallPages[s - 1]`; b < 0 the bitmap `bitmaps[-b - 1]`.
    private var slots = [Int32](repeating: 0, count: 1 << 16)
    private var smallPages: [[UInt16]] = []
    private var bitmaps: [[UInt64]] = []
    private(set) var count = 0

    func contains(_ id: UInt32) -> Bool {
        let low = UInt16(truncatingIfNeeded: id)
        let slot = slots[Int(id >> 16)]
        if slot < 0 {
            return bitmaps[Int(-slot - 1)][Int(low >> 6)] & Self.bit(low) != 0
        }
        return slot > 0 && Self.position(of: low, in: smallPages[Int(slot - 1)]).found
    }

    /// Inserts `id`; false when it was already there.
    @discardableResult
    mutating func insert(_ id: UInt32) -> Bool {
        let page = Int(id >> 16)
        let low = UInt16(truncatingIfNeeded: id)
        let slot = slots[page]
        if slot < 0 {
            let bitmap = Int(-slot - 1), word = Int(low >> 6)
            if bitmaps[bitmap][word] & Self.bit(low) != 0 { return false }
            bitmaps[bitmap][word] |= Self.bit(low)
        } else if slot == 0 {
            smallPages.append([low])
            slots[page] = Int32(smallPages.count)
        } else {
            let small = Int(slot - 1)
            let (at, found) = Self.position(of: low, in: smallPages[small])
            if found { return false }
            if smallPages[small].count < Self.smallLimit {
                smallPages[small].insert(low, at: at)
            } else {
                var words = [UInt64](repeating: 0, count: Self.wordsPerPage)
                for value in smallPages[small] + [low] { words[Int(value >> 6)] |= Self.bit(value) }
                bitmaps.append(words)
                smallPages[small] = []  // its ids now live in the bitmap
                slots[page] = -Int32(bitmaps.count)
            }
        }
        count += 1
        return true
    }

    private static func bit(_ low: UInt16) -> UInt64 { 1 << UInt64(low & 63) }

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
