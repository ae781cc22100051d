// A minimal training-loop reader on TinyShard's public API, as another package uses it:
//
//   embedded-reader [DATASET]
//
// Without DATASET it first writes a small synthetic dataset (DemoData's demo) to a temporary folder.
// Then, for every epoch: each shard is read in order through a cursor, a batch at a time, into a label
// buffer this program owns (dense soft labels, C floats per record), and fed with random images to a
// few TinyViT train steps as soft targets; two shards are also read at once on two threads (the reader
// is shared, each thread has its own cursor) and must give the same labels; records are looked up by
// key. Every step is checked; the program exits 1 with the error's one line on any failure.
import DemoData
import Foundation
import ShardConvert
import ShardFormat
import Tensor
import TinyViT

struct CheckFailure: Error, CustomStringConvertible {
    let description: String
}

func check(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw CheckFailure(description: message()) }
}

/// Reads `reader`'s records in stored order, `batch` at a time, into `labels` (owned by the caller, at
/// least batch × C floats), calling `body` with each batch's row count and the filled buffer. Returns the
/// sum of all labels.
func readEpoch(_ reader: ShardReader, batch: Int, labels: inout [Float],
               _ body: (Int, inout [Float]) throws -> Void = { _, _ in }) throws -> Double {
    let classes = reader.schema.classes
    let cursor = reader.makeCursor()   // one per thread; keeps the current decoded block
    var total = 0.0
    var start = 0
    while start < reader.recordCount {
        let count = min(batch, reader.recordCount - start)
        try labels.withUnsafeMutableBufferPointer { buffer in
            try cursor.dense(start..<(start + count), into: UnsafeMutableBufferPointer(rebasing: buffer[0..<(count * classes)]))
        }
        for row in 0..<count {
            let sum = labels[(row * classes)..<((row + 1) * classes)].reduce(0.0) { $0 + Double($1) }
            try check(abs(sum - 1) < 1e-3, "\(reader.path): record \(start + row): dense row sums to \(sum), not 1")
            total += sum
        }
        try body(count, &labels)
        start += count
    }
    return total
}

func run() throws {
    var directory = CommandLine.arguments.dropFirst().first
    var temporary: String?
    if directory == nil {
        let folder = NSTemporaryDirectory() + "embedded-reader-\(ProcessInfo.processInfo.processIdentifier)"
        try? FileManager.default.removeItem(atPath: folder)
        let options = DemoOptions(recordsPerShard: 500, epochs: 2, ranks: 2, classes: 100, k: 5, recordsPerBlock: 128,
                                  outputSize: 32)
        _ = try DemoDataset.write(to: folder, options: options)
        directory = folder
        temporary = folder
    }
    defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary) } }

    // Open: the manifest, the key table and every shard, memory-mapped; thread-safe from here on.
    let data = try ShardDataset(directory: directory!)
    let classes = data.manifest.classes
    print("dataset \(directory!): \(data.shards.count) shards, \(data.keys.count) keys, K = \(data.manifest.k), C = \(classes)")

    // The student: a tiny TinyViT with the dataset's classes, trained on the soft labels.
    let batch = 8, side = 32
    let model = try TinyViT(TinyViTConfiguration(embedDims: [8, 16, 16, 16], depths: [1, 1, 1, 1], numHeads: [1, 1, 1, 1],
                                                 windowSizes: [2, 2, 2, 2], numClasses: classes, imageSize: side))
    model.initializeWeights(seed: 0)
    let optimizer = AdamW()
    var random = SplitMix64(seed: 7)
    var labels = [Float](repeating: 0, count: batch * classes)   // the training loop's own label buffer
    var losses: [Float] = []

    for epoch in data.epochs {
        let shards = data.shards(epoch: epoch)
        var sequential: [Double] = []
        for reader in shards {
            var steps = 0
            sequential.append(try readEpoch(reader, batch: batch, labels: &labels) { count, labels in
                guard steps < 2, count == batch else { return }   // a couple of steps per shard keeps this quick
                let images = Tensor(uninitialized: [batch, 3, side, side])
                for i in 0..<images.count { images[flat: i] = random.nextGaussian() }
                let targets = try Tensor(shape: [batch, classes], values: labels)
                let (loss, _) = try model.trainStep(images: images, targets: targets, optimizer: optimizer)
                try check(loss.isFinite, "epoch \(epoch): train step loss \(loss)")
                losses.append(loss)
                steps += 1
            })
        }
        // The same shards read concurrently, one cursor per thread, into per-thread buffers.
        let concurrent = UnsafeMutableBufferPointer<Double>.allocate(capacity: shards.count)
        defer { concurrent.deallocate() }
        let failures = NSLock()
        var failure: Error?
        DispatchQueue.concurrentPerform(iterations: shards.count) { index in
            var own = [Float](repeating: 0, count: 64 * classes)
            do {
                concurrent[index] = try readEpoch(shards[index], batch: 64, labels: &own)
            } catch {
                failures.lock(); failure = error; failures.unlock()
            }
        }
        if let failure { throw failure }
        for (index, reader) in shards.enumerated() {
            try check(abs(concurrent[index] - sequential[index]) < 1e-6 * sequential[index],
                      "\(reader.path): concurrent read gave \(concurrent[index]), sequential \(sequential[index])")
        }
        let records = shards.reduce(0) { $0 + $1.recordCount }
        print("epoch \(epoch): \(records) records in \(shards.count) shards, dense rows sum to 1, two threads agree")

        // Lookup by key: (epoch, key) -> shard and ordinal -> the stored record.
        var found = 0
        for number in stride(from: 0, to: data.keys.count, by: max(1, data.keys.count / 50)) {
            let key = try data.keys.key(number)
            guard let (reader, ordinal) = try data.locate(epoch: epoch, key: key) else { continue }
            let record = try reader.makeCursor().record(at: ordinal)
            try check(record.sampleID == (try data.keys.id(of: key)), "key \(key): record holds sample \(record.sampleID)")
            try check(record.indices.count == data.manifest.k && record.values.count == data.manifest.k, "key \(key): K entries")
            found += 1
        }
        try check(found > 0, "epoch \(epoch): no key found")
        try check(try data.locate(epoch: epoch, key: "no such key") == nil, "a missing key must give nil")
        print("epoch \(epoch): \(found) records found by key")
    }
    print("train steps: \(losses.count), loss \(losses.first ?? .nan) -> \(losses.last ?? .nan)")

    // Errors are values with a one-line description naming the file (and block, record when known).
    do {
        _ = try ShardDataset(directory: directory! + "/missing")
        throw CheckFailure(description: "opening a missing dataset did not fail")
    } catch let error as ShardError {
        try check("\(error)".contains("missing"), "the error names the file: \(error)")
        print("a missing dataset fails with: \(error)")
    }
}

do {
    try run()
    print("embedded-reader: OK")
} catch {
    print("embedded-reader: FAILED: \(error)")
    exit(1)
}
