import ArgumentParser
import Augment
import Distill
import Foundation
import ImageStore
import Reports
import ShardConvert
import ShardFormat

/// `tinyshard render`: the views a teacher saw, re-rendered from the stored parameters.
struct Render: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-render the augmented views of stored records (params shards of a teacher pass) on their images.",
        discussion: """
            --key KEY: one record (the lowest rank's in the epoch) as a PNG. --grid N: a contact sheet of N records \
            of one shard (from the start of --range, default 0) captioned with key and top-3 classes, as a PNG. \
            --range A..<B: the records of one shard as a uint8 .npy of shape (n, height, width, 3), in shard order \
            (what `tinyshard dump --range` lists). The views are the Swift replay's uint8 rendering: erase noise mapped \
            to uint8, mixup rounded.
            """)

    @Option(help: "The image store the teacher pass read.") var images: String
    @Option(help: "The dataset folder the teacher pass wrote.") var shards: String
    @Option(help: "Epoch of the records.") var epoch: Int
    @Option(help: "One record by sample key (writes a PNG).") var key: String?
    @Option(help: "A contact sheet of this many records (writes a PNG).") var grid: Int?
    @Option(help: "Records by ordinal in one shard: 'A..<B', 'A...B' or A (with --grid: the first record).") var range: String?
    @Option(help: "The shard's rank for --grid and --range (default: the epoch's lowest).") var rank: Int?
    @Option(help: "Columns of the contact sheet (default: about square).") var columns = 0
    @Option(help: "Output: .png for --key or --grid, .npy for --range.") var out: String

    func validate() throws {
        let modes = [key != nil, grid != nil, range != nil && grid == nil].filter { $0 }.count
        guard modes == 1 else { throw ValidationError("give exactly one of --key, --grid N or --range") }
        if let grid, grid < 1 { throw ValidationError("--grid must be at least 1") }
        if let range { _ = try Dump.parseRange(range) }
        let isPNG = out.lowercased().hasSuffix(".png"), isNPY = out.lowercased().hasSuffix(".npy")
        if range != nil && grid == nil {
            guard isNPY else { throw ValidationError("--range writes a .npy stack; give --out FILE.npy") }
        } else {
            guard isPNG else { throw ValidationError("--key and --grid write a PNG; give --out FILE.png") }
        }
    }

    func run() throws {
        let renderer = try DistillCLI.run { () throws -> RecordRenderer in
            try RecordRenderer(store: try ImageStore(path: images), dataset: try ShardDataset(directory: shards))
        }
        if let key {
            let record = try DistillCLI.run { try renderer.render(epoch: epoch, key: key) }
            try writePNG(record.image)
            let top = record.entries.prefix(3).map { "\($0.classIndex):\(String(format: "%.3f", $0.value))" }.joined(separator: " ")
            print("wrote \(record.image.width)x\(record.image.height) view of \(record.key) (epoch \(record.epoch), rank \(record.rank), record \(record.ordinal); top \(top)) to \(out)")
            return
        }
        let shard = try selectedShard(renderer)
        let start = try range.map { try Dump.parseRange($0) } ?? 0..<Int.max
        let ordinals = grid.map { start.lowerBound..<(start.lowerBound + $0) } ?? start
        let records = try DistillCLI.run { try renderer.render(shard: shard, ordinals: ordinals) }
        guard let first = records.first else {
            throw CLIFailure(file: shard.path, code: "invalid-argument", "no records in \(ordinals.lowerBound)..<\(ordinals.upperBound) (the shard holds \(shard.recordCount))")
        }
        if grid != nil {
            let sheet = try DistillCLI.run { try ContactSheet.draw(records, columns: columns, classNames: renderer.store.classNames) }
            try writePNG(sheet)
            print("wrote a contact sheet of \(records.count) records (epoch \(epoch), rank \(shard.schema.rank), records \(first.ordinal)..<\(first.ordinal + records.count)) to \(out)")
        } else {
            var pixels: [UInt8] = []
            pixels.reserveCapacity(records.count * first.image.byteCount)
            for record in records { pixels += record.image.pixels }
            try DistillCLI.run {
                try NpyWriter.write(pixels, shape: [records.count, first.image.height, first.image.width, 3], to: out)
            }
            print("wrote \(records.count) views (epoch \(epoch), rank \(shard.schema.rank), records \(first.ordinal)..<\(first.ordinal + records.count)) to \(out)")
        }
    }

    private func selectedShard(_ renderer: RecordRenderer) throws -> ShardReader {
        let candidates = renderer.shards(epoch: epoch)
        guard !candidates.isEmpty else {
            throw CLIFailure(file: shards, code: "invalid-argument", "the dataset has no shard of epoch \(epoch)")
        }
        guard let rank else { return candidates[0] }
        guard let shard = candidates.first(where: { $0.schema.rank == rank }) else {
            throw CLIFailure(file: shards, code: "invalid-argument", "epoch \(epoch) has no shard of rank \(rank) (ranks \(candidates.map { String($0.schema.rank) }.joined(separator: ", ")))")
        }
        return shard
    }

    private func writePNG(_ image: RGBImage) throws {
        let bytes = try DistillCLI.run { try PNGCodec.encode(image) }
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: out), options: .atomic)
        } catch {
            throw CLIFailure(file: out, code: "io", "cannot write the PNG: \(error.localizedDescription)")
        }
    }
}
