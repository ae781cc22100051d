import Foundation
import XCTest
import Tensor
@testable import TinyViT

/// Parity against timm 1.0.31 fixtures (see ../shared/fixtures/README.md).
final class ParityTests: XCTestCase {
    /// Reference gradients whose largest magnitude is below this are analytically zero.
    static let zeroGradient: Float = 1e-6

    static let smallConfig = TinyViTConfiguration(embedDims: [16, 32, 48, 64], depths: [1, 1, 1, 1], numHeads: [1, 2, 3, 4],
                                                  windowSizes: [7, 7, 14, 7], numClasses: 10)

    func testFiveMillionEvalLogitsAndActivations() throws {
        let dir = try Fixtures.require()
        let model = try TinyViT(.tiny5M())
        XCTAssertEqual(model.parameterCount, 5_392_764)
        let file = try SafeTensors(contentsOf: dir.appendingPathComponent("tiny_vit_5m.safetensors"))
        try model.loadStateDict(file, source: "tiny_vit_5m.safetensors")
        // Our state_dict is timm's: same 296 keys, shapes, dtypes (num_batches_tracked as I64) and values.
        let saved = try SafeTensors(data: model.stateDict().serialized())
        XCTAssertEqual(Set(saved.tensors.keys), Set(file.tensors.keys))
        XCTAssertEqual(Set(saved.integers.keys), Set(file.integers.keys))
        XCTAssertEqual(saved.tensors.count + saved.integers.count, 296)
        for (k, t) in file.tensors { XCTAssertEqual(saved.tensors[k]?.shape, t.shape, k); XCTAssertEqual(saved.tensors[k]?.toArray(), t.toArray(), k) }
        for (k, v) in file.integers { XCTAssertEqual(saved.integers[k]?.values, v.values, k); XCTAssertEqual(saved.integers[k]?.shape, v.shape, k) }
        let input = try NPY.read(dir.appendingPathComponent("input.npy"))
        var acts: [String: Tensor] = [:]
        let ctx = ForwardContext(training: false, recordsGradients: false, recorder: { acts[$0] = $1 })
        let logits = try model.forward(input, context: ctx)
        let ref = try NPY.read(dir.appendingPathComponent("logits.npy"))
        let diff = Fixtures.maxAbsDiff(logits, ref)
        print("5M eval logits max abs diff: \(diff)")
        XCTAssertLessThanOrEqual(diff, 1e-4)
        let files: [(String, String, Bool)] = [("patch_embed", "act_patch_embed", true), ("stages.0", "act_stages_0", true),
            ("stages.1.downsample", "act_stages_1_downsample", true), ("stages.1.blocks.0", "act_stages_1_blocks_0", false),
            ("stages.1", "act_stages_1", true), ("stages.2", "act_stages_2", true), ("stages.3", "act_stages_3", true),
            ("head.norm", "act_head_norm", false)]
        for (name, file, isNCHW) in files {
            let r = try NPY.read(dir.appendingPathComponent(file + ".npy"))
            guard var mine = acts[name] else { XCTFail("no activation \(name)"); continue }
            if isNCHW { mine = Layout.nhwcToNCHW(mine.reshaped([r.shape[0], r.shape[2], r.shape[3], r.shape[1]])) }
            let d = Fixtures.maxAbsDiff(mine, r)
            print("  activation \(name): max abs diff \(d) (ref max \(r.maxAbs()))")
            XCTAssertLessThanOrEqual(d, 1e-4, name)
        }
    }

    /// Small config, BatchNorm in eval mode: loss, logits, every gradient, input gradient.
    func testSmallEvalModeGradients() throws {
        let dir = try Fixtures.require()
        let model = try TinyViT(Self.smallConfig)
        try model.load(contentsOf: dir.appendingPathComponent("small_weights.safetensors"))
        let io = try SafeTensors(contentsOf: dir.appendingPathComponent("small_io.safetensors"))
        let grads = try SafeTensors(contentsOf: dir.appendingPathComponent("small_grads.safetensors"))
        let (loss, logits, dx) = try model.lossAndGradients(images: try io.tensor("input"), targets: try io.tensor("target"),
                                                            training: false, needInputGradient: true)
        try compare(model: model, loss: loss, logits: logits, inputGradient: dx!, io: io, grads: grads, gradPrefix: "", ioLossKey: "loss")
    }

    /// Small config, BatchNorm in train mode (batch statistics): gradients, running stats, AdamW step.
    func testSmallTrainModeGradientsRunningStatsAndAdamW() throws {
        let dir = try Fixtures.require()
        let st = try SafeTensors(contentsOf: dir.appendingPathComponent("small_train_mode.safetensors"))
        let model = try TinyViT(Self.smallConfig)
        try model.loadStateDict(st, prefix: "weight.", source: "small_train_mode.safetensors", allowUnexpectedKeys: true)
        let (loss, logits, dx) = try model.lossAndGradients(images: try st.tensor("input"), targets: try st.tensor("target"),
                                                            training: true, needInputGradient: true)
        try compare(model: model, loss: loss, logits: logits, inputGradient: dx!, io: st, grads: st, gradPrefix: "grad.", ioLossKey: "loss")
        var worst: Float = 0
        for b in model.buffers {
            let d = Fixtures.maxAbsDiff(b.value, try st.tensor("after_bn." + b.name))
            worst = max(worst, d)
            XCTAssertLessThanOrEqual(d, 1e-5, b.name)
        }
        for c in model.convNorms { XCTAssertEqual(c.batchesTracked, st.integers["after_bn." + c.prefix + ".bn.num_batches_tracked"]?.values.first) }
        print("train-mode running stats max abs diff: \(worst)")

        // AdamW on timm's gradients isolates the optimizer (1e-6).
        let stepped = try SafeTensors(contentsOf: dir.appendingPathComponent("small_adamw_step.safetensors"))
        let ref = try TinyViT(Self.smallConfig)
        try ref.loadStateDict(st, prefix: "weight.", source: "small_train_mode.safetensors", allowUnexpectedKeys: true)
        for p in ref.parameters { p.gradient.assign(from: try st.tensor("grad." + p.name)) }
        let opt = AdamW(learningRate: 1e-3, weightDecay: 0.05, maxGradientNorm: 5.0)
        let norm = opt.step(ref.parameters)
        let refNorm = try stepped.tensor("grad_total_norm")[flat: 0]
        XCTAssertEqual(norm, refNorm, accuracy: 1e-4 * refNorm)
        var worstStep: Float = 0
        for p in ref.parameters {
            let d = Fixtures.maxAbsDiff(p.value, try stepped.tensor("stepped." + p.name))
            worstStep = max(worstStep, d)
            XCTAssertLessThanOrEqual(d, 1e-6, p.name)
        }
        print("AdamW step (timm grads) max abs diff: \(worstStep); grad norm \(norm) vs \(refNorm)")
        // The same step on our own gradients, reported (sign-sensitive for near-zero gradients).
        let opt2 = AdamW(learningRate: 1e-3, weightDecay: 0.05, maxGradientNorm: 5.0)
        opt2.step(model.parameters)
        var worstOwn: (Float, String) = (0, "")
        for p in model.parameters where try st.tensor("grad." + p.name).maxAbs() >= Self.zeroGradient {
            let d = Fixtures.maxAbsDiff(p.value, try stepped.tensor("stepped." + p.name))
            if d > worstOwn.0 { worstOwn = (d, p.name) }
        }
        print("AdamW step (our grads, excluding analytically-zero gradients) max abs diff: \(worstOwn.0) (\(worstOwn.1))")
    }

    private func compare(model: TinyViT, loss: Float, logits: Tensor, inputGradient: Tensor, io: SafeTensors, grads: SafeTensors,
                         gradPrefix: String, ioLossKey: String) throws {
        let refLoss = try io.tensor(ioLossKey)[flat: 0]
        XCTAssertEqual(loss, refLoss, accuracy: 1e-4 * max(1, abs(refLoss)))
        let dl = Fixtures.maxAbsDiff(logits, try io.tensor("logits"))
        XCTAssertLessThanOrEqual(dl, 1e-4)
        var worst: (Float, String) = (0, "")
        for p in model.parameters {
            guard let ref = grads.tensors[gradPrefix + p.name] ?? grads.tensors["grad." + p.name] ?? grads.tensors[p.name] else {
                XCTFail("no reference gradient for \(p.name)"); continue
            }
            if ref.maxAbs() < Self.zeroGradient {
                // Analytically zero (a per-channel shift cancelled by a train-mode BatchNorm
                // downstream): timm's value is float noise; ours must be noise-sized too.
                XCTAssertLessThanOrEqual(p.gradient.maxAbs(), Self.zeroGradient, p.name)
                continue
            }
            let r = Fixtures.relativeDiff(p.gradient, ref)
            if r > worst.0 { worst = (r, p.name) }
            XCTAssertLessThanOrEqual(r, 1e-4, p.name)
        }
        let refDx = grads.tensors[gradPrefix + "input"] ?? grads.tensors["grad.input"] ?? grads.tensors["input"]
        let rx = Fixtures.relativeDiff(inputGradient, refDx!)
        XCTAssertLessThanOrEqual(rx, 1e-4, "input gradient")
        print("loss \(loss) vs \(refLoss); logits max abs diff \(dl); worst param grad rel diff \(worst.0) (\(worst.1)); input grad rel diff \(rx)")
    }
}
