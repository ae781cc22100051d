import XCTest
import ShardFormat
@testable import Augment

/// The sampler is a pure function of (run seed, epoch, sample id): same inputs, same parameters, in any
/// order and from any thread; different inputs, different parameters.
final class SamplerDeterminismTests: XCTestCase {
    static let sizes: @Sendable (UInt32) -> (width: Int, height: Int) = { id in (300 + Int(id % 7) * 40, 200 + Int(id % 5) * 50) }

    func sampler(seed: UInt64 = 42, mix: Bool = true) throws -> AugmentationSampler {
        try AugmentationSampler(runSeed: seed, recipe: mix ? .tinyViTWithMix : .tinyViT, outputWidth: 224, outputHeight: 224)
    }

    static func draw(_ s: AugmentationSampler, epoch: UInt32, sample: UInt32) throws -> AugmentationParameters {
        let size = Self.sizes(sample)
        return try s.parameters(epoch: epoch, sample: sample, sourceWidth: size.width, sourceHeight: size.height,
                                sampleCount: 1000, sourceSize: Self.sizes)
    }

    func testSameInputsGiveSameParametersInAnyOrder() throws {
        let s = try sampler()
        let forward = try (0..<200).map { try Self.draw(s, epoch: 3, sample: UInt32($0)) }
        let backward = try (0..<200).reversed().map { try Self.draw(s, epoch: 3, sample: UInt32($0)) }
        XCTAssertEqual(forward, Array(backward.reversed()))
        // A fresh sampler (a restarted run) reproduces them.
        let restarted = try sampler()
        XCTAssertEqual(try Self.draw(restarted, epoch: 3, sample: 117), forward[117])
    }

    func testWorkersOnOtherThreadsAgree() throws {
        let s = try sampler()
        let expected = try (0..<64).map { try Self.draw(s, epoch: 1, sample: UInt32($0)) }
        // Each worker writes only its own slot.
        nonisolated(unsafe) let results = UnsafeMutableBufferPointer<AugmentationParameters?>.allocate(capacity: 64)
        results.initialize(repeating: nil)
        defer { results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            results[63 - i] = try? Self.draw(s, epoch: 1, sample: UInt32(63 - i))
        }
        XCTAssertEqual(Array(results), expected.map { Optional($0) })
    }

    func testSeedEpochAndSampleAllMatter() throws {
        let s = try sampler()
        let base = try Self.draw(s, epoch: 0, sample: 5)
        XCTAssertNotEqual(try Self.draw(s, epoch: 1, sample: 5), base)
        XCTAssertNotEqual(try Self.draw(s, epoch: 0, sample: 6), base)
        XCTAssertNotEqual(try Self.draw(try sampler(seed: 43), epoch: 0, sample: 5), base)
        // Views of 100 samples are all different (a crop box alone has ~10^8 values).
        let views = try Set((0..<100).map { try s.view(epoch: 0, sample: UInt32($0), sourceWidth: 500, sourceHeight: 375) })
        XCTAssertEqual(views.count, 100)
    }

    /// Turning mixing on does not change a sample's own view (each decision has its own stream).
    func testMixDoesNotShiftTheViewStreams() throws {
        let withMix = try sampler(mix: true)
        let without = try sampler(mix: false)
        for sample in UInt32(0)..<50 {
            XCTAssertEqual(try Self.draw(withMix, epoch: 2, sample: sample).view, try Self.draw(without, epoch: 2, sample: sample).view)
        }
    }

    /// The partner view in a mix record is the partner's own view of that epoch.
    func testPartnerViewIsThePartnersOwnView() throws {
        let s = try sampler()
        var mixed = 0
        for sample in UInt32(0)..<100 {
            let p = try Self.draw(s, epoch: 4, sample: sample)
            guard let mix = p.mix else { continue }
            mixed += 1
            XCTAssertLessThan(mix.partner, 1000)
            let size = Self.sizes(mix.partner)
            XCTAssertEqual(mix.partnerView, try s.view(epoch: 4, sample: mix.partner, sourceWidth: size.width, sourceHeight: size.height))
        }
        XCTAssertGreaterThan(mixed, 90)  // prob 1.0, minus the rare empty cutmix box
    }

    func testCounterBasedGeneratorIsAPureFunction() {
        var a = SampleRandom(seed: 1, epoch: 2, sample: 3, stream: 4)
        let first = (0..<10).map { _ in a.next() }
        var b = SampleRandom(key: SampleRandom.key(seed: 1, epoch: 2, sample: 3, stream: 4))
        XCTAssertEqual((0..<10).map { _ in b.next() }, first)
        XCTAssertEqual(Set(first).count, 10)
        // Known value: pins the generator so a change to it (which would change every run) is noticed.
        XCTAssertEqual(SampleRandom.mix64(0), 0)
        XCTAssertEqual(SampleRandom.mix64(SampleRandom.golden), 0xE220_A839_7B1D_CDAF)
    }

    func testRejectsSizesOffTheGrid() throws {
        XCTAssertThrowsError(try AugmentationSampler(runSeed: 0, outputWidth: 0, outputHeight: 224))
        XCTAssertThrowsError(try AugmentationSampler(runSeed: 0, outputWidth: 224, outputHeight: 70000))
        let s = try sampler()
        XCTAssertThrowsError(try s.view(epoch: 0, sample: 0, sourceWidth: 70000, sourceHeight: 10))
        XCTAssertThrowsError(try s.view(epoch: 0, sample: 0, sourceWidth: 10, sourceHeight: 0))
    }
}
