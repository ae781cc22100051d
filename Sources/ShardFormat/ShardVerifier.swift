import Foundation

/// One problem a verifier found, with where it is.
public struct ShardProblem: Sendable, Equatable, Codable, CustomStringConvertible {
    public var code: String
    public var file: String?
    public var block: Int?
    public var record: Int?
    public var sampleID: UInt32?
    public var sampleKey: String?
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

    public var description: String {
        ShardError(ShardErrorCode(rawValue: code) ?? .io, message,
                   at: ShardLocation(file: file, block: block, record: record, sampleID: sampleID, sampleKey: sampleKey)).description
    }
}

/// What a verification found.
public struct VerificationReport: Sendable {
    public var files = 0
    public var records = 0
    public var bytes = 0
    public var problems: [ShardProblem] = []
    /// Problems found past `maxProblems` and not listed.
    public var omittedProblems = 0

    public var isClean: Bool { problems.isEmpty && omittedProblems == 0 }

    public init() {}
}

/// Checks shards and datasets against every rule of Spec/FORMAT.md: structure, checksums, index,
/// sections, value ranges and order, class indices, duplicate samples, manifest agreement.
public struct ShardVerifier: Sendable {
    /// Stop listing problems after this many (the count of the rest is still reported).
    public var maxProblems: Int

    public init(maxProblems: Int = 1000) { self.maxProblems = maxProblems }

    /// Verifies one shard file. `keys` (a dataset's key table) names samples in problems and bounds ids.
    public func verifyShard(path: String, keys: KeyTable? = nil) -> VerificationReport {
        var report = VerificationReport()
        verifyShard(path: path, keys: keys, into: &report)
        return report
    }

    private func add(_ error: ShardError, to report: inout VerificationReport, keys: KeyTable? = nil) {
        guard report.problems.count < maxProblems else { report.omittedProblems += 1; return }
        var error = error
        if error.location.sampleKey == nil, let keys, let id = error.location.sampleID, Int(id) < keys.count {
            error.location.sampleKey = keys.key(Int(id))
        }
        report.problems.append(ShardProblem(error))
    }

    @discardableResult
    private func verifyShard(path: String, keys: KeyTable?, into report: inout VerificationReport) -> ShardReader? {
        report.files += 1
        let here = ShardLocation(file: path)
        let file: MappedFile
        let schema: ShardSchema
        let blocksStart: Int
        do {
            file = try MappedFile(path: path)
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
        var seen = BitSet()
        let block = DecodedBlock(schema: schema)
        for b in 0..<reader.blockCount {
            let range = reader.ordinals(ofBlock: b)
            do {
                try block.decode(reader.blockBytes(b), index: b, expectedCount: range.count, expectedFirst: range.lowerBound)
            } catch let error as ShardError {
                add(error.located(ShardLocation(file: path, block: b)), to: &report, keys: keys)
                continue
            } catch {
                continue
            }
            for i in 0..<block.count {
                let location = block.location(ofRecord: i)
                if let problem = block.recordProblem(i) {
                    add(problem.located(location).located(here), to: &report, keys: keys)
                }
                let id = Int(block.sampleIDs[i])
                if seen.contains(id) {
                    add(ShardError(.duplicateSample, "sample \(id) appears twice in this shard", at: location).located(here),
                        to: &report, keys: keys)
                }
                seen.insert(id)
                if let keys, id >= keys.count {
                    add(ShardError(.manifestMismatch, "sample id \(id) is not below the key table's \(keys.count) keys",
                                   at: location).located(here), to: &report)
                }
            }
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
        var keys: KeyTable?
        if checkFileEntry(keysPath, bytes: manifest.keys.bytes, crc: manifest.keys.crc32, into: &report) {
            do {
                keys = try KeyTable.read(path: keysPath)
                if keys!.count != manifest.keys.count {
                    add(ShardError(.manifestMismatch, "manifest says \(manifest.keys.count) keys; the table holds \(keys!.count)",
                                   at: ShardLocation(file: keysPath)), to: &report)
                }
            } catch let error as ShardError {
                add(error, to: &report)
            } catch {}
        }
        var seenShards = Set<[Int]>()
        for entry in manifest.shards {
            let path = directory + "/" + entry.file
            if !seenShards.insert([entry.epoch, entry.rank]).inserted {
                add(ShardError(.manifestMismatch, "a second shard for epoch \(entry.epoch), rank \(entry.rank)",
                               at: ShardLocation(file: path)), to: &report)
            }
            guard checkFileEntry(path, bytes: entry.bytes, crc: entry.crc32, into: &report) else { report.files += 1; continue }
            if let reader = verifyShard(path: path, keys: keys, into: &report),
               let mismatch = ShardDataset.mismatch(reader, entry, manifest) {
                add(ShardError(.manifestMismatch, mismatch, at: ShardLocation(file: path)), to: &report)
            }
        }
        return report
    }

    /// Size and whole-file CRC against the manifest; false when the file cannot be read at all.
    private func checkFileEntry(_ path: String, bytes: Int, crc: String, into report: inout VerificationReport) -> Bool {
        let here = ShardLocation(file: path)
        let file: MappedFile
        do {
            file = try MappedFile(path: path)
        } catch let error as ShardError {
            add(error, to: &report)
            return false
        } catch {
            return false
        }
        file.adviseSequential()
        if file.bytes.count != bytes {
            add(ShardError(.manifestMismatch, "file is \(file.bytes.count) bytes; the manifest says \(bytes)", at: here), to: &report)
        } else if CRC32.hex(CRC32.checksum(file.bytes)) != crc {
            add(ShardError(.manifestMismatch, "file CRC-32 is \(CRC32.hex(CRC32.checksum(file.bytes))); the manifest says \(crc)", at: here),
                to: &report)
        }
        return true
    }
}
