import Foundation
import ShardFormat
import TinyShardBase
#if canImport(Glibc)
import Glibc
#endif

/// `tinyshard-bench scale-write DATASET OUT`: the writer a teacher pass uses (DatasetWriter, one ShardWriter
/// per (epoch, rank)), fed every record of DATASET again, shard by shard, into a new dataset at OUT. The clock
/// runs only inside the writer (appends, finishing shards, the key table and manifest), not while records are
/// read back, so `records_per_s` is the writer's own rate. Prints one JSON object; the process's peak RSS
/// is taken by the caller (Tools/scale/scale_ladder.py) from wait4.
enum ScaleWrite {
    static func main(_ arguments: [String]) -> Int32 {
        guard arguments.count == 2 else {
            StandardError.write("usage: tinyshard-bench scale-write DATASET OUT\n")
            return 2
        }
        do {
            let (records, writing) = try rewrite(arguments[0], into: arguments[1])
            print("{\"records\": \(records), \"writer_s\": \(String(format: "%.6g", writing)), "
                  + "\"records_per_s\": \(String(format: "%.6g", Double(records) / writing))}")
            return 0
        } catch {
            StandardError.write("tinyshard-bench scale-write: \(error)\n")
            return 1
        }
    }

    static func rewrite(_ source: String, into destination: String) throws -> (records: Int, seconds: Double) {
        let dataset = try ShardDataset(directory: source)
        guard let first = dataset.shards.first else { throw ShardError(.manifestMismatch, "\(source) holds no shards") }
        let keys = try dataset.keys.loadAll()
        var clock = WriterClock()
        let writer = try clock.time { try DatasetWriter(directory: destination, keys: keys, schema: first.schema) }
        var records = 0
        for shard in dataset.shards {
            let shardWriter = try clock.time { try writer.shardWriter(epoch: shard.schema.epoch, rank: shard.schema.rank) }
            let cursor = shard.makeCursor()
            for ordinal in 0..<shard.recordCount {
                let record = try cursor.record(at: ordinal)
                try clock.time {
                    try shardWriter.append(sampleID: record.sampleID, indices: record.indices, values: record.values,
                                           augmentation: record.augmentation)
                }
            }
            try clock.time { _ = try writer.finish(shardWriter) }
            shard.releaseMappedPages(0..<shard.fileSize)
            records += shard.recordCount
        }
        try clock.time { _ = try writer.finish() }
        return (records, clock.seconds)
    }

    /// Sums the time spent inside the writer.
    struct WriterClock {
        var seconds = 0.0
        mutating func time<T>(_ body: () throws -> T) rethrows -> T {
            let start = DispatchTime.now().uptimeNanoseconds
            defer { seconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
            return try body()
        }
    }
}
