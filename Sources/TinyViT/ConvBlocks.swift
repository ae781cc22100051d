import Tensor

/// timm's `PatchEmbed`: two 3×3 stride-2 ConvNorms with a GELU between (image → 1/4 resolution).
public final class PatchEmbed: ParameterContainer {
    /// The two ConvNorms (`patch_embed.conv1` to half the channels, `patch_embed.conv2`).
    public let conv1, conv2: ConvNorm
    /// A patch embedding from `inChannels` to `outChannels` (which should be even).
    public init(inChannels: Int, outChannels: Int) {
        conv1 = ConvNorm(prefix: "patch_embed.conv1", inChannels: inChannels, outChannels: outChannels / 2, kind: .dense(kernel: 3, stride: 2))
        conv2 = ConvNorm(prefix: "patch_embed.conv2", inChannels: outChannels / 2, outChannels: outChannels, kind: .dense(kernel: 3, stride: 2))
    }
    /// Both ConvNorms' weights and BatchNorm affine parameters.
    public var parameters: [Parameter] { conv1.parameters + conv2.parameters }
    /// Both ConvNorms' BatchNorm running statistics.
    public var buffers: [Buffer] { conv1.buffers + conv2.buffers }

    func forward(_ x: FeatureMap, _ ctx: ForwardContext) -> FeatureMap {
        conv2.forward(conv1.forward(x, ctx, gelu: true), ctx, gelu: false)
    }
    func backward(_ dy: Tensor, needInputGradient: Bool) -> Tensor? {
        conv1.backward(conv2.backward(dy).input!, needInputGradient: needInputGradient).input
    }
}

/// timm's `MBConv`: 1×1 expand + GELU, 3×3 depthwise + GELU, 1×1 project, drop path,
/// residual add, GELU.
public final class MBConv: ParameterContainer {
    /// The 1×1 expansion, the 3×3 depthwise and the 1×1 projection.
    public let conv1, conv2, conv3: ConvNorm
    /// Probability that the block's residual branch is dropped in training (stochastic depth).
    public let dropPathRate: Float
    /// A block named `prefix` on `channels` channels, hidden width `channels × expandRatio`.
    public init(prefix: String, channels: Int, expandRatio: Float, dropPathRate: Float) {
        let hidden = Int(Float(channels) * expandRatio)
        conv1 = ConvNorm(prefix: prefix + ".conv1", inChannels: channels, outChannels: hidden, kind: .pointwise)
        conv2 = ConvNorm(prefix: prefix + ".conv2", inChannels: hidden, outChannels: hidden, kind: .depthwise(kernel: 3, stride: 1))
        conv3 = ConvNorm(prefix: prefix + ".conv3", inChannels: hidden, outChannels: channels, kind: .pointwise)
        self.dropPathRate = dropPathRate
    }
    /// The three ConvNorms' parameters.
    public var parameters: [Parameter] { conv1.parameters + conv2.parameters + conv3.parameters }
    /// The three ConvNorms' BatchNorm running statistics.
    public var buffers: [Buffer] { conv1.buffers + conv2.buffers + conv3.buffers }

    func forward(_ x: FeatureMap, _ ctx: ForwardContext) -> FeatureMap {
        let h = conv2.forward(conv1.forward(x, ctx, gelu: true), ctx, gelu: true)
        let scale = ctx.dropPathScales(batch: x.batch, rate: dropPathRate)
        return conv3.forward(h, ctx, residual: x.data, branchScale: scale, gelu: true)
    }
    func backward(_ dy: Tensor) -> Tensor {
        let (d3, dShortcut) = conv3.backward(dy)
        let d1 = conv1.backward(conv2.backward(d3!).input!).input!
        OpProfiler.measure("residual add") { Elementwise.addInPlace(d1, dShortcut!) }
        return d1
    }
}

/// timm's `PatchMerging`: 1×1 ConvNorm + GELU, 3×3 stride-2 depthwise ConvNorm + GELU, 1×1 ConvNorm.
public final class PatchMerging: ParameterContainer {
    /// The 1×1, the 3×3 stride-2 depthwise and the final 1×1 ConvNorm.
    public let conv1, conv2, conv3: ConvNorm
    /// A merge from `inChannels` to `outChannels` at half the resolution.
    public init(prefix: String, inChannels: Int, outChannels: Int) {
        conv1 = ConvNorm(prefix: prefix + ".conv1", inChannels: inChannels, outChannels: outChannels, kind: .pointwise)
        conv2 = ConvNorm(prefix: prefix + ".conv2", inChannels: outChannels, outChannels: outChannels, kind: .depthwise(kernel: 3, stride: 2))
        conv3 = ConvNorm(prefix: prefix + ".conv3", inChannels: outChannels, outChannels: outChannels, kind: .pointwise)
    }
    /// The three ConvNorms' parameters.
    public var parameters: [Parameter] { conv1.parameters + conv2.parameters + conv3.parameters }
    /// The three ConvNorms' BatchNorm running statistics.
    public var buffers: [Buffer] { conv1.buffers + conv2.buffers + conv3.buffers }

    func forward(_ x: FeatureMap, _ ctx: ForwardContext) -> FeatureMap {
        conv3.forward(conv2.forward(conv1.forward(x, ctx, gelu: true), ctx, gelu: true), ctx, gelu: false)
    }
    func backward(_ dy: Tensor) -> Tensor {
        conv1.backward(conv2.backward(conv3.backward(dy).input!).input!).input!
    }
}
