import Foundation
import XCTest
import ShardFormat
@testable import Augment

/// Throughput of the sampler and of replay for TinyViT's recipe (224 output from a 500x375 source). The
/// numbers only mean something in a release build:
/// `swift build -c release --build-tests -Xswiftc -enable-testing` then
/// `swift test -c release --skip-build -Xswiftc -enable-testing --filter SpeedTests`.
/// Rates are per thread of CPU time (the machine is shared, so wall time depends on the load); the
/// wall-clock rate is printed beside them.
final class SpeedTests: XCTestCase {
    /// Runs `body` repeatedly for about `budget` seconds of thread CPU time; returns (per CPU second,
    /// per wall second).
    func rate(_ budget: Double, _ body: (Int) throws -> Void) rethrows -> (cpu: Double, wall: Double) {
        func cpuNow() -> Double {
            var t = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
            return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
        }
        let cpuStart = cpuNow(), wallStart = Date()
        var count = 0
        while cpuNow() - cpuStart < budget {
            try body(count)
            count += 1
        }
        return (Double(count) / (cpuNow() - cpuStart), Double(count) / Date().timeIntervalSince(wallStart))
    }

    func testSamplerAndApplySpeed() throws {
        let source = syntheticImage(width: 500, height: 375, seed: 11)
        let sampler = try AugmentationSampler(runSeed: 1, recipe: .tinyViTWithMix, outputWidth: 224, outputHeight: 224)
        let augmenter = Augmenter(outputWidth: 224, outputHeight: 224)
        func draw(_ i: Int) throws -> AugmentationParameters {
            try sampler.parameters(epoch: 0, sample: UInt32(i), sourceWidth: 500, sourceHeight: 375, sampleCount: 1_000_000,
                                   sourceSize: { _ in (500, 375) })
        }
        // Seconds of CPU per measurement: short in debug builds, where the numbers mean nothing anyway.
        let budget = _isDebugAssertConfiguration() ? 0.1 : 1.0
        let draws = try rate(budget / 4) { _ = try draw($0) }
        // One view (crop + flip + ops + erase), the unit of work of the teacher pass.
        let views = try rate(budget) { _ = try augmenter.render(try draw($0).view, source: source) }
        // A whole record with its mix (two views rendered per image), uint8 and normalised float.
        let mixed = try rate(budget) { _ = try augmenter.render(try draw($0), source: source, partner: source) }
        var floats = [Float](repeating: 0, count: 3 * 224 * 224)
        let normalized = try rate(budget) { i in
            let p = try draw(i)
            try floats.withUnsafeMutableBufferPointer { try augmenter.renderNormalized(p, source: source, partner: source, into: $0) }
        }
        print(String(format: "SPEED per CPU-second (wall): sampler %.0f (%.0f) draws/s; view %.0f (%.0f) img/s; record with mix %.0f (%.0f) img/s; normalized float with mix %.0f (%.0f) img/s; 500x375 -> 224, one thread",
                     draws.cpu, draws.wall, views.cpu, views.wall, mixed.cpu, mixed.wall, normalized.cpu, normalized.wall))
        XCTAssertGreaterThan(views.cpu, 1)
    }
}
