import Augment
import Foundation
import ImageStore
import ShardFormat
import TinyViT

/// Who the teacher of a pass is, for its fingerprint: a name and the SHA-256 of its weights (or, for an
/// external teacher, of its command).
public struct TeacherIdentity: Sendable, Equatable {
    /// The teacher's name, e.g. `tinyvit-5m` or `external`.
    public var name: String
    /// SHA-256 of the teacher's weights file (or of the external command), 64 hex digits.
    public var sha256: String
    /// An identity of `name` with digest `sha256`.
    public init(name: String, sha256: String) {
        self.name = name
        self.sha256 = sha256
    }

    /// A TinyViT in memory: the SHA-256 of its parameters and BatchNorm statistics, in timm's order.
    public init(name: String, model: TinyViT) {
        var hasher = SHA256()
        for tensor in model.parameters.map(\.value) + model.buffers.map(\.value) {
            hasher.update(UnsafeRawBufferPointer(tensor.buffer))
        }
        self.init(name: name, sha256: SHA256.hexDigits(hasher.finalize()))
    }

    /// A weights file (or any file): the SHA-256 of its bytes, read where they are mapped.
    public init(name: String, file path: String) throws {
        let file = try MappedFile.format(path: path)
        var hasher = SHA256()
        hasher.update(file.bytes)
        self.init(name: name, sha256: SHA256.hexDigits(hasher.finalize()))
    }
}

/// The folder of a teacher pass (Spec/PASS.md): its `pass.json` and what a new or resumed pass must find
/// there before it writes anything.
struct TeacherPassFolder {
    let directory: String
    let record: PassRecord

    /// The fingerprint of a pass (Spec/PASS.md 2): every option that decides a record's bytes.
    static func fingerprint(options: TeacherPass.Options, teacher: TeacherIdentity, store: ImageStore, classes: Int,
                            imageSize: Int, worldSize: Int) -> [String: String] {
        [
            "writer": "tinyshard-swift \(TeacherPass.writerVersion)",
            "teacher": teacher.name, "teacher_sha256": teacher.sha256,
            "recipe": options.recipe.name, "recipe_sha256": options.recipe.hash,
            "images": "\(store.count) images, \(store.classCount) classes, metadata crc32 \(CRC32.hex(store.metadataCRC))",
            "classes": String(classes), "k": String(options.k), "temperature": "1.0", "seed": String(options.seed),
            "world_size": String(worldSize), "batch": String(options.batchSize),
            "records_per_block": String(options.recordsPerBlock), "image_size": String(imageSize),
            "held_out_fraction": String(options.heldOutFraction), "validation_fraction": String(options.validationFraction),
            "key_table_version": String(options.keyTableVersion),
        ]
    }

    /// Rank 0 before a pass writes anything: a new pass needs a folder without a pass, manifest or shard in it
    /// and writes `pass.json`; a resumed one needs this pass's `pass.json` (rewritten when epochs are added)
    /// and refuses fewer epochs than the manifest has committed.
    static func prepare(directory: String, record: PassRecord, resume: Bool) throws -> TeacherPassFolder {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw DistillError(.io, "cannot create the folder: \(error.localizedDescription)", file: directory)
        }
        let stored = try PassRecord.read(directory: directory)
        guard resume else {
            if stored != nil {
                throw DistillError(.usage, "the folder holds a teacher pass (pass.json); continue it with --resume, or write to another folder", file: directory)
            }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            if let other = names.sorted().first(where: { $0 == DatasetManifest.fileName || $0.contains(".tshard") }) {
                throw DistillError(.usage, "the folder already holds a dataset (\(other)); write the pass to an empty folder", file: directory)
            }
            try record.write(directory: directory)
            return TeacherPassFolder(directory: directory, record: record)
        }
        guard let stored else {
            throw DistillError(.mismatch, "not a teacher pass folder (no \(PassRecord.fileName)); --resume continues a pass this tool started", file: directory)
        }
        if let difference = record.fingerprintDifference(from: stored) {
            throw DistillError(.mismatch, "the folder holds another pass: \(difference)", file: directory)
        }
        let committed = (try? DatasetManifest.read(directory: directory)).map { Set($0.shards.map(\.epoch)).count } ?? 0
        guard record.epochs >= committed else {
            throw DistillError(.mismatch, "the pass has committed \(committed) epochs; --epochs \(record.epochs) would drop some", file: directory)
        }
        if record.epochs != stored.epochs { try record.write(directory: directory) }
        return TeacherPassFolder(directory: directory, record: record)
    }

    /// A resumed pass: the key table in the folder must be the bytes this run would write.
    static func checkKeyTable(directory: String, expected: DatasetManifest.FileEntry) throws {
        let path = directory + "/" + DatasetManifest.keysFileName
        guard let file = try? MappedFile(path: path) else {
            throw DistillError(.mismatch, "the pass's key table is missing", file: path)
        }
        guard file.bytes.count == expected.bytes, CRC32.hex(CRC32.checksum(file.bytes)) == expected.crc32 else {
            throw DistillError(.mismatch, "the key table is not this pass's (\(file.bytes.count) bytes; this run's has \(expected.bytes), crc32 \(expected.crc32))", file: path)
        }
    }

    /// A finished shard a resumed pass keeps: it must open, have the pass's header and pass every checksum
    /// (a damaged one is reported as the verifier reports it, never overwritten).
    static func checkFinished(path: String, schema: ShardSchema) throws {
        let report = ShardVerifier(maxProblems: 1, depth: .checksums, threads: 1).verifyShard(path: path)
        if let problem = report.problems.first {
            // The verifier's own error (its spec code and place), with what the pass does about it.
            throw ShardError(ShardErrorCode(rawValue: problem.code) ?? .io,
                             problem.message + " (a finished shard of the pass is damaged; it is kept as it is: verify and repair or remove it)",
                             at: ShardLocation(file: problem.file, block: problem.block, record: problem.record,
                                               sampleID: problem.sampleID, sampleKey: problem.sampleKey))
        }
        let reader = try ShardReader(path: path)
        guard reader.schema == schema else {
            throw DistillError(.mismatch, "the finished shard's header is not this pass's", file: path)
        }
    }
}
