import ArgumentParser
import Foundation
import ShardConvert
import ShardFormat

/// `tinyshard dump PATH`: records as JSON lines.
struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print records as JSON lines: sample_id, key, epoch, rank, ordinal, augmentation, indices, values.",
        discussion: """
            Augmentation is {"seed": N} for kind seed, an object of the parameters for kind params, null for none. \
            A shard inside a dataset folder gets its keys from the dataset's key table.
            """)

    @Argument(help: "A shard file or a dataset folder.")
    var path: String

    @Option(help: "Records by ordinal: 'A..<B' (or A..B), 'A...B' or A, in each selected shard.")
    var range: String?

    @Option(help: "The record of this sample key (with --epoch for a dataset of several epochs).")
    var key: String?

    @Option(help: "Only shards of this epoch.")
    var epoch: Int?

    @Flag(help: "Print each augmentation code as its raw bytes in hex instead of decoding it.")
    var hexAugmentation = false

    @Option(help: "Only shards of this rank.")
    var rank: Int?

    @Option(help: ArgumentHelp("With --key: look the key up as this training rank would (Spec/FORMAT.md 2: its own rank's shard first, then the next ranks cyclically, as the official TinyViT reader searches). Without it, the lowest rank's record.",
                               valueName: "rank"))
    var readerRank: Int?

    @Option(help: ArgumentHelp("Also write the dumped records' dense soft labels (Spec/FORMAT.md section 7) to this .npy, float32 (n, classes), in the printed order.",
                               valueName: "FILE.npy"))
    var dense: String?

    func validate() throws {
        if key != nil && range != nil { throw ValidationError("use either --key or --range, not both") }
        if let range { _ = try Self.parseRange(range) }
        if let dense, !dense.lowercased().hasSuffix(".npy") { throw ValidationError("--dense writes a .npy file; give FILE.npy") }
        if readerRank != nil && key == nil { throw ValidationError("--reader-rank goes with --key") }
        if let readerRank, readerRank < 0 { throw ValidationError("--reader-rank must be ≥ 0") }
    }

    /// "A..<B" or "A..B" (B excluded), "A...B" (B included) or "A".
    static func parseRange(_ text: String) throws -> Range<Int> {
        func number(_ s: Substring) throws -> Int {
            guard let value = Int(s.trimmingCharacters(in: .whitespaces)), value >= 0 else {
                throw ValidationError("--range: '\(s)' is not a record number; use A..<B, A...B or A")
            }
            return value
        }
        if let split = text.range(of: "..<") {
            let low = try number(text[..<split.lowerBound])
            let high = try number(text[split.upperBound...])
            guard low <= high else { throw ValidationError("--range: \(low) is above \(high)") }
            return low..<high
        }
        if let split = text.range(of: "...") {
            let low = try number(text[..<split.lowerBound])
            let high = try number(text[split.upperBound...])
            guard low <= high, high < Int.max else { throw ValidationError("--range: \(low) is above \(high)") }
            return low..<(high + 1)
        }
        if let split = text.range(of: "..") {
            let low = try number(text[..<split.lowerBound])
            let high = try number(text[split.upperBound...])
            guard low <= high else { throw ValidationError("--range: \(low) is above \(high)") }
            return low..<high
        }
        let single = try number(text[...])
        return single..<(single + 1)
    }

    func run() throws {
        let shards: [ShardReader]
        let keys: MappedKeyTable?
        var dataset: ShardDataset?
        switch try InputPath.classify(path) {
        case let .shard(file):
            shards = [try ShardReader(path: file)]
            keys = InputPath.siblingKeys(ofShard: file)
        case let .dataset(folder):
            dataset = try ShardDataset(directory: folder)
            shards = dataset!.shards
            keys = dataset!.keys
        }
        let selected = shards.filter { (epoch == nil || $0.schema.epoch == epoch) && (rank == nil || $0.schema.rank == rank) }
        let output = LineOutput()
        let rows = DenseRows(path: dense, classes: selected.first?.schema.classes ?? 0)
        defer { output.flush() }
        if let key {
            guard let keys else {
                throw CLIFailure(file: path, code: "invalid-argument", "--key needs the dataset's key table; give the dataset folder")
            }
            guard let id = try keys.id(of: key) else {
                throw CLIFailure(file: path, code: "invalid-argument", "no sample has the key '\(key)'")
            }
            let epochs = Set(selected.map(\.schema.epoch))
            guard epochs.count <= 1 else {
                throw CLIFailure(file: path, code: "invalid-argument", "--key: give --epoch (the dataset has epochs \(epochs.sorted().map(String.init).joined(separator: ", ")))")
            }
            if let found = try Self.locate(id, in: selected, dataset: dataset, readerRank: readerRank) {
                let cursor = found.shard.makeCursor()
                output.write(Self.line(try cursor.record(at: found.ordinal), ordinal: found.ordinal, shard: found.shard, keys: keys,
                                       hexAugmentation: hexAugmentation))
                try rows.append(cursor, found.ordinal)
                try rows.write()
                return
            }
            throw CLIFailure(file: path, code: "invalid-argument", "key '\(key)' has no record\(epoch.map { " in epoch \($0)" } ?? "")",
                             exitCode: ExitStatus.problems)
        }
        let wanted = try range.map(Self.parseRange)
        for shard in selected {
            let ordinals = wanted.map { $0.clamped(to: 0..<shard.recordCount) } ?? 0..<shard.recordCount
            let cursor = shard.makeCursor()
            for ordinal in ordinals {
                output.write(Self.line(try cursor.record(at: ordinal), ordinal: ordinal, shard: shard, keys: keys,
                                       hexAugmentation: hexAugmentation))
                try rows.append(cursor, ordinal)
            }
        }
        try rows.write()
    }

    /// The record of sample `id` among the selected shards of one epoch: by the dataset's lookup rule (Spec 2)
    /// when every shard of the epoch is selected, else the lowest selected rank that holds it.
    static func locate(_ id: UInt32, in selected: [ShardReader], dataset: ShardDataset?, readerRank: Int?) throws
        -> (shard: ShardReader, ordinal: Int)?
    {
        guard let epoch = selected.first?.schema.epoch else { return nil }
        if let dataset, dataset.shards(epoch: epoch).count == selected.count {
            return try dataset.locate(epoch: epoch, sampleID: id, rank: readerRank)
        }
        for shard in selected.sorted(by: { $0.schema.rank < $1.schema.rank }) {
            if let ordinal = try shard.ordinal(ofSample: id) { return (shard, ordinal) }
        }
        return nil
    }

    static func line(_ record: ShardRecord, ordinal: Int, shard: ShardReader, keys: MappedKeyTable?,
                     hexAugmentation: Bool = false) -> String {
        let schema = shard.schema
        let key = keys.flatMap { try? $0.key(Int(record.sampleID)) }
        return JSON.object([
            ("sample_id", .int(Int(record.sampleID))),
            ("key", key.map(JSON.string)),
            ("epoch", .int(schema.epoch)),
            ("rank", .int(schema.rank)),
            ("ordinal", .int(ordinal)),
            ("augmentation", hexAugmentation ? AugmentationJSON.hex(record.augmentation)
                                             : AugmentationJSON.encode(record, kind: schema.augmentation, keys: keys)),
            ("indices", .array(record.indices.map { .int(Int($0)) })),
            ("values", .array(record.values.map(JSON.float16))),
        ] as [(String, JSON?)]).text
    }
}

/// The dense rows `dump --dense` collects, written as one float32 .npy at the end.
final class DenseRows {
    let path: String?
    let classes: Int
    private var values: [Float] = []
    private var count = 0

    init(path: String?, classes: Int) {
        self.path = path
        self.classes = classes
    }

    func append(_ cursor: ShardCursor, _ ordinal: Int) throws {
        guard path != nil else { return }
        guard cursor.reader.schema.classes == classes else {
            throw CLIFailure(file: cursor.reader.path, code: "invalid-argument", "--dense: shards of \(cursor.reader.schema.classes) and \(classes) classes cannot share one array; select one epoch or rank")
        }
        values += [Float](repeating: 0, count: classes)
        try values.withUnsafeMutableBufferPointer { buffer in
            try cursor.dense([ordinal], into: UnsafeMutableBufferPointer(rebasing: buffer[(count * classes)...]))
        }
        count += 1
    }

    func write() throws {
        guard let path else { return }
        do {
            try NpyWriter.write(values, shape: [count, classes], to: path)
        } catch {
            throw CLIFailure(file: path, code: "io", "cannot write the dense rows: \(error)")
        }
    }
}

/// stdout through a large buffer (a dump can be millions of lines).
final class LineOutput {
    private var buffer = ""

    func write(_ line: String) {
        buffer += line
        buffer += "\n"
        if buffer.utf8.count >= 1 << 16 { flush() }
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        print(buffer, terminator: "")
        buffer = ""
    }

    deinit { flush() }
}
