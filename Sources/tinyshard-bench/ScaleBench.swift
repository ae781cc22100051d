import DemoData
import ShardConvert
import Foundation
import ShardFormat
import TinyShardBase
#if canImport(Glibc)
import Glibc
#endif

/// `tinyshard-bench scale DATASET [--lookups N] [--rows N] [--random N] [--epoch E]`: what a training process meets when it
/// opens a dataset of ImageNet-21k size, measured in this process and printed as one JSON object (Tools/scale/
/// bench_scale.py collects it into docs/scale.md):
/// - `open_s`, `open_rss_mb`: ShardDataset open (manifest, key table head, shard headers and indexes);
/// - `inspect_s`, `inspect_rss_mb`: the per-section statistics `tinyshard inspect` prints, over every shard;
/// - `first_key_lookup_ms`: the first key → id (checks the key table's directory);
/// - `key_lookup_us`: mean key → id over N random keys after that (a page inflated per cold page);
/// - `table_build_s`, `table_rss_mb`: the first (epoch, key) lookup, which builds the epoch's sample table;
/// - `locate_us`: mean (epoch, key) → (shard, ordinal) after that;
/// - `record_order_dense_rows_per_s`, `record_order_sparse_rows_per_s`: rows in the record-order sampler's
///   order (one rank of one), decoded with one cursor per shard;
/// - `random_dense_rows_per_s`: rows of uniformly random records of the epoch (a block decode each; N of
///   them, default rows / 100, at most the lookups);
/// - `peak_rss_mb`: the process's peak resident set.
enum ScaleBench {
    static func main(_ arguments: [String]) -> Int32 {
        var rest = arguments[...]
        guard let folder = rest.popFirst() else {
            StandardError.write("usage: tinyshard-bench scale DATASET [--lookups N] [--rows N] [--random N] [--epoch E]\n")
            return 2
        }
        var lookups = 100_000, rows = 200_000, epoch = 0
        var random: Int?
        while let flag = rest.popFirst() {
            guard let value = rest.popFirst().flatMap(Int.init) else { StandardError.write("\(flag) needs a number\n"); return 2 }
            switch flag {
            case "--lookups": lookups = value
            case "--rows": rows = value
            case "--epoch": epoch = value
            case "--random": random = value
            default: StandardError.write("unknown option \(flag)\n"); return 2
            }
        }
        do {
            print(try measure(folder, lookups: lookups, rows: rows, randomRows: random ?? max(1, rows / 100), epoch: epoch).json)
            return 0
        } catch {
            StandardError.write("tinyshard-bench scale: \(error)\n")
            return 1
        }
    }

    struct Result {
        var fields: [(String, Double)] = []
        mutating func add(_ name: String, _ value: Double) { fields.append((name, value)) }
        var json: String { "{" + fields.map { "\"\($0.0)\": \(String(format: "%.6g", $0.1))" }.joined(separator: ", ") + "}" }
    }

    static func measure(_ folder: String, lookups: Int, rows: Int, randomRows: Int, epoch: Int) throws -> Result {
        var result = Result()
        var dataset: ShardDataset!
        result.add("open_s", try seconds { dataset = try ShardDataset(directory: folder) })
        result.add("open_rss_mb", residentMB())
        var statistics = ShardStatistics()
        result.add("inspect_s", try seconds { statistics = try dataset.statistics() })
        result.add("inspect_rss_mb", residentMB())
        result.add("records", Double(statistics.records))
        result.add("keys", Double(dataset.keys.count))

        var generator = SeededGenerator(seed: 17)
        let wantedIDs = (0..<min(lookups, dataset.keys.count)).map { _ in Int.random(in: 0..<dataset.keys.count, using: &generator) }
        result.add("first_key_lookup_ms", 1000 * (try seconds { _ = try dataset.keys.id(of: "a key that is not there") }))
        let keys = try wantedIDs.map { try dataset.keys.key($0) }
        var found = 0
        let lookupSeconds = try seconds { for key in keys where try dataset.keys.id(of: key) != nil { found += 1 } }
        guard found == keys.count else { throw ShardError(.badKeys, "\(keys.count - found) keys were not found again") }
        result.add("key_lookup_us", 1e6 * lookupSeconds / Double(max(keys.count, 1)))

        result.add("table_build_s", try seconds { _ = try dataset.locate(epoch: epoch, key: keys[0]) })
        result.add("table_rss_mb", residentMB())
        var located: [(ShardReader, Int)] = []
        let locateSeconds = try seconds {
            for key in keys { if let hit = try dataset.locate(epoch: epoch, key: key) { located.append((hit.shard, hit.ordinal)) } }
        }
        result.add("locate_us", 1e6 * locateSeconds / Double(max(keys.count, 1)))

        let order = RecordOrder(epoch: epoch, of: dataset)
        let shards = dataset.searchOrder(epoch: epoch).sorted { $0.schema.rank < $1.schema.rank }
        let items = Array(try order.items(world: 1, rank: 0).prefix(rows))
        let classes = dataset.manifest.classes, k = dataset.manifest.k
        var dense = [Float](repeating: 0, count: classes)
        var indices = [Int32](repeating: 0, count: k), values = [Float](repeating: 0, count: k)
        let cursors = shards.map { $0.makeCursor() }
        result.add("record_order_dense_rows_per_s", Double(items.count) / (try seconds {
            try dense.withUnsafeMutableBufferPointer { row in
                for item in items { try cursors[item.shard].dense([item.ordinal], into: row) }
            }
        }))
        let sparseCursors = shards.map { $0.makeCursor() }
        result.add("record_order_sparse_rows_per_s", Double(items.count) / (try seconds {
            try indices.withUnsafeMutableBufferPointer { i in
                try values.withUnsafeMutableBufferPointer { v in
                    for item in items { try sparseCursors[item.shard].sparse([item.ordinal], indices: i, values: v) }
                }
            }
        }))
        let randomLocated = located.prefix(randomRows)
        let randomCursors = Dictionary(uniqueKeysWithValues: shards.map { (ObjectIdentifier($0), $0.makeCursor()) })
        result.add("random_dense_rows_per_s", Double(randomLocated.count) / (try seconds {
            try dense.withUnsafeMutableBufferPointer { row in
                for (shard, ordinal) in randomLocated { try randomCursors[ObjectIdentifier(shard)]!.dense([ordinal], into: row) }
            }
        }))
        result.add("peak_rss_mb", peakMB())
        return result
    }

    /// The resident set now, from /proc/self/statm (pages × page size).
    static func residentMB() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Double(fields[1]) else { return 0 }
        return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1e6
    }

    static func peakMB() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_maxrss) / 1e3
    }
}
