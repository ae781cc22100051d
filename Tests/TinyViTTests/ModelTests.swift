import Foundation
import XCTest
import Tensor
@testable import TinyViT

final class ModelTests: XCTestCase {
    /// Windows 5/3/4/2, 3 stages of attention, 37×45 input (no dimension a multiple of its window),
    /// 7 classes: forward/backward run, and a finite-difference check on parameters of every kind.
    func testCustomConfigFiniteDifferences() throws {
        try checkCustomConfig(dropPathRate: 0, modes: [false, true])
    }

    /// Same with stochastic depth active (fixed seed, so every probe sees the same masks).
    func testCustomConfigWithDropPathFiniteDifferences() throws {
        try checkCustomConfig(dropPathRate: 0.5, modes: [true])
    }

    private func checkCustomConfig(dropPathRate: Float, modes: [Bool]) throws {
        let config = TinyViTConfiguration(embedDims: [8, 16, 24, 16], depths: [1, 2, 1, 1], numHeads: [1, 2, 3, 2],
                                          windowSizes: [5, 3, 4, 2], numClasses: 7, inChannels: 2, mlpRatio: 2,
                                          dropPathRate: dropPathRate, imageSize: 37)
        let model = try TinyViT(config)
        model.initializeWeights(seed: 3)
        var rng = SplitMix64(seed: 9)
        for p in model.parameters where p.name.contains("bn.") || p.name.contains("norm.") || p.name.contains("attention_biases") {
            for i in 0..<p.value.count { p.value[flat: i] += 0.3 * rng.nextGaussian() }
        }
        let x = Tensor(uninitialized: [3, 2, 37, 45])
        for i in 0..<x.count { x[flat: i] = rng.nextGaussian() }
        let t = Tensor(uninitialized: [3, 7])
        for n in 0..<3 {
            var s: Float = 0
            for c in 0..<7 { t[flat: n * 7 + c] = Float.random(in: 0.1..<1, using: &rng); s += t[flat: n * 7 + c] }
            for c in 0..<7 { t[flat: n * 7 + c] /= s }
        }
        for training in modes {
            let snapshot = model.buffers.map { $0.value.copy() }
            func restore() { for (b, s) in zip(model.buffers, snapshot) { b.value.assign(from: s) } }
            func loss() throws -> Double {
                restore()
                let logits = try model.forward(x, context: ForwardContext(training: training, recordsGradients: false,
                                                                          generator: SplitMix64(seed: 77)))
                return Double(SoftTargetCrossEntropy.lossAndGradient(logits: logits, target: t).loss)
            }
            restore()
            let (_, logits, dx) = try model.lossAndGradients(images: x, targets: t, training: training, needInputGradient: true,
                                                             generator: SplitMix64(seed: 77))
            XCTAssertEqual(logits.shape, [3, 7])
            let names = ["patch_embed.conv1.conv.weight", "stages.0.blocks.0.conv2.bn.weight", "stages.1.downsample.conv2.conv.weight",
                         "stages.1.blocks.1.attn.attention_biases", "stages.1.blocks.0.attn.qkv.weight", "stages.2.blocks.0.attn.norm.bias",
                         "stages.2.blocks.0.local_conv.conv.weight", "stages.3.blocks.0.mlp.fc1.weight", "head.fc.bias", "head.norm.weight"]
            let byName = Dictionary(uniqueKeysWithValues: model.parameters.map { ($0.name, $0) })
            let h: Float = 2e-3
            var checks: [(String, Tensor, Tensor)] = names.map { (byName[$0]!.name, byName[$0]!.value, byName[$0]!.gradient.copy()) }
            checks.append(("input", x, dx!))
            for (name, value, grad) in checks {
                let scale = max(grad.maxAbs(), 1e-4)
                for k in 0..<2 {
                    let i = (k * 7919 + 13) % value.count
                    let saved = value[flat: i]
                    value[flat: i] = saved + h; let lp = try loss()
                    value[flat: i] = saved - h; let lm = try loss()
                    value[flat: i] = saved
                    let numeric = Float((lp - lm) / Double(2 * h))
                    XCTAssertEqual(numeric, grad[flat: i], accuracy: 2e-2 * scale + 2e-4, "\(name)[\(i)] training=\(training)")
                }
            }
            restore()
        }
    }

    /// A few AdamW train steps (train-mode BatchNorm, drop path, clipping, layer decay) fit a tiny batch.
    func testTrainStepsReduceTheLoss() throws {
        let config = TinyViTConfiguration(embedDims: [8, 16], depths: [1, 1], numHeads: [1, 2], windowSizes: [7, 3],
                                          numClasses: 3, dropPathRate: 0.1, imageSize: 24)
        let model = try TinyViT(config)
        model.initializeWeights(seed: 5)
        model.setLayerLearningRateDecay(0.9)
        var rng = SplitMix64(seed: 11)
        let x = Tensor(uninitialized: [6, 3, 24, 24])
        for i in 0..<x.count { x[flat: i] = rng.nextGaussian() }
        let t = Tensor(zeros: [6, 3])
        for n in 0..<6 { t[flat: n * 3 + n % 3] = 1 }
        let optimizer = AdamW(learningRate: 3e-3, weightDecay: 0.05, maxGradientNorm: 5)
        var losses: [Float] = []
        for step in 0..<30 {
            losses.append(try model.trainStep(images: x, targets: t, optimizer: optimizer, generator: SplitMix64(seed: UInt64(step))).loss)
        }
        XCTAssertTrue(losses.allSatisfy { $0.isFinite })
        XCTAssertLessThan(losses.suffix(3).reduce(0, +) / 3, 0.5 * losses[0], "losses \(losses)")
        XCTAssertEqual(optimizer.stepCount, 30)
        XCTAssertEqual(model.convNorms[0].batchesTracked, 30)
    }

    func testParameterCountsAndMACs() throws {
        XCTAssertEqual(TinyViTConfiguration.tiny5M().parameterCount, 5_392_764)
        XCTAssertEqual(try TinyViT(.tiny5M()).parameterCount, 5_392_764)
        XCTAssertEqual(try TinyViT(.tiny11M()).parameterCount, TinyViTConfiguration.tiny11M().parameterCount)
        XCTAssertEqual(try TinyViT(.tiny21M()).parameterCount, TinyViTConfiguration.tiny21M().parameterCount)
        let macs = TinyViTConfiguration.tiny5M().multiplyAccumulates()
        print("params 5M/11M/21M:", TinyViTConfiguration.tiny5M().parameterCount, TinyViTConfiguration.tiny11M().parameterCount,
              TinyViTConfiguration.tiny21M().parameterCount, "MACs:", macs, TinyViTConfiguration.tiny11M().multiplyAccumulates(),
              TinyViTConfiguration.tiny21M().multiplyAccumulates())
        XCTAssertEqual(Double(macs) / 1e9, 1.26, accuracy: 0.03)
    }

    func testCheckpointRoundTripAndErrors() throws {
        let config = TinyViTConfiguration(embedDims: [8, 16], depths: [1, 1], numHeads: [1, 2], windowSizes: [7, 3], numClasses: 4)
        let a = try TinyViT(config)
        a.initializeWeights(seed: 1)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tinyvit-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try a.save(to: url)
        let b = try TinyViT(config)
        try b.load(contentsOf: url)
        for (p, q) in zip(a.parameters, b.parameters) { XCTAssertEqual(p.value.toArray(), q.value.toArray(), p.name) }
        var st = try SafeTensors(contentsOf: url)
        XCTAssertEqual(st.integers["patch_embed.conv1.bn.num_batches_tracked"]?.values, [0])
        st.tensors["head.fc.weight"] = Tensor(zeros: [5, 16])
        XCTAssertThrowsError(try b.loadStateDict(st, source: "x.safetensors")) {
            XCTAssertEqual($0 as? TinyViTError, .shapeMismatch(key: "head.fc.weight", expected: [4, 16], found: [5, 16], file: "x.safetensors"))
        }
        st.tensors["head.fc.weight"] = nil
        XCTAssertThrowsError(try b.loadStateDict(st, source: "x.safetensors")) {
            XCTAssertEqual($0 as? TinyViTError, .missingKey(key: "head.fc.weight", file: "x.safetensors"))
        }
        XCTAssertThrowsError(try TinyViT(TinyViTConfiguration(embedDims: [8, 15], depths: [1, 1], numHeads: [1, 2], windowSizes: [7, 7])))
        XCTAssertThrowsError(try a.forward(Tensor(zeros: [1, 4, 8, 8]), context: ForwardContext(training: false, recordsGradients: false)))
        let json = #"{"embed_dims":[8,16],"depths":[1,1],"num_heads":[1,2],"window_sizes":[7,3],"num_classes":4,"in_chans":3,"mlp_ratio":4}"#
        XCTAssertEqual(try JSONDecoder().decode(TinyViTConfiguration.self, from: Data(json.utf8)), config)
        XCTAssertEqual(try TinyViTConfiguration(json: Data(json.utf8)), config)
        // A config file is read under the project's JSON grammar: a duplicate key is not "the first one wins".
        let duplicate = json.replacingOccurrences(of: #""num_classes":4"#, with: #""num_classes":4,"num_classes":1000"#)
        XCTAssertThrowsError(try TinyViTConfiguration(json: Data(duplicate.utf8))) {
            XCTAssertTrue(String(describing: $0).contains("not valid JSON"), "\($0)")
        }
    }

    func testLayerwiseLearningRateDecayAndWeightDecayGroups() throws {
        let model = try TinyViT(.tiny5M(numClasses: 10))
        model.setLayerLearningRateDecay(0.5)
        let p = Dictionary(uniqueKeysWithValues: model.parameters.map { ($0.name, $0) })
        func s(_ k: Int) -> Float { pow(0.5, Float(11 - k)) }
        XCTAssertEqual(p["patch_embed.conv1.conv.weight"]!.learningRateScale, s(0))
        XCTAssertEqual(p["stages.0.blocks.1.conv3.bn.bias"]!.learningRateScale, s(1))
        XCTAssertEqual(p["stages.1.downsample.conv1.conv.weight"]!.learningRateScale, s(1))
        XCTAssertEqual(p["stages.1.blocks.0.attn.qkv.weight"]!.learningRateScale, s(2))
        XCTAssertEqual(p["stages.2.downsample.conv1.conv.weight"]!.learningRateScale, s(3))
        XCTAssertEqual(p["stages.3.blocks.1.mlp.fc2.weight"]!.learningRateScale, s(11))
        XCTAssertEqual(p["head.fc.weight"]!.learningRateScale, 1)
        XCTAssertTrue(p["head.fc.weight"]!.usesWeightDecay)
        XCTAssertTrue(p["stages.0.blocks.0.conv1.conv.weight"]!.usesWeightDecay)
        XCTAssertFalse(p["head.fc.bias"]!.usesWeightDecay)
        XCTAssertFalse(p["stages.1.blocks.0.attn.attention_biases"]!.usesWeightDecay)
        XCTAssertFalse(p["stages.1.blocks.0.attn.norm.weight"]!.usesWeightDecay)
    }
}
