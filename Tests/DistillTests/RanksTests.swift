import DistillTestSupport
import Foundation
import ImageStore
import Tensor
import TinyViT
import XCTest
@testable import Distill

/// The pieces of distributed runs that one process can check: how an epoch is dealt to ranks, how a global
/// batch is cut into micro-batches, how gradients are summed and averaged, agreement on one process, and
/// gradient accumulation end to end (resume included). The multi-process behaviour is tested through
/// `mpirun` in TinyShardCLITests/MPICLITests.
final class RanksTests: XCTestCase {
    /// PyTorch: `indices += indices[:padding]` (repeated when the padding is longer), then `indices[rank::N]`.
    func testDistributedShareDealsLikeDistributedSampler() throws {
        let order = ["a", "b", "c", "d", "e"]
        XCTAssertEqual(try DistributedShare(rank: 0, ranks: 3).items(of: order), ["a", "d"])
        XCTAssertEqual(try DistributedShare(rank: 1, ranks: 3).items(of: order), ["b", "e"])
        XCTAssertEqual(try DistributedShare(rank: 2, ranks: 3).items(of: order), ["c", "a"])
        XCTAssertEqual(try DistributedShare(rank: 1, ranks: 2).items(of: Array(order.prefix(4))), ["b", "d"])
        // Padding longer than the order: [x, y] → [x, y, x, y, x] for 5 ranks.
        XCTAssertEqual((0..<5).map { try! DistributedShare(rank: $0, ranks: 5).items(of: ["x", "y"]) },
                       [["x"], ["y"], ["x"], ["y"], ["x"]])
        XCTAssertEqual(try DistributedShare(rank: 0, ranks: 1).items(of: order), order)
        XCTAssertEqual(try DistributedShare(rank: 1, ranks: 2).items(of: [String]()), [])
        XCTAssertEqual(try DistributedShare(rank: 0, ranks: 4).perRank(9), 3)
        XCTAssertThrowsError(try DistributedShare(rank: 2, ranks: 2))
    }

    func testMicroBatchesCutTheGlobalBatchInRankThenMicroOrder() throws {
        let cut = try MicroBatches(globalBatch: 16, ranks: 2, rank: 1, accumulate: 2)
        XCTAssertEqual(cut.size, 4)
        XCTAssertEqual(cut.perStep, 4)
        XCTAssertEqual([cut.number(0), cut.number(1)], [2, 3])
        XCTAssertEqual(cut.positions(step: 1), 4..<8)
        // Two ranks × 1 and one process × 2 read the same streams with the same numbers.
        let rank1 = try MicroBatches(globalBatch: 16, ranks: 2, rank: 1, accumulate: 1)
        let single = try MicroBatches(globalBatch: 16, ranks: 1, rank: 0, accumulate: 2)
        XCTAssertEqual(rank1.positions(step: 3), single.positions(step: 3))
        XCTAssertEqual(rank1.number(0), single.number(1))
        XCTAssertEqual(rank1.perStep, single.perStep)
        for bad in [(15, 2, 1), (8, 2, 4), (16, 1, 0)] {
            XCTAssertThrowsError(try MicroBatches(globalBatch: bad.0, ranks: bad.1, rank: 0, accumulate: bad.2)) { error in
                XCTAssertTrue("\(error)".hasPrefix("[invalid-argument]"), "\(error)")
            }
        }
    }

    func testGradientBucketsAverageMicroBatchesAcrossSeveralBuckets() throws {
        let parameters = [Parameter(name: "a.weight", value: Tensor(zeros: [5, 3])), Parameter(name: "b.bias", value: Tensor(zeros: [7])),
                          Parameter(name: "c.weight", value: Tensor(zeros: [2, 9]))]
        let buckets = GradientBuckets(parameters: parameters, bucketBytes: 4 * 20)
        XCTAssertEqual(buckets.count, 3, "15 + 7 floats do not fit in 20; 7 + 18 neither")
        XCTAssertEqual(buckets.floats, 15 + 7 + 18)
        func fill(_ base: Float) { for (j, p) in parameters.enumerated() { for i in 0..<p.gradient.count { p.gradient[flat: i] = base * Float(i + 1) + Float(j) } } }
        fill(1)
        buckets.accumulate(first: true)
        fill(-0.25)
        buckets.accumulate(first: false)
        fill(100)  // the last backward's gradients are overwritten by the write-back
        buckets.allreduce(SingleProcess())
        buckets.writeBack(scale: 0.5)
        for (j, p) in parameters.enumerated() {
            for i in 0..<p.gradient.count {
                XCTAssertEqual(p.gradient[flat: i], ((Float(i + 1) + Float(j)) + (-0.25 * Float(i + 1) + Float(j))) * 0.5, "\(p.name)[\(i)]")
            }
        }
    }

    func testOneProcessAgreesWithItselfAndRethrowsItsOwnErrors() {
        let one = SingleProcess()
        XCTAssertEqual(one.agree(RankStatus(failed: true, stopRequested: true), sums: [2.5]),
                       AgreedStatus(failedRanks: [0], stop: true, sums: [2.5]))
        XCTAssertTrue(one.allAgree(on: 42))
        XCTAssertThrowsError(try one.agreeing("x") { throw DistillError(.io, "mine") }) { error in
            XCTAssertEqual(error as? DistillError, DistillError(.io, "mine"), "one process: the error itself, not wrapped")
        }
        var a = Fingerprint(), b = Fingerprint()
        a.add("weights 1"); b.add("weights 2")
        XCTAssertNotEqual(a.value, b.value)
    }

    /// `accumulate: 2` trains differently from one batch (BatchNorm sees half the images), resumes
    /// bit-exactly from a mid-epoch stop, and its checkpoint refuses other options.
    func testAccumulationResumesBitExactlyAndIsNotOneBatch() throws {
        let dir = try Fixture.temporaryDirectory("accumulate")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Fixture.store(count: 48, in: dir)
        let views = ViewSource.recipe(OnlineAndViewsTests.mixRecipe, seed: 5)
        var options = Fixture.options(epochs: 2)
        options.accumulate = 2
        func trainer(_ name: String, _ options: TrainOptions, resume: Bool = false) throws -> Trainer {
            try Trainer(store: store, views: views, targets: .hardLabels, configuration: Fixture.tinyConfig(), options: options,
                        runDirectory: dir + "/" + name, resume: resume)
        }
        let whole = try trainer("whole", options).run()
        XCTAssertEqual(whole.accumulate, 2)
        let first = try trainer("stopped", options)
        let stop = StopRequest()
        let stopAt = first.stepsPerEpoch + 1
        XCTAssertTrue(try first.run(stop: stop) { p in if p.epoch * p.stepsPerEpoch + p.stepInEpoch == stopAt { stop.request() } }.interrupted)
        let resumed = try trainer("stopped", options, resume: true).run()
        XCTAssertEqual(whole.rows.map(\.loss), resumed.rows.map(\.loss))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/whole/model.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: dir + "/stopped/model.safetensors")))
        var plain = options
        plain.accumulate = 1
        let oneBatch = try trainer("plain", plain).run()
        XCTAssertNotEqual(whole.rows.map(\.loss), oneBatch.rows.map(\.loss))
        XCTAssertThrowsError(try trainer("stopped", plain, resume: true)) { error in
            XCTAssertTrue("\(error)".contains("[mismatch] the checkpoint was trained with other options"), "\(error)")
        }
        options.accumulate = 3  // 8 images do not split into 3 micro-batches
        XCTAssertThrowsError(try trainer("three", options)) { error in
            XCTAssertTrue("\(error)".contains("does not split into 1 rank × 3 micro-batches"), "\(error)")
        }
    }
}
