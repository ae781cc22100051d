/// Walks the blocks of a shard from its header on, without trusting the index or footer: what `recover`
/// and the verifier use on incomplete or damaged files. A damaged stretch is skipped by searching for the
/// next block header whose own checksum holds.
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

    /// Calls `found` for each block that decodes and passes every record check, `skipped` for each
    /// damaged stretch. Blocks are handed over in file order; the DecodedBlock is reused between calls.
    func scan(found: (Found) throws -> Void, skipped: (Skipped) throws -> Void) throws {
        let block = DecodedBlock(schema: schema)
        var offset = blocksStart
        var damage: (start: Int, reason: ShardError)?
        while offset + BlockLayout.headerSize <= end {
            let length: Int
            do {
                length = try decodeBlock(at: offset, into: block)
            } catch let error as ShardError {
                if damage == nil { damage = (offset, error) }
                offset = nextMagic(after: offset)
                continue
            }
            if let (start, reason) = damage {
                try skipped(Skipped(offset: start, length: offset - start, reason: reason))
                damage = nil
            }
            try found(Found(offset: offset, length: length, block: block))
            offset += length
        }
        if let (start, reason) = damage {
            try skipped(Skipped(offset: start, length: end - start, reason: reason))
        } else if offset < end {
            try skipped(Skipped(offset: offset, length: end - offset,
                                reason: ShardError(.incomplete, "the last \(end - offset) bytes are not a whole block")))
        }
    }

    /// Decodes and checks the block at `offset`; returns its length.
    private func decodeBlock(at offset: Int, into block: DecodedBlock) throws -> Int {
        let header = try BlockHeader(UnsafeRawBufferPointer(rebasing: file[offset..<end]))
        guard header.count <= schema.recordsPerBlock, header.firstOrdinal % schema.recordsPerBlock == 0,
              header.payloadLength <= end - offset - BlockLayout.headerSize else {
            throw ShardError(.incomplete, "block at offset \(offset) runs past the end of the data or breaks the block rules")
        }
        let length = BlockLayout.headerSize + header.payloadLength
        try block.decode(UnsafeRawBufferPointer(rebasing: file[offset..<(offset + length)]),
                         index: header.firstOrdinal / schema.recordsPerBlock,
                         expectedCount: header.count, expectedFirst: header.firstOrdinal)
        for i in 0..<block.count {
            if let problem = block.recordProblem(i) { throw problem.located(block.location(ofRecord: i)) }
        }
        return length
    }

    private func nextMagic(after offset: Int) -> Int {
        var position = offset + 1
        while position + 4 <= end {
            if file[position] == 0x54, file[position + 1] == 0x53, file[position + 2] == 0x42, file[position + 3] == 0x4B {
                return position
            }
            position += 1
        }
        return end
    }
}
