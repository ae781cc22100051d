import DistillTestSupport
import Augment
import Foundation
import ImageStore
import ShardFormat
import Tensor
import TinyViT
import XCTest
@testable import Distill

/// Views drawn on the fly equal the stored ones; an online teacher with the pass's K gives the stored
/// dense labels; a stop mid-epoch resumes bit-exactly; splits are disjoint.
final class OnlineAndViewsTests: XCTestCase {
    static let mixRecipe = NamedRecipe(name: "tinyvit-mix", recipe: .tinyViTWithMix)

    func pass(_ store: ImageStore, _ dir: String, recipe: NamedRecipe = mixRecipe, k: Int = 3, epochs: Int = 2) throws -> TinyViT {
        let teacher = try Fixture.teacher()
        _ = try TeacherPass.run(store: store, teacher: teacher, outputDirectory: dir,
                                options: .init(epochs: epochs, k: k, seed: 11, batchSize: 8, recipe: recipe))
        return teacher
    }

    /// The same order and the same parameters, epoch by epoch, from the recipe as from the shards; every
    /// mix partner is a training image.
    func testViewsDrawnFromTheRecipeAreTheStoredViews() throws {
        let dir = try Fixture.temporaryDirectory("views")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Fixture.store(count: 60, in: dir)
        _ = try pass(store, dir + "/shards")
        let split = DataSplit(store: store, heldOutFraction: 0.2)
        let dataset = try ShardDataset(directory: dir + "/shards")
        XCTAssertEqual(dataset.shards[0].schema.provenance["recipe"], "tinyvit-mix")
        XCTAssertEqual(dataset.shards[0].schema.provenance["recipe_sha256"], Self.mixRecipe.hash)
        let replay = try ViewPlanner(source: .replay(dataset), store: store, map: try SampleMap(store: store, keys: dataset.keys.loadAll()),
                                     split: split, size: 16)
        let drawn = try ViewPlanner(source: .recipe(Self.mixRecipe, seed: 11), store: store, map: try SampleMap(store: store),
                                    split: split, size: 16)
        let training = Set(split.train)
        var mixed = 0
        for epoch in 0..<2 {
            let a = try replay.plan(epoch: epoch), b = try drawn.plan(epoch: epoch)
            XCTAssertEqual(a.map(\.storeIndex), b.map(\.storeIndex), "epoch \(epoch) order")
            XCTAssertEqual(a.count, split.train.count)
            for (x, y) in zip(a, b) {
                let stored = try replay.parameters(x, epoch: epoch)
                XCTAssertEqual(stored, try drawn.parameters(y, epoch: epoch))
                if let mix = stored.mix {
                    mixed += 1
                    XCTAssertTrue(training.contains(store.index(ofKey: try dataset.keys.key(Int(mix.partner)))!), "partner \(mix.partner)")
                }
            }
        }
        XCTAssertGreaterThan(mixed, 40, "the mix recipe mixes every sample")
    }

    /// Online distillation with --teacher-k K over drawn views trains the same student, bit for bit, as
    /// training off the K-sparse shards: same views, order, targets, optimiser and schedule.
    func testOnlineTeacherWithTheStoredKTrainsExactlyLikeTheShards() throws {
        let dir = try Fixture.temporaryDirectory("online")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Fixture.store(count: 48, in: dir)
        let teacher = try pass(store, dir + "/shards", epochs: 2)
        var options = Fixture.options(epochs: 2)
        options.batchSize = 8  // the pass's batch: the teacher sees the same batches, so its logits are the same floats
        let shards = try Trainer(store: store, views: .replay(try ShardDataset(directory: dir + "/shards")), targets: .storedSoftLabels(),
                                 configuration: Fixture.tinyConfig(), options: options, runDirectory: dir + "/shards-run")
        let online = try Trainer(store: store, views: .recipe(Self.mixRecipe, seed: 11),
                                 targets: .onlineTeacher(TinyViTTeacher(teacher), name: "t", k: 3),
                                 configuration: Fixture.tinyConfig(), options: options, runDirectory: dir + "/online-run")
        let a = try shards.run(), b = try online.run()
        XCTAssertEqual(a.rows.map(\.loss), b.rows.map(\.loss))
        XCTAssertGreaterThan(b.teacherSeconds, 0)
        XCTAssertTrue((0.0..<1.0).contains(b.teacherShare) && b.teacherShare > 0)
        XCTAssertEqual(a.teacherSeconds, 0)
        for (p, q) in zip(shards.model.parameters, online.model.parameters) { XCTAssertEqual(p.value.toArray(), q.value.toArray(), p.name) }
        // With the full softmax the targets differ (no top-K), so the runs part ways.
        let full = try Trainer(store: store, views: .recipe(Self.mixRecipe, seed: 11),
                               targets: .onlineTeacher(TinyViTTeacher(teacher), name: "t", k: nil),
                               configuration: Fixture.tinyConfig(), options: options, runDirectory: dir + "/full-run")
        XCTAssertNotEqual(try full.run().rows.map(\.loss), a.rows.map(\.loss))
    }

    /// The top-K target is the shard's dense row: float16 values in place, the section 7 residual elsewhere.
    func testOnlineTopKTargetIsTheDenseLabelRule() throws {
        let teacher = try Fixture.teacher()
        var rng = SplitMix64(seed: 3)
        let images = Tensor(zeros: [4, 3, 16, 16])
        for i in 0..<images.count { images[flat: i] = rng.nextGaussian() }
        let targets = Tensor(zeros: [4, 10])
        try OnlineTargets(teacher: TinyViTTeacher(teacher), k: 2).fill(images: images, into: targets)
        let logits = try teacher.forward(images, context: ForwardContext(training: false, recordsGradients: false))
        let p = Probabilities.softmax(logits.buffer, classes: 10)
        for r in 0..<4 {
            let top = p.withUnsafeBufferPointer { Probabilities.topK(UnsafeBufferPointer(rebasing: $0[(r * 10)..<(r * 10 + 10)]), k: 2) }
            let v = top.values.map { Float16($0) }
            let residual = Float(max(0, 1 - Double(v[0]) - Double(v[1])) / 8)  // section 7: max(0, 1 − Σv) / (C − K)
            for c in 0..<10 {
                let expected = c == Int(top.indices[0]) ? Float(v[0]) : c == Int(top.indices[1]) ? Float(v[1]) : residual
                XCTAssertEqual(targets[flat: r * 10 + c], expected, "row \(r) class \(c)")
            }
        }
        XCTAssertThrowsError(try Trainer(store: Fixture.store(count: 40, in: Fixture.temporaryDirectory("k")),
                                         views: .recipe(Self.mixRecipe, seed: 1),
                                         targets: .onlineTeacher(TinyViTTeacher(teacher), name: "t", k: 11),
                                         configuration: Fixture.tinyConfig(), options: Fixture.options(epochs: 1),
                                         runDirectory: Fixture.temporaryDirectory("k-run")))
    }

    /// A stop request mid-epoch writes a checkpoint at that batch; resuming finishes bit-exactly like an
    /// uninterrupted run (weights, optimizer state, losses).
    func testStopMidEpochThenResumeIsBitExact() throws {
        let dir = try Fixture.temporaryDirectory("stop")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Fixture.store(count: 48, in: dir)
        let views = ViewSource.recipe(Self.mixRecipe, seed: 5)
        let options = Fixture.options(epochs: 2)
        let whole = try Trainer(store: store, views: views, targets: .hardLabels, configuration: Fixture.tinyConfig(), options: options,
                                runDirectory: dir + "/a")
        let a = try whole.run()
        let first = try Trainer(store: store, views: views, targets: .hardLabels, configuration: Fixture.tinyConfig(), options: options,
                                runDirectory: dir + "/b")
        let stop = StopRequest()
        let stopAt = first.stepsPerEpoch + 1
        let partial = try first.run(stop: stop) { p in if p.epoch * p.stepsPerEpoch + p.stepInEpoch == stopAt { stop.request() } }
        XCTAssertTrue(partial.interrupted)
        XCTAssertEqual(partial.steps, stopAt)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/b/model.safetensors"))
        let resumed = try Trainer(store: store, views: views, targets: .hardLabels, configuration: Fixture.tinyConfig(), options: options,
                                  runDirectory: dir + "/b", resume: true)
        XCTAssertEqual(resumed.completedEpochs, 1)
        XCTAssertEqual(resumed.stepInEpoch, 1)
        let b = try resumed.run()
        XCTAssertFalse(b.interrupted)
        XCTAssertEqual(a.rows.map(\.loss), b.rows.map(\.loss))
        XCTAssertEqual(a.lastEvaluation, b.lastEvaluation)
        for file in ["model.safetensors", "checkpoint/optimizer.safetensors"] {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/a/" + file)),
                           try Data(contentsOf: URL(fileURLWithPath: dir + "/b/" + file)), file)
        }
        // Another target source cannot resume this checkpoint.
        XCTAssertThrowsError(try Trainer(store: store, views: views, targets: .onlineTeacher(TinyViTTeacher(try Fixture.teacher()), name: "t", k: nil),
                                         configuration: Fixture.tinyConfig(), options: options, runDirectory: dir + "/b", resume: true))
    }

    /// Held-out, validation and training parts are disjoint; the validation run trains on neither.
    func testValidationSplitIsDisjointFromHeldOut() throws {
        let dir = try Fixture.temporaryDirectory("split")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Fixture.store(count: 120, in: dir)
        let plain = DataSplit(store: store, heldOutFraction: 0.2)
        let validation = DataSplit(store: store, heldOutFraction: 0.2, validationFraction: 0.2)
        XCTAssertEqual(plain.evaluation, store.split(heldOutFraction: 0.2).heldOut)
        XCTAssertTrue(Set(validation.evaluation).isDisjoint(with: plain.evaluation))
        XCTAssertTrue(Set(validation.train).isDisjoint(with: plain.evaluation))
        XCTAssertTrue(Set(validation.train).isDisjoint(with: validation.evaluation))
        XCTAssertEqual(validation.train.count + validation.evaluation.count + plain.evaluation.count, store.count)
        XCTAssertGreaterThan(validation.evaluation.count, 10)
    }
}
