import Foundation
import ImageStore
import Interchange
import ShardConvert
import ShardFormat

/// One fuzz target: an outside-facing parser of the project, run on hostile bytes. A target must never
/// crash, hang or exhaust memory; errors are expected. Where two paths must agree (the key table's
/// loader and its streaming checker) the target traps on disagreement, which the fuzzer reports.
enum FuzzTarget: String, CaseIterable {
    case shard, keys, manifest, imagestore, npy, safetensors, official

    /// Runs every reader path on `bytes`.
    func run(_ bytes: [UInt8]) {
        switch self {
        case .shard: Self.runShard(bytes)
        case .keys: Self.runKeys(bytes)
        case .manifest: _ = try? bytes.withUnsafeBytes { try DatasetManifest.parse($0) }
        case .imagestore: Self.runImageStore(bytes)
        case .npy: Self.runNpy(bytes)
        case .safetensors: _ = try? bytes.withUnsafeBytes { try SafeTensorsHeader(file: $0) }
        case .official: Self.runOfficial(bytes)
        }
    }

    /// One structure-aware mutation of a seed (checksums re-sealed).
    func mutate(_ bytes: [UInt8], _ random: inout FuzzRandom) -> [UInt8] {
        var out = bytes
        switch self {
        case .shard:
            if var parts = ShardParts(bytes), random.chance(85) {
                for _ in 0...random.below(3) { parts.mutate(&random) }
                return parts.serialized()
            }
            ByteMutations.mutate(&out, &random)
            return Reseal.shard(out)
        case .keys:
            if random.chance(50), out.count >= 24, let text = FuzzZlib.decompress(Array(out[24...]), limit: 1 << 20) {
                var decoded = text
                for _ in 0...random.below(2) { ByteMutations.mutate(&decoded, &random, maxSize: 1 << 16) }
                return Reseal.keyTable(text: decoded, random: &random)
            }
            ByteMutations.mutate(&out, &random)
            return Reseal.keys(out)
        case .manifest:
            JSONMutations.mutate(&out, &random)
            return out
        case .safetensors:
            if out.count >= 8, random.chance(70) {
                let length = min(Int(out.u64(0) & 0xFFFF_FFFF), out.count - 8)
                var header = Array(out[8..<(8 + length)])
                JSONMutations.mutate(&header, &random)
                var rebuilt: [UInt8] = []
                rebuilt.put64Append(UInt64(header.count))
                return rebuilt + header + out[(8 + length)...]
            }
            ByteMutations.mutate(&out, &random)
            return out
        case .imagestore:
            ByteMutations.mutate(&out, &random)
            return random.chance(85) ? Reseal.imageStore(out) : out
        case .npy, .official:
            ByteMutations.mutate(&out, &random)
            return out
        }
    }

    /// Checksums recomputed after a blind (libFuzzer) mutation.
    func reseal(_ bytes: [UInt8]) -> [UInt8] {
        switch self {
        case .shard: return Reseal.shard(bytes)
        case .keys: return Reseal.keys(bytes)
        case .imagestore: return Reseal.imageStore(bytes)
        default: return bytes
        }
    }

    // MARK: Runs

    private static func runShard(_ bytes: [UInt8]) {
        let path = Scratch.file("case.tshard", bytes)
        // Oracle: the reader's first error (every record, then the sample-id table) is the verifier's
        // first problem — both follow the check order of Spec §1.4.
        let outcome = Outcome.check("shard", path: path)
        precondition(outcome.reader == outcome.first,
                     "reader says \(outcome.reader ?? "clean"), verifier's first problem \(outcome.first ?? "none")")
        if let reader = try? ShardReader(path: path) {
            if reader.recordCount > 0, reader.schema.valueKind == .probability, reader.schema.classes <= 1 << 16 {
                var row = [Float](repeating: 0, count: reader.schema.classes)
                _ = try? row.withUnsafeMutableBufferPointer { try reader.makeCursor().dense([0], into: $0) }
            }
        }
        _ = ShardVerifier(maxProblems: 50, depth: .full, threads: 2).verifyShard(path: path)
        _ = ShardVerifier(maxProblems: 50, depth: .checksums, threads: 1).verifyShard(path: path)
        let output = Scratch.path("recovered.tshard")
        _ = try? ShardRecovery.recover(source: path, output: output)
        unlink(output)
    }

    private static func runKeys(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            let loaded = Result { try KeyTable(fileBytes: raw) }
            let checked = Result { try KeyTable.check(fileBytes: raw) }
            switch (loaded, checked) {
            case let (.success(table), .success(count)):
                precondition(table.count == count, "key table: loader and checker disagree on the count")
                if count > 0 { _ = table.id(of: table.key(count - 1)) }
            case let (.failure(a as ShardError), .failure(b as ShardError)):
                precondition(a.code == b.code, "key table: loader says \(a.code), checker \(b.code)")
            default:
                preconditionFailure("key table: loader and checker disagree on validity")
            }
        }
    }

    private static func runImageStore(_ bytes: [UInt8]) {
        let path = Scratch.file("case.tsim", bytes)
        guard let store = try? ImageStore(path: path) else { return }
        for i in 0..<min(store.count, 8) {
            _ = try? store.image(at: i)
            _ = try? store.key(at: i)
        }
        _ = store.index(ofKey: "x")
        try? store.verifyPixels()
    }

    private static func runNpy(_ bytes: [UInt8]) {
        _ = try? bytes.withUnsafeBytes { try NpyHeader(bytes: $0) }
        let path = Scratch.file("case.npy", bytes)
        if let reader = try? NpyReader(path: path), reader.shape.reduce(1, *) <= 1 << 20 {
            switch reader.dtype {
            case .float32: _ = try? reader.readAll(as: Float.self)
            case .float64: _ = try? reader.readAll(as: Double.self)
            case .int32: _ = try? reader.readAll(as: Int32.self)
            case .uint8: _ = try? reader.readAll(as: UInt8.self)
            }
        }
    }

    /// Input: byte 0 picks K (1-8), bytes 1-2 the keys file's length, then the keys file, then the values.
    private static func runOfficial(_ bytes: [UInt8]) {
        guard bytes.count >= 3 else { return }
        let k = 1 + Int(bytes[0] % 8)
        let keysLength = min(bytes.u16(1), bytes.count - 3)
        let root = Scratch.path("official")
        let folder = root + "/logits_top\(k)_epoch0"
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        _ = Scratch.write(folder + "/rank0-keys.txt", Array(bytes[3..<(3 + keysLength)]))
        _ = Scratch.write(folder + "/rank0-values.bin", Array(bytes[(3 + keysLength)...]))
        let output = Scratch.path("official-out")
        _ = try? OfficialImporter.importDataset(from: root, to: output, options: OfficialImportOptions(classes: 64, recordsPerBlock: 4))
        try? FileManager.default.removeItem(atPath: output)
        try? FileManager.default.removeItem(atPath: root)
    }
}

/// Checksums of each format recomputed over whatever structure the bytes still have.
enum Reseal {
    static func shard(_ input: [UInt8]) -> [UInt8] {
        var b = input
        guard b.count >= 20 else { return b }
        let h = b.u32(12)
        guard h <= b.count, 20 + h <= b.count else { return b }
        b.put32(Int(FuzzZlib.crc(b[0..<(16 + h)])), at: 16 + h)
        let footer = b.count - 32
        let hasFooter = footer >= 20 + h && Array(b[footer..<(footer + 4)]) == Array("TSFT".utf8)
        let end = hasFooter ? min(footer, Int(clamping: b.u64(footer + 8))) : b.count
        var offset = 20 + h
        while offset + 32 <= end, Array(b[offset..<(offset + 4)]) == Array("TSBK".utf8) {
            let payload = b.u32(offset + 16)
            guard offset + 32 + payload <= end else { break }
            b.put32(Int(FuzzZlib.crc(b[(offset + 32)..<(offset + 32 + payload)])), at: offset + 20)
            b.put32(Int(FuzzZlib.crc(b[offset..<(offset + 28)])), at: offset + 28)
            offset += 32 + payload
        }
        if hasFooter {
            let index = Int(clamping: b.u64(footer + 8))
            let length = b.u32(footer + 24)
            if index >= 0, length >= 12, index <= footer - length {
                b.put32(Int(FuzzZlib.crc(b[index..<(index + length - 4)])), at: index + length - 4)
            }
            b.put32(Int(FuzzZlib.crc(b[footer..<(footer + 28)])), at: footer + 28)
        }
        return b
    }

    static func keys(_ input: [UInt8]) -> [UInt8] {
        var b = input
        guard b.count >= 24 else { return b }
        b.put32(b.count - 24, at: 12)
        b.put32(Int(FuzzZlib.crc(b[24...])), at: 20)
        return b
    }

    /// A key table whose head agrees with `text` (usually; sometimes a count or length is left off by one).
    static func keyTable(text: [UInt8], random: inout FuzzRandom) -> [UInt8] {
        let stored = FuzzZlib.compress(text, level: 9)
        var b = Array("TSKY".utf8)
        b.appendLE(1, 4)
        b.appendLE(text.filter { $0 == 0x0A }.count + (random.chance(10) ? 1 : 0), 4)
        b.appendLE(stored.count, 4)
        b.appendLE(text.count + (random.chance(10) ? -1 : 0), 4)
        b.appendLE(Int(FuzzZlib.crc(stored[...])), 4)
        return b + stored
    }

    static func imageStore(_ input: [UInt8]) -> [UInt8] {
        var b = input
        guard b.count >= 64 else { return b }
        let count = b.u32(8)
        let indexOffset = Int(clamping: b.u64(16))
        if indexOffset >= 64, indexOffset <= b.count {
            for i in 0..<min(count, (b.count - indexOffset) / 32) {
                let e = indexOffset + 32 * i
                let start = Int(clamping: b.u64(e))
                let size = b.u16(e + 8) * b.u16(e + 10) * 3
                if start >= 0, start <= b.count - size { b.put32(Int(FuzzZlib.crc(b[start..<(start + size)])), at: e + 24) }
            }
            b.put32(Int(FuzzZlib.crc(b[indexOffset...])), at: 32)
        }
        b.put32(Int(FuzzZlib.crc(b[0..<60])), at: 60)
        return b
    }
}

/// A per-process scratch folder (in /dev/shm when there is one) for targets whose API takes a path.
enum Scratch {
    static let folder: String = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let path = "\(base)/tinyshard-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    static func path(_ name: String) -> String { folder + "/" + name }

    @discardableResult
    static func write(_ path: String, _ bytes: [UInt8]) -> Bool {
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }

    static func file(_ name: String, _ bytes: [UInt8]) -> String {
        let path = path(name)
        write(path, bytes)
        return path
    }

    static func clean() { try? FileManager.default.removeItem(atPath: folder) }
}
