import TinyShardBase
import Foundation
import Tensor

// # TinyViT in Swift
//
// A CPU implementation of timm's `TinyVit` (forward, backward, AdamW) that matches timm's numbers.
//
// Design
// - Activations are channels-last, `(N, H, W, C)`, from the patch embed to the head: a 1×1 conv and
//   every Linear are then one GEMM over `N·H·W` rows, LayerNorm/BatchNorm/GELU are contiguous SIMD
//   loops, and the transformer blocks' `(B, H, W, C)` token layout needs no transposes. Only the
//   input image (`NCHW`, PyTorch's layout) and its gradient are transposed.
// - Every matrix product runs on oneDNN's SGEMM (Debian `libdnnl`): Linear and 1×1 convs (one GEMM
//   over all `N·H·W` rows), the two dense 3×3 stride-2 patch-embed convs (im2col + GEMM; oneDNN's
//   direct convolution picks a reference kernel for plain NHWC/OIHW), and the per-window attention
//   products. Depthwise convs, BatchNorm, LayerNorm, GELU (erf form), softmax and AdamW are
//   8-wide C kernels (`CTensorKernels`, AVX2 or portable, chosen at run time) split across cores with
//   `DispatchQueue.concurrentPerform`; oneDNN keeps its own OpenMP team (see `Parallel`).
// - BatchNorm is fused with whatever follows it in timm (GELU, or residual add + drop path +
//   GELU): its forward stores only the conv output and the output, its backward recomputes the
//   pre-activation. Every op is a forward/backward pair; layers keep what their backward needs
//   (only when `recordsGradients`) and release it during the backward, so peak memory is one
//   step's activations. Buffers come from a size-keyed pool, so steady-state steps do not allocate.
// - Parameters carry timm's `state_dict` names; checkpoints are safetensors files that load in
//   timm (`load_state_dict`) and vice versa (see `Checkpoint.swift`).
// - Windowed attention pads with zero tokens exactly as timm does (they pass through the attention
//   LayerNorm and are not masked); attention biases are `(heads, w²)` tables indexed by |Δy|·w+|Δx|.
//   Since every padded token projects to the same `qkv(LayerNorm(0))` row and padded queries are
//   cropped, LayerNorm/qkv/proj run on real tokens only and windows are gathered inside the
//   attention kernel: same numbers, up to 4× less work at resolutions that are not multiples of
//   the windows (e.g. stage 2 at 112 px: 7×7 tokens in a 14×14 window).
// - Timing: `TinyViTBenchmark.run(configuration:batch:resolution:inference:)` times train steps
//   or inference and reports img/s, CPU time, peak RSS and the per-op time split (`OpProfiler`).
//
// Typical use
// ```swift
// let model = try TinyViT(.tiny5M())
// try model.loadStateDict(SafeTensors(contentsOf: url))
// let logits = try model.forward(images, context: ForwardContext(training: false, recordsGradients: false))
// let step = try model.trainStep(images: x, targets: t, optimizer: optimizer)   // forward + soft CE + backward + AdamW
// ```

/// timm's `TinyVit`: patch embed, an MBConv stage, transformer stages with patch merging, and a
/// pooled LayerNorm-Linear head.
public final class TinyViT: ParameterContainer {
    /// The architecture the model was built from.
    public let configuration: TinyViTConfiguration
    /// `patch_embed`: the image to 1/4 resolution.
    public let patchEmbed: PatchEmbed
    /// `stages.0.blocks.*`.
    public let convBlocks: [MBConv]
    /// `stages.{i}.downsample` for i ≥ 1 (index 0 is stage 1's).
    public let downsamples: [PatchMerging]
    /// `stages.{i}.blocks.*` for i ≥ 1 (index 0 is stage 1's).
    public let transformerStages: [[TinyViTBlock]]
    /// `head`: pooling, LayerNorm and the classifier.
    public let head: ClassifierHead

    private var inputShape: [Int]?

    /// Builds a model with timm's parameter shapes; weights are zero/identity until loaded or
    /// initialised with ``initializeWeights(seed:)``.
    public init(_ configuration: TinyViTConfiguration) throws {
        try configuration.validate()
        self.configuration = configuration
        let c = configuration
        patchEmbed = PatchEmbed(inChannels: c.inChannels, outChannels: c.embedDims[0])
        let total = c.depths.reduce(0, +)
        let dpr: [Float] = (0..<total).map { total > 1 ? c.dropPathRate * Float($0) / Float(total - 1) : 0 }
        var blockIndex = 0
        convBlocks = (0..<c.depths[0]).map { i in
            defer { blockIndex += 1 }
            return MBConv(prefix: "stages.0.blocks.\(i)", channels: c.embedDims[0], expandRatio: c.mbconvExpandRatio,
                          dropPathRate: dpr[blockIndex])
        }
        var downs: [PatchMerging] = []
        var stages: [[TinyViTBlock]] = []
        for s in 1..<c.depths.count {
            downs.append(PatchMerging(prefix: "stages.\(s).downsample", inChannels: c.embedDims[s - 1], outChannels: c.embedDims[s]))
            stages.append((0..<c.depths[s]).map { i in
                defer { blockIndex += 1 }
                return TinyViTBlock(prefix: "stages.\(s).blocks.\(i)", channels: c.embedDims[s], heads: c.numHeads[s],
                                    window: c.windowSizes[s], mlpRatio: c.mlpRatio, localConvSize: c.localConvSize,
                                    dropPathRate: dpr[blockIndex])
            })
        }
        downsamples = downs
        transformerStages = stages
        head = ClassifierHead(channels: c.embedDims.last!, classes: c.numClasses)
    }

    /// Every parameter, in timm's `named_parameters()` order.
    public var parameters: [Parameter] {
        var p = patchEmbed.parameters + convBlocks.flatMap { $0.parameters }
        for (d, blocks) in zip(downsamples, transformerStages) { p += d.parameters + blocks.flatMap { $0.parameters } }
        return p + head.parameters
    }

    /// BatchNorm running statistics.
    public var buffers: [Buffer] {
        var b = patchEmbed.buffers + convBlocks.flatMap { $0.buffers }
        for (d, blocks) in zip(downsamples, transformerStages) { b += d.buffers + blocks.flatMap { $0.buffers } }
        return b
    }

    /// Every ConvNorm (for `num_batches_tracked`).
    var convNorms: [ConvNorm] {
        var c = [patchEmbed.conv1, patchEmbed.conv2] + convBlocks.flatMap { [$0.conv1, $0.conv2, $0.conv3] }
        for (d, blocks) in zip(downsamples, transformerStages) {
            c += [d.conv1, d.conv2, d.conv3] + blocks.map { $0.localConv }
        }
        return c
    }

    /// Number of trainable scalars.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// Logits `(N, classes)` for images `(N, in_chans, H, W)` (PyTorch layout).
    public func forward(_ images: Tensor, context ctx: ForwardContext) throws -> Tensor {
        let c = configuration
        guard images.shape.count == 4, images.shape[1] == c.inChannels, images.shape[0] > 0,
              images.shape[2] > 0, images.shape[3] > 0 else {
            throw TinyViTError.invalidInput("expected images (N, \(c.inChannels), H, W), got \(images.shape)")
        }
        let (N, H, W) = (images.shape[0], images.shape[2], images.shape[3])
        if ctx.training && N * ((H + 3) / 4) * ((W + 3) / 4) <= 1 {
            throw TinyViTError.invalidInput("BatchNorm in training mode needs more than one value per channel")
        }
        inputShape = images.shape
        var x = FeatureMap(OpProfiler.measure("layout") { Layout.nchwToNHWC(images) }, batch: N, height: H, width: W, channels: c.inChannels)
        x = patchEmbed.forward(x, ctx)
        ctx.recorder?("patch_embed", x.data)
        for block in convBlocks { x = block.forward(x, ctx) }
        ctx.recorder?("stages.0", x.data)
        for (s, (down, blocks)) in zip(downsamples, transformerStages).enumerated() {
            x = down.forward(x, ctx)
            ctx.recorder?("stages.\(s + 1).downsample", x.data)
            for (i, block) in blocks.enumerated() {
                x = block.forward(x, ctx)
                ctx.recorder?("stages.\(s + 1).blocks.\(i)", x.data)
            }
            ctx.recorder?("stages.\(s + 1)", x.data)
        }
        return OpProfiler.measure("head fwd") { head.forward(x, ctx) }
    }

    /// Backward from the logits' gradient through the last forward (which must have had
    /// `recordsGradients`). Writes every parameter's gradient; returns the input gradient
    /// `(N, in_chans, H, W)` when `needInputGradient`.
    @discardableResult
    public func backward(_ gradLogits: Tensor, needInputGradient: Bool = true) -> Tensor? {
        guard let shape = inputShape else { preconditionFailure("TinyViT.backward without a recorded forward") }
        var d = OpProfiler.measure("head bwd") { head.backward(gradLogits) }
        for (down, blocks) in zip(downsamples, transformerStages).reversed() {
            for block in blocks.reversed() { d = block.backward(d) }
            d = down.backward(d)
        }
        for block in convBlocks.reversed() { d = block.backward(d) }
        guard let dx = patchEmbed.backward(d, needInputGradient: needInputGradient) else { return nil }
        return OpProfiler.measure("layout") { Layout.nhwcToNCHW(dx.reshaped([shape[0], shape[2], shape[3], shape[1]])) }
    }

    /// Forward (training mode unless `training` is false), soft-target cross entropy and backward.
    /// `batchNormReducer`: synchronised BatchNorm across the processes of a data-parallel run.
    public func lossAndGradients(images: Tensor, targets: Tensor, training: Bool = true,
                                 needInputGradient: Bool = false,
                                 generator: any RandomNumberGenerator = SystemRandomNumberGenerator(),
                                 batchNormReducer: BatchNormReducer? = nil)
        throws -> (loss: Float, logits: Tensor, inputGradient: Tensor?) {
        let logits = try forward(images, context: ForwardContext(training: training, recordsGradients: true, generator: generator,
                                                                 batchNormReducer: batchNormReducer))
        guard targets.shape == logits.shape else {
            throw TinyViTError.invalidInput("targets \(targets.shape) do not match logits \(logits.shape)")
        }
        let (loss, dLogits) = OpProfiler.measure("loss") { SoftTargetCrossEntropy.lossAndGradient(logits: logits, target: targets) }
        let dx = backward(dLogits, needInputGradient: needInputGradient)
        return (loss, logits, dx)
    }

    /// One training step: forward in training mode, soft-target cross entropy, backward, AdamW.
    /// Returns the loss and the gradient norm before clipping.
    public func trainStep(images: Tensor, targets: Tensor, optimizer: AdamW,
                          generator: any RandomNumberGenerator = SystemRandomNumberGenerator()) throws -> (loss: Float, gradientNorm: Float) {
        let (loss, _, _) = try lossAndGradients(images: images, targets: targets, generator: generator)
        let norm = OpProfiler.measure("adamw") { optimizer.step(parameters) }
        return (loss, norm)
    }

    /// Gaussian initialisation in timm's spirit (Linear weights std 0.02, conv weights He-normal,
    /// BN/LN affine 1/0, attention biases 0), reproducible from `seed`.
    public func initializeWeights(seed: UInt64 = 0) {
        var rng = SplitMix64(seed: seed)
        for p in parameters {
            let t = p.value
            if p.name.hasSuffix("conv.weight") {
                let fanIn = t.count / t.shape[0]
                let std = (2 / Float(fanIn)).squareRoot()
                for i in 0..<t.count { t[flat: i] = std * rng.nextGaussian() }
            } else if t.shape.count == 2 && !p.name.contains("attention_biases") {
                for i in 0..<t.count { t[flat: i] = max(-0.04, min(0.04, 0.02 * rng.nextGaussian())) }
            } else if p.name.hasSuffix(".weight") {
                t.pointer.update(repeating: 1, count: t.count)
            } else {
                t.zero()
            }
        }
    }
}

/// A small, fast, seedable generator (SplitMix64) for reproducible initialisation and drop path.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    /// A generator whose whole stream is fixed by `seed`.
    public init(seed: UInt64) { state = seed }
    /// The next 64 random bits.
    public mutating func next() -> UInt64 { Mix64.next(&state) }
    /// A standard normal sample (Box–Muller).
    public mutating func nextGaussian() -> Float {
        let u1 = max(Double.random(in: 0..<1, using: &self), 1e-300), u2 = Double.random(in: 0..<1, using: &self)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}
