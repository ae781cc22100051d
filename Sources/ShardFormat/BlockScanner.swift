/// Walks the blocks of a shard from its header on, without trusting the index or footer: what `recover`
/// and the verifier use on incomplete or damaged files (the salvage scan of Spec §1.5).
///
/// Linear in the file however it is built: (1) one pass finds every *candidate* — a `TSBK` magic whose
/// 32-byte header has a valid CRC, a reserved 0, 1 ≤ n ≤ R, a first ordinal that is a multiple of R and
/// a payload that fits; (2) one CRC pass over the file records the running CRC at every candidate's
/// payload start and end, from which each payload CRC follows in O(log P) (``CRC32Shift``); (3) from the
/// start, the first candidate at or after the current position whose payload CRC holds is decoded, and
/// its whole extent is consumed whether or not its records pass (a checksum-valid block is what a writer
/// wrote; nothing inside it can be another block). Candidates whose payload CRC fails cost O(1) each.
struct BlockScanner {
    struct Found {
        var offset: Int
        var length: Int
        var block: DecodedBlock
    }

    struct Skipped {
        var offset: Int
        var length: Int
        var reason: ShardError
    }

    let file: UnsafeRawBufferPointer
    let schema: ShardSchema
    let blocksStart: Int
    /// Where blocks end: the index offset of a complete file, else the file size.
    let end: Int

    private struct Candidate {
        var offset: Int
        var payloadLength: Int
        var payloadCRC: UInt32
    }

    /// Calls `found` for each block that decodes and passes every record check, `skipped` for each
    /// damaged stretch. Blocks are handed over in file order; the DecodedBlock is reused between calls.
    func scan(found: (Found) throws -> Void, skipped: (Skipped) throws -> Void) throws {
        guard end > blocksStart else { return }
        let candidates = findCandidates()
        let crcs = payloadChecksums(candidates)
        let block = DecodedBlock(schema: schema)
        var offset = blocksStart
        var damage: (start: Int, reason: ShardError)?
        func damaged(at start: Int, _ reason: ShardError) {
            if damage == nil { damage = (start, reason) }
        }
        for (number, candidate) in candidates.enumerated() where candidate.offset >= offset {
            if candidate.offset > offset {
                damaged(at: offset, ShardError(.blockStructure, "no valid block header at offset \(offset)"))
            }
            guard crcs[number] == candidate.payloadCRC else {
                damaged(at: candidate.offset, ShardError(.blockCRC, "block at offset \(candidate.offset): payload checksum mismatch"))
                continue
            }
            let length = BlockLayout.headerSize + candidate.payloadLength
            do {
                try decodeBlock(at: candidate.offset, length: length, into: block)
            } catch let error as ShardError {
                damaged(at: candidate.offset, error)
                offset = candidate.offset + length
                continue
            }
            if let (start, reason) = damage {
                try skipped(Skipped(offset: start, length: candidate.offset - start, reason: reason))
                damage = nil
            }
            try found(Found(offset: candidate.offset, length: length, block: block))
            offset = candidate.offset + length
        }
        if let (start, reason) = damage {
            try skipped(Skipped(offset: start, length: end - start, reason: reason))
        } else if offset < end {
            try skipped(Skipped(offset: offset, length: end - offset,
                                reason: ShardError(.incomplete, "the last \(end - offset) bytes are not a whole block")))
        }
    }

    /// Every offset whose 32 bytes form a block header that could start a salvaged block.
    private func findCandidates() -> [Candidate] {
        var out: [Candidate] = []
        var position = blocksStart
        let r = schema.recordsPerBlock
        while position + BlockLayout.headerSize <= end {
            if file[position] == 0x54, file[position + 1] == 0x53, file[position + 2] == 0x42, file[position + 3] == 0x4B {
                // The block header's own checks (magic, checksum, reserved field, count ≥ 1, first ordinal in
                // range), then those of this shard: at most R records, starting at a multiple of R, inside the file.
                if let header = try? BlockHeader(UnsafeRawBufferPointer(rebasing: file[position..<(position + BlockLayout.headerSize)])),
                   header.count <= r, header.firstOrdinal % r == 0,
                   header.payloadLength <= end - position - BlockLayout.headerSize {
                    out.append(Candidate(offset: position, payloadLength: header.payloadLength, payloadCRC: header.payloadCRC))
                }
            }
            position += 1
        }
        return out
    }

    /// The CRC-32 of each candidate's payload, from one running-CRC pass over the file.
    private func payloadChecksums(_ candidates: [Candidate]) -> [UInt32] {
        var positions: [Int] = []
        positions.reserveCapacity(2 * candidates.count)
        for c in candidates {
            positions.append(c.offset + BlockLayout.headerSize)
            positions.append(c.offset + BlockLayout.headerSize + c.payloadLength)
        }
        positions.sort()
        var unique: [Int] = []
        unique.reserveCapacity(positions.count)
        for p in positions where unique.last != p { unique.append(p) }
        positions = []
        var running = [UInt32](repeating: 0, count: unique.count)  // CRC of [blocksStart, unique[i])
        var crc: UInt32 = 0
        var at = blocksStart
        for (i, p) in unique.enumerated() {
            crc = CRC32.checksum(UnsafeRawBufferPointer(rebasing: file[at..<p]), continuing: crc)
            at = p
            running[i] = crc
        }
        func prefix(_ p: Int) -> UInt32 {
            var low = 0, high = unique.count
            while low < high {
                let middle = (low + high) / 2
                if unique[middle] < p { low = middle + 1 } else { high = middle }
            }
            return running[low]
        }
        return candidates.map { c in
            let start = c.offset + BlockLayout.headerSize
            return CRC32Shift.range(prefixToStart: prefix(start), prefixToEnd: prefix(start + c.payloadLength), length: c.payloadLength)
        }
    }

    /// Decodes and checks the block at `offset` (its header and payload CRC already hold).
    private func decodeBlock(at offset: Int, length: Int, into block: DecodedBlock) throws {
        let bytes = UnsafeRawBufferPointer(rebasing: file[offset..<(offset + length)])
        let header = try BlockHeader(bytes)
        try block.decode(bytes, index: header.firstOrdinal / schema.recordsPerBlock,
                         expectedCount: header.count, expectedFirst: header.firstOrdinal)
        if let (i, problem) = block.firstRecordProblem() { throw problem.located(block.location(ofRecord: i)) }
    }
}
