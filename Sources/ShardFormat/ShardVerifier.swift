import Foundation

/// One problem a verifier found, with where it is.
public struct ShardProblem: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The error code, as ``ShardErrorCode`` raw values name it (`block-crc`, ...).
    public var code: String
    /// The file's path, when known.
    public var file: String?
    /// The block index inside the shard.
    public var block: Int?
    /// The record's ordinal inside the shard.
    public var record: Int?
    /// The record's sample id.
    public var sampleID: UInt32?
    /// The sample's key, when the key table was read.
    public var sampleKey: String?
    /// One sentence for a person.
    public var message: String

    init(_ error: ShardError) {
        code = error.code.rawValue
        file = error.location.file
        block = error.location.block
        record = error.location.record
        sampleID = error.location.sampleID
        sampleKey = error.location.sampleKey
        message = error.message
    }

    /// One line, as ``ShardError/description`` writes it.
    public var description: String {
        ShardError(ShardErrorCode(rawValue: code) ?? .io, message,
                   at: ShardLocation(file: file, block: block, record: record, sampleID: sampleID, sampleKey: sampleKey)).description
    }
}

/// What a verification found.
public struct VerificationReport: Sendable {
    /// Files checked.
    public var files = 0
    /// Records checked.
    public var records = 0
    /// Bytes of the files checked.
    public var bytes = 0
    /// The problems found, at most the verifier's `maxProblems`.
    public var problems: [ShardProblem] = []
    /// Problems found past `maxProblems` and not listed.
    public var omittedProblems = 0

    /// True when nothing at all was found.
    public var isClean: Bool { problems.isEmpty && omittedProblems == 0 }

    /// An empty report.
    public init() {}
}

/// Checks shards and datasets against every rule of Spec/FORMAT.md: structure, checksums, index,
/// sections, value ranges and order, class indices, duplicate samples, manifest agreement.
public struct ShardVerifier: Sendable {
    /// How much of each shard to check.
    public enum Depth: String, Sendable, CaseIterable {
        /// Structure, index and every checksum: finds any byte changed since writing, at checksum speed.
        case checksums
        /// Also decodes every record and checks the rules of the spec's section 2 (ranges, sums, order,
        /// class indices, duplicate samples, augmentation codes): finds a writer that broke the rules.
        case full
    }

    /// Stop listing problems after this many (the count of the rest is still reported).
    public var maxProblems: Int
    /// How much of each shard to check.
    public var depth: Depth
    /// Threads that decode blocks in `full` depth.
    public var threads: Int

    /// A verifier listing at most `maxProblems` problems, at `depth`, with `threads` decoding threads (default: one per
    /// core).
    public init(maxProblems: Int = 1000, depth: Depth = .full,
                threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.maxProblems = maxProblems
        self.depth = depth
        self.threads = max(1, threads)
    }

    /// Verifies one shard file. `keys` (a dataset's key table) names samples in problems and bounds ids.
    public func verifyShard(path: String, keys: (any SampleKeys)? = nil) -> VerificationReport {
        var report = VerificationReport()
        verifyShard(path: path, keys: keys.map { KeyInfo(count: $0.count, table: $0) }, into: &report)
        return report
    }

    /// What a shard check knows of the dataset's keys: their count (bounds sample ids) and, when the
    /// table is in memory, their names.
    struct KeyInfo {
        var count: Int
        var table: (any SampleKeys)?
    }

    private func add(_ error: ShardError, to report: inout VerificationReport, keys: KeyInfo? = nil) {
        guard report.problems.count < maxProblems else { report.omittedProblems += 1; return }
        var error = error
        if error.location.sampleKey == nil, let table = keys?.table, let id = error.location.sampleID {
            error.location.sampleKey = table.keyIfReadable(Int(id))
        }
        report.problems.append(ShardProblem(error))
    }

    /// `fileChecksumMatched`: the manifest's whole-file CRC already covered every byte, so the
    /// checksum depth need not read the blocks again.
    @discardableResult
    private func verifyShard(path: String, keys: KeyInfo?, fileChecksumMatched: Bool = false,
                             into report: inout VerificationReport) -> ShardReader? {
        report.files += 1
        let here = ShardLocation(file: path)
        let file: MappedFile
        let schema: ShardSchema
        let blocksStart: Int
        do {
            file = try MappedFile.format(path: path)
            (schema, blocksStart) = try ShardFileLayout.readHeader(file.bytes)
        } catch let error as ShardError {
            add(error.located(here), to: &report)
            return nil
        } catch {
            add(ShardError(.io, "\(error)", at: here), to: &report)
            return nil
        }
        file.adviseSequential()
        report.bytes += file.bytes.count
        do {
            _ = try ShardFileLayout.readIndex(file.bytes, schema: schema, blocksStart: blocksStart)
        } catch let error as ShardError {
            // No usable index: say so, and say what a recovery would keep.
            var intactBlocks = 0
            var intactRecords = 0
            let scanner = BlockScanner(file: file.bytes, schema: schema, blocksStart: blocksStart, end: file.bytes.count)
            try? scanner.scan(found: { intactBlocks += 1; intactRecords += $0.block.count }, skipped: { _ in })
            var described = error.located(here)
            described.message += "; \(intactBlocks) intact blocks with \(intactRecords) records can be salvaged with `tinyshard recover`"
            add(described, to: &report)
            return nil
        } catch {
            add(ShardError(.io, "\(error)", at: here), to: &report)
            return nil
        }
        let reader: ShardReader
        do {
            reader = try ShardReader(path: path)
        } catch let error as ShardError {
            add(error.located(here), to: &report)
            return nil
        } catch {
            return nil
        }
        report.records += reader.recordCount
        switch depth {
        case .checksums:
            if !fileChecksumMatched { checkBlockChecksums(reader, keys: keys, into: &report) }
        case .full:
            checkRecords(reader, keys: keys, into: &report)
        }
        return reader
    }

    /// Verifies a dataset folder: manifest, key table, and every shard in full.
    public func verifyDataset(directory: String) -> VerificationReport {
        var report = VerificationReport()
        let manifest: DatasetManifest
        do {
            manifest = try DatasetManifest.read(directory: directory)
        } catch let error as ShardError {
            add(error, to: &report)
            return report
        } catch {
            return report
        }
        let keysPath = directory + "/" + manifest.keys.file
        var keys: KeyInfo?
        report.files += 1
        // The key table is checked by streaming (memory: one chunk, whatever the file claims); names of
        // the samples in problems are looked up afterwards, again by streaming.
        if checkFileEntry(keysPath, bytes: manifest.keys.bytes, crc: manifest.keys.crc32, countBytes: true, into: &report) {
            do {
                let file = try MappedFile.format(path: keysPath)
                file.adviseSequential()
                let count = try KeyTable.check(fileBytes: file.bytes)
                keys = KeyInfo(count: count, table: nil)
                if count != manifest.keys.count {
                    add(ShardError(.manifestMismatch, "manifest says \(manifest.keys.count) keys; the table holds \(count)",
                                   at: ShardLocation(file: keysPath)), to: &report)
                }
            } catch let error as ShardError {
                add(error.located(ShardLocation(file: keysPath)), to: &report)
            } catch {}
        }
        for entry in manifest.shards {  // (file names and (epoch, rank) pairs are unique: the manifest parser checks)
            let path = directory + "/" + entry.file
            let problemsBefore = report.problems.count + report.omittedProblems
            guard checkFileEntry(path, bytes: entry.bytes, crc: entry.crc32, into: &report) else { report.files += 1; continue }
            let matched = report.problems.count + report.omittedProblems == problemsBefore
            if let reader = verifyShard(path: path, keys: keys, fileChecksumMatched: matched, into: &report),
               let mismatch = ShardDataset.mismatch(reader, entry, manifest) {
                add(ShardError(.manifestMismatch, mismatch, at: ShardLocation(file: path)), to: &report)
            }
        }
        if keys != nil { nameSamples(in: &report, keysPath: keysPath) }
        return report
    }

    /// Fills in the key of every listed problem that names a sample id, in one streaming pass.
    private func nameSamples(in report: inout VerificationReport, keysPath: String) {
        let ids = Set(report.problems.compactMap { $0.sampleKey == nil ? $0.sampleID.map(Int.init) : nil })
        guard !ids.isEmpty, let file = try? MappedFile(path: keysPath),
              let names = try? KeyTable.keys(ids, fileBytes: file.bytes) else { return }
        for i in report.problems.indices where report.problems[i].sampleKey == nil {
            if let id = report.problems[i].sampleID, let name = names[Int(id)] { report.problems[i].sampleKey = name }
        }
    }

    /// Block headers and payload checksums only.
    private func checkBlockChecksums(_ reader: ShardReader, keys: KeyInfo?, into report: inout VerificationReport) {
        var released = 0
        for b in 0..<reader.blockCount {
            if b % 256 == 0 {  // pages already checked leave the resident set
                reader.file.releasePages(released..<reader.blocks[b].offset)
                released = reader.blocks[b].offset
            }
            let bytes = reader.blockBytes(b)
            let range = reader.ordinals(ofBlock: b)
            do {
                let header = try BlockHeader(bytes)
                guard header.count == range.count, header.firstOrdinal == range.lowerBound,
                      BlockLayout.headerSize + header.payloadLength == bytes.count else {
                    throw ShardError(.blockStructure, "block header disagrees with the index")
                }
                guard CRC32.checksum(UnsafeRawBufferPointer(rebasing: bytes[BlockLayout.headerSize...])) == header.payloadCRC else {
                    throw ShardError(.blockCRC, "payload checksum mismatch")
                }
            } catch let error as ShardError {
                add(error.located(ShardLocation(file: reader.path, block: b)), to: &report, keys: keys)
            } catch {}
        }
    }

    /// Decodes every block (in parallel chunks) and checks every record, then sample-id uniqueness.
    /// A block whose frame, checksums or sections are damaged is one problem; every other block lists
    /// each bad record (up to the limit) and takes part in the duplicate check. Memory is one block per
    /// thread plus the id set (``SampleIDSet``), never sized by the count the footer claims.
    private func checkRecords(_ reader: ShardReader, keys: KeyInfo?, into report: inout VerificationReport) {
        let blockCount = reader.blockCount
        let workers = max(1, min(threads, blockCount))
        let limit = maxProblems
        // Per worker its problems (up to the limit) and how many it dropped past it; per block whether it
        // decoded. Each worker owns a contiguous run of blocks and writes only its own slots.
        let problems = WorkerSlots<[ShardError]>(count: workers, repeating: [])
        let dropped = WorkerSlots(count: workers, repeating: 0)
        let decodedFlags = WorkerSlots(count: blockCount, repeating: false)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let block = DecodedBlock(schema: reader.schema, checkOnly: true)
            func note(_ error: ShardError) {
                if problems[worker].count <= limit { problems[worker].append(error) } else { dropped[worker] += 1 }
            }
            let mine = (worker * blockCount / workers)..<((worker + 1) * blockCount / workers)
            var released = mine.isEmpty ? 0 : reader.blocks[mine.lowerBound].offset
            for b in mine {
                if (b - mine.lowerBound) % 256 == 255 {  // this worker's checked blocks leave the resident set
                    let end = reader.blocks[b].offset
                    reader.file.releasePages(released..<end)
                    released = end
                }
                let range = reader.ordinals(ofBlock: b)
                do {
                    try block.decode(reader.blockBytes(b), index: b, expectedCount: range.count,
                                     expectedFirst: range.lowerBound)
                } catch let error as ShardError {
                    note(error.located(ShardLocation(block: b)))
                    continue
                } catch { continue }
                decodedFlags[b] = true
                block.forEachRecordProblem { i, problem in note(problem.located(block.location(ofRecord: i))); return true }
            }
        }
        let perWorker = problems.values
        let decoded = decodedFlags.values
        let here = ShardLocation(file: reader.path)
        for problem in perWorker.joined() { add(problem.located(here), to: &report, keys: keys) }
        report.omittedProblems += dropped.values.reduce(0, +)
        checkSampleIDs(reader, decoded: decoded, keys: keys, into: &report)
    }

    /// Duplicates and ids not below the key count, in one pass over the sample-id sections of the blocks
    /// that decoded, in ordinal order: each later occurrence of an id, then each id ≥ M (Spec §1.4).
    private func checkSampleIDs(_ reader: ShardReader, decoded: [Bool], keys: KeyInfo?, into report: inout VerificationReport) {
        var seen = SampleIDSet()
        var ids: [UInt32] = []
        var scratch: [UInt8] = []
        var rangeProblems: [ShardError] = []
        let recordsPerBlock = reader.schema.recordsPerBlock
        let keyCount = keys?.count ?? Int.max
        var released = 0
        for b in 0..<reader.blockCount where decoded[b] {
            if b % 256 == 0 {
                reader.file.releasePages(released..<reader.blocks[b].offset)
                released = reader.blocks[b].offset
            }
            guard (try? BlockLayout.sampleIDs(ofBlock: reader.blockBytes(b), into: &ids, scratch: &scratch)) != nil else { continue }
            let first = b * recordsPerBlock
            for (i, id) in ids.enumerated() {
                let isNew = seen.insert(id)
                if isNew && Int(id) < keyCount { continue }  // the usual record: no location built
                let location = ShardLocation(file: reader.path, block: b, record: first + i, sampleID: id)
                if !isNew {
                    add(ShardError(.duplicateSample, "sample \(id) appears earlier in this shard", at: location), to: &report, keys: keys)
                }
                if let keys, Int(id) >= keys.count {
                    if rangeProblems.count < maxProblems {
                        rangeProblems.append(ShardError(.manifestMismatch, "sample id \(id) is not below the key table's \(keys.count) keys",
                                                        at: location))
                    } else {
                        report.omittedProblems += 1
                    }
                }
            }
        }
        for problem in rangeProblems { add(problem, to: &report) }
    }

    /// Size and whole-file CRC against the manifest; false when the file cannot be read at all.
    /// `countBytes`: add the file's size to the report (shards add theirs when verified themselves).
    private func checkFileEntry(_ path: String, bytes: Int, crc: String, countBytes: Bool = false,
                                into report: inout VerificationReport) -> Bool {
        let here = ShardLocation(file: path)
        let file: MappedFile
        do {
            file = try MappedFile.format(path: path)
        } catch let error as ShardError {
            add(error, to: &report)
            return false
        } catch {
            return false
        }
        file.adviseSequential()
        if countBytes { report.bytes += file.bytes.count }
        if file.bytes.count != bytes {
            add(ShardError(.manifestMismatch, "file is \(file.bytes.count) bytes; the manifest says \(bytes)", at: here), to: &report)
        } else {
            let found = CRC32.hex(Self.checksum(of: file))
            if found != crc {
                add(ShardError(.manifestMismatch, "file CRC-32 is \(found); the manifest says \(crc)", at: here), to: &report)
            }
        }
        return true
    }

    /// The CRC-32 of a whole file, 64 MiB at a time, letting go of each piece once summed (a shard of an
    /// ImageNet-21k epoch is gigabytes; the verifier's memory stays that of one piece).
    static func checksum(of file: MappedFile) -> UInt32 {
        let piece = 64 << 20
        var crc: UInt32 = 0
        for start in stride(from: 0, to: file.bytes.count, by: piece) {
            let end = min(file.bytes.count, start + piece)
            crc = CRC32.checksum(UnsafeRawBufferPointer(rebasing: file.bytes[start..<end]), continuing: crc)
            file.releasePages(start..<end)
        }
        return crc
    }
}
