import Foundation
import XCTest
@testable import Tensor

/// Two "processes" as two threads, each holding half a batch and summing BatchNorm statistics through a
/// real two-party reducer: their outputs, running statistics and input gradients must be the full
/// batch's, and their γ/β gradients must add up to the full batch's (what `SyncBatchNorm` + DDP give).
final class SyncBatchNormTests: XCTestCase {
    /// Sums vectors of two threads: each deposits its vector, waits for the other's, and both compute
    /// a + b in the same order (so both get bit-identical results, as an allreduce must).
    final class TwoThreadReducer: @unchecked Sendable {
        private let lock = NSCondition()
        private var deposited: [[Double]?] = [nil, nil]
        private var taken = 0

        final class Side: BatchNormReducer, @unchecked Sendable {
            let owner: TwoThreadReducer
            let index: Int
            private(set) var calls = 0
            init(_ owner: TwoThreadReducer, _ index: Int) { self.owner = owner; self.index = index }
            func sum(_ values: UnsafeMutableBufferPointer<Double>) {
                calls += 1
                let total = owner.exchange(Array(values), from: index)
                for i in 0..<values.count { values[i] = total[i] }
            }
        }

        func exchange(_ mine: [Double], from index: Int) -> [Double] {
            lock.lock()
            defer { lock.unlock() }
            while deposited[index] != nil { lock.wait() }  // the previous exchange is still being read
            deposited[index] = mine
            lock.broadcast()
            while deposited[1 - index] == nil { lock.wait() }
            let total = zip(deposited[0]!, deposited[1]!).map { $0 + $1 }
            taken += 1
            if taken == 2 { deposited = [nil, nil]; taken = 0; lock.broadcast() }  // both read: the next round may start
            return total
        }
    }

    typealias Outcome = (out: [Float], dx: [Float], dres: [Float], dg: [Float], db: [Float], mean: [Float], variance: [Float])

    /// One batch of channels-last data with a residual, drop-path scales and an output gradient; `run`
    /// does BatchNorm(+residual, GELU) forward and backward on some of its samples.
    final class Case: @unchecked Sendable {
        let (n, h, w, c) = (6, 3, 2, 11)
        let x: [Float], dy: [Float], residual: [Float]
        let gamma: Tensor, beta: Tensor
        let scale: [Float] = [1.25, 0, 1.25, 1.25, 0, 1.25]  // drop path scales per sample

        init() {
            var rng = TestRNG(9)
            func random(_ count: Int, scale: Float = 1, shift: Float = 0) -> [Float] {
                (0..<count).map { _ in rng.uniformSymmetric() * 1.7 * scale + shift }
            }
            x = random(n * h * w * c, scale: 2, shift: 0.7)
            dy = random(n * h * w * c, scale: 0.3)
            gamma = try! Tensor(shape: [c], values: random(c, scale: 0.2, shift: 1))
            beta = try! Tensor(shape: [c], values: random(c, scale: 0.1))
            residual = random(n * h * w * c)
        }

        func run(rows: Range<Int>, reducer: BatchNormReducer?) -> Outcome {
            let per = h * w * c
            let part = (rows.lowerBound * per)..<(rows.upperBound * per)
            let input = try! Tensor(shape: [rows.count, h, w, c], values: Array(x[part]))
            let res = try! Tensor(shape: [rows.count, h, w, c], values: Array(residual[part]))
            let grad = try! Tensor(shape: [rows.count, h, w, c], values: Array(dy[part]))
            let mean = Tensor(zeros: [c]), variance = Tensor(repeating: 1, shape: [c])
            let s = Array(scale[rows])
            let (out, stats) = BatchNorm.forward(input, gamma: gamma, beta: beta, runningMean: mean, runningVar: variance, training: true,
                                                 residual: res, branchScale: s, gelu: true, reducer: reducer)
            let dg = Tensor(zeros: [c]), db = Tensor(zeros: [c])
            let (dx, dres) = BatchNorm.backward(grad, input: input, statistics: stats, gamma: gamma, beta: beta, gradGamma: dg, gradBeta: db,
                                                residual: res, branchScale: s, gelu: true, reducer: reducer)
            return (out.toArray(), dx.toArray(), dres!.toArray(), dg.toArray(), db.toArray(), mean.toArray(), variance.toArray())
        }
    }

    func testTwoHalvesWithSummedStatisticsAreTheWholeBatch() {
        let batch = Case()
        let n = batch.n
        let whole = batch.run(rows: 0..<n, reducer: nil)
        let pair = TwoThreadReducer()
        let sides = [TwoThreadReducer.Side(pair, 0), TwoThreadReducer.Side(pair, 1)]
        final class Halves: @unchecked Sendable {
            private let lock = NSLock()
            private var stored: [Outcome?] = [nil, nil]
            func set(_ side: Int, _ outcome: Outcome) { lock.lock(); stored[side] = outcome; lock.unlock() }
            var value: [Outcome?] { lock.lock(); defer { lock.unlock() }; return stored }
        }
        let halves = Halves()
        let group = DispatchGroup()
        for side in 0..<2 {
            group.enter()
            Thread.detachNewThread {
                halves.set(side, batch.run(rows: side == 0 ? 0..<(n / 2) : (n / 2)..<n, reducer: sides[side]))
                group.leave()
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        let halvesValue = halves.value
        guard let a = halvesValue[0], let b = halvesValue[1] else { return XCTFail("a half did not finish") }
        XCTAssertEqual(sides.map(\.calls), [3, 3], "forward: count and sums, then centred squares; backward: one sum")
        func close(_ u: [Float], _ v: [Float], _ what: String, tolerance: Float = 2e-5) {
            XCTAssertEqual(u.count, v.count, what)
            let worst = zip(u, v).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, tolerance, what)
        }
        close(a.out + b.out, whole.out, "output")
        close(a.dx + b.dx, whole.dx, "input gradient")
        close(a.dres + b.dres, whole.dres, "residual gradient")
        close(zip(a.dg, b.dg).map { $0 + $1 }, whole.dg, "γ gradient: the halves' own sums add up")
        close(zip(a.db, b.db).map { $0 + $1 }, whole.db, "β gradient")
        close(a.mean, whole.mean, "running mean")
        close(a.variance, whole.variance, "running variance (unbiased over the global count)")
        XCTAssertEqual(a.mean, b.mean, "both sides hold the same running statistics")
        XCTAssertEqual(a.variance, b.variance)
        // Without the reducer, a half normalises with its own statistics: not the whole batch's.
        let alone = batch.run(rows: 0..<(n / 2), reducer: nil)
        XCTAssertGreaterThan(zip(alone.out, whole.out.prefix(alone.out.count)).map { abs($0 - $1) }.max() ?? 0, 1e-3)
    }
}
