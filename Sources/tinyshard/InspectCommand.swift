import ArgumentParser
import Foundation
import ShardFormat

/// `tinyshard inspect PATH`: what a shard or dataset holds and where its bytes go.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a shard's or dataset's schema, provenance, records, blocks and bytes per record by section.")

    @Argument(help: "A shard file or a dataset folder.")
    var path: String

    func run() throws { print(try Self.report(path), terminator: "") }

    /// The text `inspect` prints for a shard or dataset folder.
    static func report(_ path: String) throws -> String {
        switch try InputPath.classify(path) {
        case let .shard(file):
            let reader = try ShardReader(path: file)
            var out = "shard \(file)\n"
            out += Self.describe(reader.schema, withPlacement: true)
            let statistics = try reader.statistics()
            out += "records \(reader.recordCount) in \(reader.blockCount) block\(reader.blockCount == 1 ? "" : "s"), \(reader.fileSize) bytes\n"
            out += Self.breakdown(statistics, keyTableBytes: 0)
            return out
        case let .dataset(folder):
            let dataset = try ShardDataset(directory: folder)
            let manifest = dataset.manifest
            var out = "dataset \(folder)\n"
            if let first = dataset.shards.first {
                out += Self.describe(first.schema, withPlacement: false)
            } else {
                out += "classes \(manifest.classes), k \(manifest.k)\n"
            }
            let ranks = Set(manifest.shards.map(\.rank)).sorted()
            out += "keys \(manifest.keys.count) (\(manifest.keys.file), \(manifest.keys.bytes) bytes)\n"
            out += "shards \(manifest.shards.count): epochs \(Self.ranges(dataset.epochs)), ranks \(Self.ranges(ranks))\n"
            let statistics = try dataset.statistics()
            out += "records \(statistics.records) in \(statistics.blocks) blocks, \(statistics.fileBytes + manifest.keys.bytes) bytes (shards and key table)\n"
            out += Self.breakdown(statistics, keyTableBytes: manifest.keys.bytes)
            return out
        }
    }

    static func describe(_ schema: ShardSchema, withPlacement: Bool) -> String {
        var out = "format \(ShardFileLayout.majorVersion).\(ShardFileLayout.minorVersion): classes \(schema.classes), k \(schema.k), "
        out += "\(schema.valueKind.rawValue) (float16, temperature \(schema.temperature)), sorted \(schema.sorted)\n"
        out += "augmentation \(schema.augmentation), records_per_block \(schema.recordsPerBlock)"
        out += withPlacement ? ", epoch \(schema.epoch), rank \(schema.rank)\n" : "\n"
        if !schema.provenance.isEmpty {
            out += "provenance " + schema.provenance.sorted { $0.key < $1.key }
                .map { "\($0.key)=\($0.value.isEmpty ? "\"\"" : $0.value)" }.joined(separator: ", ") + "\n"
        }
        return out
    }

    /// "0-3" for [0, 1, 2, 3], "0, 2" otherwise.
    static func ranges(_ values: [Int]) -> String {
        guard let first = values.first, let last = values.last else { return "none" }
        if values == Array(first...last), values.count > 2 { return "\(first)-\(last)" }
        return values.map(String.init).joined(separator: ", ")
    }

    /// Bytes per record, split by section, with each section's compression ratio (decoded / stored).
    static func breakdown(_ s: ShardStatistics, keyTableBytes: Int) -> String {
        let n = Double(max(s.records, 1))
        func per(_ bytes: Int) -> String { String(format: "%8.3f", Double(bytes) / n) }
        func ratio(_ size: ShardStatistics.SectionSize) -> String { String(format: "%.2fx", size.compressionRatio) }
        let values = s[.values]
        let indices = s[.indices]
        let order = s[.order]
        let augmentation = s[.augmentation]
        let ids = s[.sampleIDs]
        let overhead = s.overheadBytes + keyTableBytes
        let total = s.fileBytes + keyTableBytes
        let decoded = s.sections.reduce(0) { $0 + $1.decoded }
        let stored = s.sections.reduce(0) { $0 + $1.stored }
        var out = "bytes/record \(per(total))   (records compress \(String(format: "%.2fx", stored == 0 ? 1 : Double(decoded) / Double(stored))) overall)\n"
        out += "  values       \(per(values.stored))   \(ratio(values))\n"
        out += "  indices      \(per(indices.stored + order.stored))   (indices \(per(indices.stored).trimmed) at \(ratio(indices)), order \(per(order.stored).trimmed) at \(ratio(order)))\n"
        out += "  augmentation \(per(augmentation.stored))   \(ratio(augmentation))\n"
        out += "  sample ids   \(per(ids.stored))   \(ratio(ids))\n"
        out += "  overhead     \(per(overhead))   (headers \(per(s.headerBytes).trimmed), block+section headers \(per(s.blockHeaderBytes + s.sectionHeaderBytes).trimmed), "
        out += "index \(per(s.indexBytes).trimmed), footer \(per(s.footerBytes).trimmed), key table \(per(keyTableBytes).trimmed))\n"
        return out
    }
}

extension String {
    var trimmed: String { trimmingCharacters(in: .whitespaces) }
}
