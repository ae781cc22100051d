/// One block decoded into columns. Reused across blocks by a cursor to avoid reallocation.
final class DecodedBlock {
    let schema: ShardSchema
    private(set) var index = -1
    private(set) var count = 0
    private(set) var firstOrdinal = 0
    var sampleIDs: [UInt32] = []
    var augmentation: [UInt8] = []
    /// float16 bit patterns in stored order, K per record.
    var valueBits: [UInt16] = []
    /// The same values widened to float32 (exact), converted once per block for checks and decode.
    var values: [Float] = []
    /// Class indices ascending, K per record.
    var sortedIndices: [Int32] = []
    /// ranks[i*K + j]: position of record i's entry j among its sorted indices; valid for record i once
    /// ``decodeRanks(ofRecord:)`` has run for it. A permutation costs O(K·L) to decode (66-byte numbers at
    /// K = 100), so a random read decodes the one it returns, not its block's R.
    private(set) var ranks: [UInt8] = []
    /// The block's order numbers, L bytes per record, and which of them are decoded into `ranks`.
    private var orderNumbers: [UInt8] = []
    private var ranksDecoded: [Bool] = []
    private var orderDigits: [UInt8] = []
    /// K! − 1 in L bytes: the bound every order number is checked against when its block is decoded.
    private lazy var largestOrderNumber: [UInt8] = OrderNumber.largest(k: schema.k)
    /// Per record: ``indexOutOfRange`` / ``badOrder`` found while decoding the columns.
    private(set) var recordFlags: [UInt8] = []
    static let indexOutOfRange: UInt8 = 1
    static let badOrder: UInt8 = 2
    /// One inflate buffer per section: all five are framed and inflated before any record is decoded.
    /// Raw allocations (freed in deinit) so that the views handed out stay valid while the others grow.
    private var scratch: [UnsafeMutableRawBufferPointer] = Array(repeating: UnsafeMutableRawBufferPointer(start: nil, count: 0),
                                                                  count: BlockLayout.sectionCount)

    deinit {
        for buffer in scratch { buffer.deallocate() }
    }
    private var words: [UInt32] = []
    /// Per record, its largest class index (for the `index-out-of-range` message).
    private(set) var lastIndex: [Int64] = []
    /// The verifier's mode: values and the rules are decoded, but not the stored entry order or the
    /// sorted indices, which no rule needs (a K = 256, R = 65,536 block then takes ~100 MB, not ~270).
    let checkOnly: Bool

    init(schema: ShardSchema, checkOnly: Bool = false) {
        self.schema = schema
        self.checkOnly = checkOnly
    }

    /// Dense soft-label residual of each record (Spec section 7); empty for logit shards.
    private(set) var residuals: [Float] = []

    func computeResiduals() {
        guard schema.valueKind == .probability else { residuals = []; return }
        let k = schema.k
        if residuals.count != count { residuals = [Float](repeating: 0, count: count) }
        values.withUnsafeBufferPointer { values in
            for i in 0..<count {
                residuals[i] = softLabelResidual(UnsafeBufferPointer(rebasing: values[(i * k)..<((i + 1) * k)]), classes: schema.classes)
            }
        }
    }

    /// Forgets the decoded block, so that a block whose records failed a check is never served later.
    func invalidate() { index = -1 }

    /// Decodes and checks block `index` from its bytes. Structural damage (header, checksums, sections)
    /// throws; semantic problems of individual records are left to ``recordProblem(_:)`` so that a
    /// verifier can list them all.
    func decode(_ bytes: UnsafeRawBufferPointer, index: Int, expectedCount: Int, expectedFirst: Int) throws {
        self.index = -1
        let location = ShardLocation(block: index)
        do {
            let header = try BlockHeader(bytes)
            guard header.count == expectedCount, header.firstOrdinal == expectedFirst else {
                throw ShardError(.blockStructure,
                    "block holds \(header.count) records from ordinal \(header.firstOrdinal); the index expects \(expectedCount) from \(expectedFirst)")
            }
            guard BlockLayout.headerSize + header.payloadLength == bytes.count else {
                throw ShardError(.blockStructure, "payload length \(header.payloadLength) does not match the index's block length \(bytes.count)")
            }
            try decodePayload(UnsafeRawBufferPointer(rebasing: bytes[BlockLayout.headerSize...]), header: header)
            self.index = index
        } catch let error as ShardError {
            throw error.located(location)
        }
    }

    /// Spec §1.4 within a block: the payload checksum, then all five sections framed and inflated (and
    /// the payload filled exactly) before any record is decoded; then the columns, which cannot fail:
    /// a record whose class index is ≥ C or whose order number is ≥ K! is only marked, and reported by
    /// ``recordProblem(_:)`` in its turn.
    func decodePayload(_ payload: UnsafeRawBufferPointer, header: BlockHeader) throws {
        guard CRC32.checksum(payload) == header.payloadCRC else {
            throw ShardError(.blockCRC, "payload checksum mismatch")
        }
        let n = header.count
        let k = schema.k
        count = n
        firstOrdinal = header.firstOrdinal
        var reader = ByteReader(payload, failure: .badSection)
        let lengths = BlockLayout.decodedLengths(records: n, schema: schema)
        var sections: [UnsafeRawBufferPointer] = []
        for number in 0..<BlockLayout.sectionCount {
            sections.append(try frameSection(&reader, number, lengths[number]))
        }
        guard reader.remaining == 0 else {
            throw ShardError(.badSection, "\(reader.remaining) bytes follow the last section inside the payload")
        }
        recordFlags = resized(recordFlags, n)
        recordFlags.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        sampleIDs = resized(sampleIDs, n)
        sampleIDs.withUnsafeMutableBufferPointer { BytePlanes.join(sections[0], width: 4, into: $0) }
        augmentation = Array(sections[1])
        valueBits = resized(valueBits, n * k)
        valueBits.withUnsafeMutableBufferPointer { bits in
            // First values (n), then the later deltas (n·(K−1)), each group as 2 planes; undone straight
            // from the planes: b_0 = t_0, b_j = b_{j-1} − t_j.
            let planes = sections[2]
            let later = n * (k - 1)
            for record in 0..<n {
                var previous = UInt16(planes[record]) | UInt16(planes[n + record]) << 8
                bits[record * k] = previous
                for j in 1..<max(k, 1) {
                    let m = record * (k - 1) + j - 1
                    previous = previous &- (UInt16(planes[2 * n + m]) | UInt16(planes[2 * n + later + m]) << 8)
                    bits[record * k + j] = previous
                }
            }
        }
        if values.count != n * k { values = [Float](repeating: 0, count: n * k) }
        valueBits.withUnsafeBufferPointer { bits in values.withUnsafeMutableBufferPointer { FormatKernels.widen(bits, into: $0) } }
        lastIndex = resized(lastIndex, n)
        if checkOnly {
            largestIndices(sections[3])
            checkOrderNumbers(sections[4])
        } else {
            sortedIndices = resized(sortedIndices, n * k)
            words = resized(words, n * k)
            words.withUnsafeMutableBufferPointer { BytePlanes.join(sections[3], width: schema.indexWidth, into: $0) }
            rebuildIndices()
            checkOrderNumbers(sections[4])
            ranks = resized(ranks, n * k)
            orderNumbers = Array(sections[4])
            ranksDecoded = [Bool](repeating: false, count: n)
        }
    }

    /// Check-only: each record's largest index (Σ (g_j + 1) − 1) from the planes, marking those ≥ C.
    private func largestIndices(_ planes: UnsafeRawBufferPointer) {
        let k = schema.k
        let n = count
        let total = n * k
        let width = schema.indexWidth
        let classes = Int64(schema.classes)
        // Through buffers: a class property written per record pays an exclusivity check each time.
        lastIndex.withUnsafeMutableBufferPointer { lastIndex in
            recordFlags.withUnsafeMutableBufferPointer { flags in
                for record in 0..<n {
                    var last: Int64 = -1
                    for j in 0..<k {
                        var gap: Int64 = 0
                        for p in 0..<width { gap |= Int64(planes[p * total + record * k + j]) << (8 * Int64(p)) }
                        last += gap + 1
                    }
                    lastIndex[record] = last
                    if last >= classes { flags[record] |= Self.indexOutOfRange }
                }
            }
        }
    }

    /// Marks records whose order number is ≥ K!, by comparing bytes with K! − 1 (no permutation decoded).
    private func checkOrderNumbers(_ numbers: UnsafeRawBufferPointer) {
        let length = schema.orderLength
        guard length > 0 else { return }
        largestOrderNumber.withUnsafeBufferPointer { largest in
            recordFlags.withUnsafeMutableBufferPointer { flags in
                for record in 0..<count {
                    let number = UnsafeRawBufferPointer(rebasing: numbers[(record * length)..<((record + 1) * length)])
                    if !OrderNumber.isValid(number, largest: largest) { flags[record] |= Self.badOrder }
                }
            }
        }
    }

    private func resized<T: FixedWidthInteger>(_ array: [T], _ count: Int) -> [T] {
        array.count == count ? array : [T](repeating: 0, count: count)
    }

    private static let sectionNames = ["sample ids", "augmentation", "values", "indices", "order"]

    /// Reads one section header and returns its decoded bytes (inflated into that section's own scratch
    /// buffer when zlib), checking codec, reserved bytes, D, S and the stream.
    private func frameSection(_ reader: inout ByteReader, _ number: Int, _ expectedLength: Int) throws -> UnsafeRawBufferPointer {
        let name = Self.sectionNames[number]
        let codec = try reader.u8("\(name) section codec")
        let reserved = try reader.bytes(3, "\(name) section header")
        let stored = Int(try reader.u32("\(name) section length"))
        let decoded = Int(try reader.u32("\(name) section length"))
        guard codec <= 1 else { throw ShardError(.badSection, "\(name) section: codec \(codec) is not 0 (stored) or 1 (zlib)") }
        guard reserved.allSatisfy({ $0 == 0 }) else { throw ShardError(.badSection, "\(name) section: reserved bytes must be 0") }
        guard decoded == expectedLength else {
            throw ShardError(.badSection, "\(name) section decodes to \(decoded) bytes; \(count) records need \(expectedLength)")
        }
        let bytes = try reader.bytes(stored, "\(name) section")
        if codec == 0 {
            guard stored == decoded else { throw ShardError(.badSection, "\(name) section: stored length \(stored) ≠ \(decoded)") }
            return bytes
        }
        // No zlib stream inflates more than 1032:1, so a larger D cannot be honest: refuse it before
        // allocating D bytes (memory stays bounded by the bytes present).
        guard decoded <= 1032 * stored else {
            throw ShardError(.badSection, "\(name) section: \(stored) zlib bytes cannot inflate to \(decoded)")
        }
        if scratch[number].count < decoded {
            scratch[number].deallocate()
            scratch[number] = .allocate(byteCount: decoded, alignment: 8)
        }
        let output = UnsafeMutableRawBufferPointer(rebasing: scratch[number][0..<decoded])
        guard Zlib.decompress(bytes, into: output) else {
            throw ShardError(.badSection, "\(name) section: zlib data does not inflate to \(decoded) bytes")
        }
        return UnsafeRawBufferPointer(output)
    }

    /// Turns gaps back into ascending class indices, marking records with an index ≥ C.
    private func rebuildIndices() {
        let k = schema.k
        let n = count
        let classes = Int64(schema.classes)
        // Through buffers: a class property read or written per element pays an exclusivity check each time.
        words.withUnsafeBufferPointer { words in
            sortedIndices.withUnsafeMutableBufferPointer { sorted in
                lastIndex.withUnsafeMutableBufferPointer { lastIndex in
                    recordFlags.withUnsafeMutableBufferPointer { flags in
                        for record in 0..<n {
                            var last: Int64 = -1
                            for j in 0..<k {
                                last += Int64(words[record * k + j]) + 1
                                sorted[record * k + j] = Int32(truncatingIfNeeded: last)
                            }
                            lastIndex[record] = last
                            if last >= classes { flags[record] |= Self.indexOutOfRange }
                        }
                    }
                }
            }
        }
    }

    /// Decodes record `i`'s order number into `ranks[i*K ..< (i+1)*K]`, once per decoded block. A number
    /// ≥ K! was marked when the block was decoded (readers refuse the record); it gets the identity order.
    func decodeRanks(ofRecord i: Int) {
        guard !ranksDecoded[i] else { return }
        let k = schema.k
        let length = schema.orderLength
        if orderDigits.count != k { orderDigits = [UInt8](repeating: 0, count: k) }
        ranks.withUnsafeMutableBufferPointer { ranks in
            let out = UnsafeMutableBufferPointer(rebasing: ranks[(i * k)..<((i + 1) * k)])
            let decoded = orderNumbers.withUnsafeBytes { numbers in
                orderDigits.withUnsafeMutableBufferPointer { digits in
                    OrderNumber.decode(UnsafeRawBufferPointer(rebasing: numbers[(i * length)..<((i + 1) * length)]),
                                       ranks: out, digits: digits)
                }
            }
            if !decoded { for j in 0..<k { out[j] = UInt8(truncatingIfNeeded: j) } }
        }
        ranksDecoded[i] = true
    }
}
