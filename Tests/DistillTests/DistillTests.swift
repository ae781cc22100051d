import DistillTestSupport
import Augment
import Foundation
import ImageStore
import ShardFormat
import Tensor
import TinyViT
import XCTest
@testable import Distill

final class DistillUnitTests: XCTestCase {
    func testTopKDescendingWithTiesToLowerClass() {
        let row: [Float] = [0.1, 0.3, 0.3, 0.05, 0.25]
        let top = row.withUnsafeBufferPointer { Probabilities.topK($0, k: 3) }
        XCTAssertEqual(top.indices, [1, 2, 4])
        XCTAssertEqual(top.values, [0.3, 0.3, 0.25])
        XCTAssertEqual(row.withUnsafeBufferPointer { Probabilities.rank(of: 2, in: $0) }, 1)
    }

    func testScheduleWarmsUpThenDecaysToMinimum() {
        let s = LearningRateSchedule(base: 1, minimum: 0.01, warmupSteps: 4, totalSteps: 20)
        XCTAssertEqual(s.rate(step: 3), 1, accuracy: 1e-6)
        XCTAssertLessThan(s.rate(step: 0), s.rate(step: 1))
        XCTAssertGreaterThan(s.rate(step: 5), s.rate(step: 12))
        XCTAssertEqual(s.rate(step: 20), 0.01, accuracy: 1e-6)
    }

    /// AdamW's checkpointed state restores bit-exactly: a model and optimizer restored after one step
    /// continue exactly like the uninterrupted pair.
    func testAdamWStateRestoresBitExactly() throws {
        let config = Fixture.tinyConfig()
        let a = try TinyViT(config), b = try TinyViT(config), c = try TinyViT(config)
        for m in [a, b, c] { m.initializeWeights(seed: 1); m.setLayerLearningRateDecay(0.8) }
        let reference = AdamW(learningRate: 1e-2, weightDecay: 0.05, maxGradientNorm: 0.5)
        let mine = AdamW(learningRate: 1e-2, weightDecay: 0.05, maxGradientNorm: 0.5)
        var restored: AdamW?
        let images = Tensor(zeros: [4, 3, 16, 16])
        var rng = SplitMix64(seed: 5)
        for i in 0..<images.count { images[flat: i] = rng.nextGaussian() }
        let targets = Tensor(zeros: [4, 10])
        for r in 0..<4 { targets[flat: r * 10 + r] = 1 }
        for step in 0..<3 {
            _ = try a.lossAndGradients(images: images, targets: targets, generator: SplitMix64(seed: 9))
            reference.step(a.parameters)
            _ = try b.lossAndGradients(images: images, targets: targets, generator: SplitMix64(seed: 9))
            mine.step(b.parameters)
            if step == 0 {
                // c takes b's weights and optimizer state after one step, then continues.
                try c.loadStateDict(b.stateDict())
                restored = AdamW(learningRate: 1e-2, weightDecay: 0.05, maxGradientNorm: 0.5)
                try restored!.load(SafeTensors(data: mine.stateDict().serialized()), parameters: c.parameters, source: "memory")
            } else {
                _ = try c.lossAndGradients(images: images, targets: targets, generator: SplitMix64(seed: 9))
                restored!.step(c.parameters)
            }
        }
        for (pa, (pb, pc)) in zip(a.parameters, zip(b.parameters, c.parameters)) {
            XCTAssertEqual(pa.value.toArray(), pb.value.toArray(), pa.name)
            XCTAssertEqual(pa.value.toArray(), pc.value.toArray(), pa.name)
        }
    }
}

final class DistillPipelineTests: XCTestCase {
    /// Shards verify clean, and every record's top-K equals a direct forward of the image rebuilt from its params.
    func testTeacherPassWritesVerifiedShardsMatchingDirectForward() throws {
        let dir = try Fixture.temporaryDirectory("teacher")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Fixture.store(count: 40, in: dir)
        let (teacher, summary) = try Fixture.teacherPass(store: store, directory: dir + "/shards")
        let report = ShardVerifier().verifyDataset(directory: dir + "/shards")
        XCTAssertTrue(report.isClean, report.problems.map(\.description).joined(separator: "\n"))
        let split = store.split(heldOutFraction: 0.2)
        XCTAssertEqual(summary.records, 2 * split.train.count)
        XCTAssertGreaterThan(summary.records, 20)
        let dataset = try ShardDataset(directory: dir + "/shards")
        XCTAssertEqual(dataset.epochs, [0, 1])
        let augmenter = Augmenter(outputWidth: 16, outputHeight: 16)
        var sawDifferentEpochs = false
        for reader in dataset.shards {
            XCTAssertEqual(reader.recordCount, split.train.count)
            let cursor = reader.makeCursor()
            for ordinal in 0..<reader.recordCount {
                let record = try cursor.record(at: ordinal)
                let index = store.index(ofKey: try dataset.keys.key(Int(record.sampleID)))!
                XCTAssertFalse(split.heldOut.contains(index))
                let params = try record.augmentation.withUnsafeBytes { try AugmentationParameters(code: $0, outputHeight: 16, outputWidth: 16) }
                let images = Tensor(zeros: [1, 3, 16, 16])
                try augmenter.renderNormalized(params, source: store.image(at: index), partner: nil, into: images.mutableBuffer)
                let logits = try teacher.forward(images, context: ForwardContext(training: false, recordsGradients: false))
                let probs = Probabilities.softmax(logits.buffer, classes: 10)
                let expected = probs.withUnsafeBufferPointer { Probabilities.topK($0, k: 3) }
                XCTAssertEqual(record.indices, expected.indices, "record \(ordinal)")
                for j in 0..<3 { XCTAssertEqual(Float(record.values[j]), Float(Float16(expected.values[j])), "record \(ordinal)") }
                if reader.schema.epoch == 1, ordinal == 0 {
                    let other = try dataset.locate(epoch: 0, sampleID: record.sampleID)!
                    sawDifferentEpochs = try other.shard.record(at: other.ordinal).augmentation != record.augmentation
                }
            }
        }
        XCTAssertTrue(sawDifferentEpochs, "epochs should draw different parameters")
    }

    func testStudentTrainingOffShardsLowersTheLossAndEvaluates() throws {
        let dir = try Fixture.temporaryDirectory("student")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Fixture.store(count: 48, in: dir)
        _ = try Fixture.teacherPass(store: store, directory: dir + "/shards", epochs: 1)
        let trainer = try Trainer(store: store, views: .replay(try ShardDataset(directory: dir + "/shards")), targets: .storedSoftLabels(),
                                  configuration: Fixture.tinyConfig(), options: Fixture.options(epochs: 6, cycleEpochs: true), runDirectory: dir + "/run")
        let summary = try trainer.run()
        let perEpoch = (0..<6).map { e in summary.rows.filter { $0.epoch == e }.map { Double($0.loss) }.reduce(0, +) }
        XCTAssertLessThan(perEpoch[5], perEpoch[0] * 0.9, "loss per epoch: \(perEpoch)")
        XCTAssertNotNil(summary.lastEvaluation)
        XCTAssertGreaterThan(summary.lastEvaluation!.count, 0)
        for file in ["model.safetensors", "metrics.csv", "curves.svg", "config.json", "checkpoint/state.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/run/" + file), file)
        }
        let csv = try String(contentsOfFile: dir + "/run/metrics.csv", encoding: .utf8)
        XCTAssertTrue(csv.hasPrefix("epoch,step,loss,lr,img_per_s,eval_top1,eval_top5\n"))
        XCTAssertEqual(csv.split(separator: "\n").count, 1 + summary.steps)
    }

    func testHardLabelModeReplaysTheShardsParamsWithOneHotTargets() throws {
        let dir = try Fixture.temporaryDirectory("hard")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Fixture.store(count: 48, in: dir)
        _ = try Fixture.teacherPass(store: store, directory: dir + "/shards", epochs: 1)
        let trainer = try Trainer(store: store, views: .replay(try ShardDataset(directory: dir + "/shards")), targets: .hardLabels,
                                  configuration: Fixture.tinyConfig(), options: Fixture.options(epochs: 6, cycleEpochs: true), runDirectory: dir + "/run")
        let summary = try trainer.run()
        let first = summary.rows.filter { $0.epoch == 0 }.map(\.loss).reduce(0, +)
        let last = summary.rows.filter { $0.epoch == 5 }.map(\.loss).reduce(0, +)
        XCTAssertLessThan(last, first, "hard-label loss should fall")
        // Initial loss of a near-uniform model against one-hot targets is about ln 10.
        XCTAssertEqual(Double(summary.rows[0].loss), log(10.0), accuracy: 0.5)
    }

    /// Two epochs in one go equal one epoch, a new process-like trainer resuming, and one more epoch.
    func testResumeIsBitExact() throws {
        let dir = try Fixture.temporaryDirectory("resume")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Fixture.store(count: 40, in: dir)
        _ = try Fixture.teacherPass(store: store, directory: dir + "/shards")
        func source() throws -> ViewSource { .replay(try ShardDataset(directory: dir + "/shards")) }
        let options = Fixture.options(epochs: 2)
        let whole = try Trainer(store: store, views: source(), targets: .storedSoftLabels(), configuration: Fixture.tinyConfig(), options: options, runDirectory: dir + "/a")
        let summaryA = try whole.run()
        let first = try Trainer(store: store, views: source(), targets: .storedSoftLabels(), configuration: Fixture.tinyConfig(), options: options, runDirectory: dir + "/b")
        XCTAssertEqual(try first.run(stopAfterEpochs: 1).completedEpochs, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/b/model.safetensors"))
        let resumed = try Trainer(store: store, views: source(), targets: .storedSoftLabels(), configuration: Fixture.tinyConfig(), options: options,
                                  runDirectory: dir + "/b", resume: true)
        XCTAssertEqual(resumed.completedEpochs, 1)
        let summaryB = try resumed.run()
        XCTAssertEqual(summaryA.rows.map(\.loss), summaryB.rows.map(\.loss))
        XCTAssertEqual(summaryA.rows.map(\.top1), summaryB.rows.map(\.top1))
        for file in ["model.safetensors", "checkpoint/model.safetensors", "checkpoint/optimizer.safetensors"] {
            let a = try Data(contentsOf: URL(fileURLWithPath: dir + "/a/" + file))
            let b = try Data(contentsOf: URL(fileURLWithPath: dir + "/b/" + file))
            XCTAssertEqual(a, b, file)
        }
    }

    func testCorruptOrMissingShardStopsTrainingNamingTheFile() throws {
        let dir = try Fixture.temporaryDirectory("corrupt")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Fixture.store(count: 40, in: dir)
        _ = try Fixture.teacherPass(store: store, directory: dir + "/shards", epochs: 2)
        let shard = dir + "/shards/" + DatasetWriter.shardFileName(epoch: 1, rank: 0)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: shard))
        // A byte of the (only) block's payload: its checksum fails when the epoch is read.
        bytes[bytes.count - 200] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: shard))
        do {
            let trainer = try Trainer(store: store, views: .replay(try ShardDataset(directory: dir + "/shards")), targets: .storedSoftLabels(),
                                      configuration: Fixture.tinyConfig(), options: Fixture.options(epochs: 2), runDirectory: dir + "/run")
            try trainer.run()
            XCTFail("training should stop on the corrupt shard")
        } catch let error as ShardError {
            XCTAssertTrue(error.description.contains("epoch0001-rank000.tshard"), error.description)
            XCTAssertNotNil(error.location.record, error.description)
            print("corrupt shard error: \(error.description)")
        }
        // Epoch 0 was trained and checkpointed before the corrupt epoch 1 was reached.
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/run/checkpoint/state.json"))
        try FileManager.default.removeItem(atPath: shard)
        XCTAssertThrowsError(try ShardDataset(directory: dir + "/shards")) { error in
            XCTAssertTrue(String(describing: error).contains("epoch0001-rank000.tshard"), String(describing: error))
        }
    }

    func testTeacherTrainingOnTheFlyWithHardLabels() throws {
        let dir = try Fixture.temporaryDirectory("fly")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Fixture.store(count: 40, in: dir)
        let trainer = try Trainer(store: store, views: .recipe(NamedRecipe(name: "tinyvit", recipe: .tinyViT), seed: 4), targets: .hardLabels, configuration: Fixture.tinyConfig(),
                                  options: Fixture.options(epochs: 3), runDirectory: dir + "/run")
        let summary = try trainer.run()
        XCTAssertEqual(summary.completedEpochs, 3)
        XCTAssertEqual(summary.steps, 3 * trainer.stepsPerEpoch)
        let reloaded = try TinyViT(trainer.model.configuration)
        try reloaded.load(contentsOf: URL(fileURLWithPath: dir + "/run/model.safetensors"))
        let split = store.split(heldOutFraction: 0.2)
        XCTAssertEqual(try Trainer.evaluate(model: reloaded, store: store, indices: split.heldOut), summary.lastEvaluation)
    }
}

final class ExternalTeacherTests: XCTestCase {
    static func hasNumPy() -> Bool {
        
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import numpy"]
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    /// A Python/NumPy teacher over the .npy protocol: logits are a fixed linear map of the channel means,
    /// recomputed here from the replayed images.
    func testExternalTeacherWritesTheSameTopKAsItsLogits() throws {
        guard Self.hasNumPy() else { throw XCTSkip("no python3 with numpy") }
        let dir = try Fixture.temporaryDirectory("external")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Fixture.store(count: 24, in: dir)
        let script = dir + "/teacher.py"
        try """
        import sys, numpy as np
        w = np.arange(30, dtype=np.float32).reshape(3, 10) * np.float32(0.37) - np.float32(4)
        for line in sys.stdin:
            src, dst = line.split()
            x = np.load(src)
            np.save(dst, (x.mean(axis=(2, 3), dtype=np.float64) @ w.astype(np.float64)).astype(np.float32))
            print("ok", flush=True)
        """.write(toFile: script, atomically: true, encoding: .utf8)
        let teacher = try ExternalTeacher(command: "python3 \(script)", numClasses: 10, imageSize: 16)
        let summary = try TeacherPass.run(store: store, teacher: teacher, outputDirectory: dir + "/shards",
                                          options: .init(epochs: 1, k: 4, seed: 2, batchSize: 5),
                                          identity: TeacherIdentity(name: "numpy", sha256: SHA256.hex(Array(script.utf8))))
        teacher.close()
        XCTAssertTrue(ShardVerifier().verifyDataset(directory: dir + "/shards").isClean)
        let dataset = try ShardDataset(directory: dir + "/shards")
        let reader = dataset.shards[0]
        XCTAssertEqual(reader.recordCount, summary.records)
        let augmenter = Augmenter(outputWidth: 16, outputHeight: 16)
        for ordinal in 0..<reader.recordCount {
            let record = try reader.record(at: ordinal)
            let index = store.index(ofKey: try dataset.keys.key(Int(record.sampleID)))!
            let params = try record.augmentation.withUnsafeBytes { try AugmentationParameters(code: $0, outputHeight: 16, outputWidth: 16) }
            var image = [Float](repeating: 0, count: 3 * 256)
            try image.withUnsafeMutableBufferPointer { try augmenter.renderNormalized(params, source: store.image(at: index), partner: nil, into: $0) }
            var means = [Double](repeating: 0, count: 3)
            for c in 0..<3 {
                for i in 0..<256 { means[c] += Double(image[c * 256 + i]) }
                means[c] /= 256
            }
            var logits = [Float](repeating: 0, count: 10)
            for j in 0..<10 {
                var sum = 0.0
                for c in 0..<3 {
                    let weight: Float = Float(c * 10 + j) * 0.37 - 4
                    sum += means[c] * Double(weight)
                }
                logits[j] = Float(sum)
            }
            let probs = logits.withUnsafeBufferPointer { Probabilities.softmax($0, classes: 10) }
            let top = probs.withUnsafeBufferPointer { Probabilities.topK($0, k: 4) }
            XCTAssertEqual(record.indices, top.indices, "record \(ordinal)")
        }
        XCTAssertThrowsError(try ExternalTeacher(command: "exit 3", numClasses: 10, imageSize: 16).logits(Tensor(zeros: [1, 3, 16, 16])))
    }
}

