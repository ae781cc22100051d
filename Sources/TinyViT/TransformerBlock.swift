import Tensor

/// timm's `TinyVitBlock` on channels-last maps: windowed attention (with zero padding to whole
/// windows, see `WindowAttention`) + residual, a 3×3 depthwise ConvNorm (`local_conv`), then
/// LayerNorm-MLP + residual. The attention LayerNorm and the qkv/proj Linears run on the real
/// tokens only; padded tokens enter as one shared projection row.
public final class TinyViTBlock: ParameterContainer {
    /// Channels, attention heads, and window side in tokens.
    public let channels, heads, window: Int
    /// The LayerNorm before attention (`attn.norm`).
    public let attentionNorm: LayerNormLayer
    /// The attention's query-key-value and output projections (`attn.qkv`, `attn.proj`).
    public let qkv, proj: LinearLayer
    /// `attn.attention_biases`, `(heads, window²)`.
    public let attentionBiases: Parameter
    /// The 3×3 depthwise ConvNorm between attention and MLP (`local_conv`).
    public let localConv: ConvNorm
    /// The LayerNorm before the MLP (`mlp.norm`).
    public let mlpNorm: LayerNormLayer
    /// The MLP's two Linears (`mlp.fc1`, `mlp.fc2`), GELU between.
    public let fc1, fc2: LinearLayer
    /// Probability that each residual branch is dropped in training (stochastic depth).
    public let dropPathRate: Float
    let biasIndices: [Int32]

    // saved for backward
    private var savedGeometry: WindowAttention.Geometry?
    private var savedQKV: Tensor?
    private var savedPadRow: Tensor?
    private var savedProbabilities: Tensor?
    private var savedHidden: Tensor?
    private var scale1: [Float]?, scale2: [Float]?

    /// A block named `prefix`; traps when `channels` is not divisible by `heads`.
    public init(prefix: String, channels: Int, heads: Int, window: Int, mlpRatio: Float, localConvSize: Int = 3,
                dropPathRate: Float) {
        precondition(channels % heads == 0, "\(prefix): \(channels) channels not divisible by \(heads) heads")
        self.channels = channels; self.heads = heads; self.window = window; self.dropPathRate = dropPathRate
        attentionNorm = LayerNormLayer(prefix: prefix + ".attn.norm", channels: channels)
        qkv = LinearLayer(prefix: prefix + ".attn.qkv", inFeatures: channels, outFeatures: 3 * channels)
        proj = LinearLayer(prefix: prefix + ".attn.proj", inFeatures: channels, outFeatures: channels)
        attentionBiases = Parameter(name: prefix + ".attn.attention_biases", value: Tensor(zeros: [heads, window * window]))
        localConv = ConvNorm(prefix: prefix + ".local_conv", inChannels: channels, outChannels: channels,
                             kind: .depthwise(kernel: localConvSize, stride: 1))
        let hidden = Int(Float(channels) * mlpRatio)
        mlpNorm = LayerNormLayer(prefix: prefix + ".mlp.norm", channels: channels)
        fc1 = LinearLayer(prefix: prefix + ".mlp.fc1", inFeatures: channels, outFeatures: hidden)
        fc2 = LinearLayer(prefix: prefix + ".mlp.fc2", inFeatures: hidden, outFeatures: channels)
        biasIndices = WindowAttention.biasIndices(window: window)
    }

    /// Attention biases, then the LayerNorms', Linears' and local conv's parameters.
    public var parameters: [Parameter] {
        [attentionBiases] + attentionNorm.parameters + qkv.parameters + proj.parameters + mlpNorm.parameters
            + fc1.parameters + fc2.parameters + localConv.parameters
    }
    /// The local conv's BatchNorm running statistics.
    public var buffers: [Buffer] { localConv.buffers }

    private var keyDim: Int { channels / heads }

    func forward(_ x: FeatureMap, _ ctx: ForwardContext) -> FeatureMap {
        let (B, H, W, C) = (x.batch, x.height, x.width, channels)
        let geometry = WindowAttention.Geometry(batch: B, height: H, width: W, heads: heads, keyDim: keyDim, window: window)
        let tokens = x.data.reshaped([B * H * W, C])
        let packed = qkv.forward(attentionNorm.forward(tokens, ctx), ctx)
        // timm pads with zero tokens before the LayerNorm: all padded tokens project to qkv(β).
        let padRow = geometry.isPadded ? OpProfiler.measure("linear fwd") {
            Linear.forward(attentionNorm.bias.value.reshaped([1, C]), weight: qkv.weight.value, bias: qkv.bias.value) } : nil
        let (attended, probs) = OpProfiler.measure("attention fwd") {
            WindowAttention.forward(qkv: packed, padRow: padRow, geometry: geometry, biasTable: attentionBiases.value,
                                    indices: biasIndices) }
        let projected = proj.forward(attended, ctx)
        let s1 = ctx.dropPathScales(batch: B, rate: dropPathRate)
        let x1 = x.with(OpProfiler.measure("residual add") { Elementwise.addScaled(residual: x.data, branch: projected, sampleScale: s1) })
        let x2 = localConv.forward(x1, ctx, gelu: false)
        let hidden = fc1.forward(mlpNorm.forward(x2.data.reshaped([B * H * W, C]), ctx), ctx)
        let mlpOut = fc2.forward(OpProfiler.measure("gelu fwd") { GELU.forward(hidden) }, ctx)
        let s2 = ctx.dropPathScales(batch: B, rate: dropPathRate)
        let x3 = x.with(OpProfiler.measure("residual add") { Elementwise.addScaled(residual: x2.data, branch: mlpOut, sampleScale: s2) })
        if ctx.recordsGradients {
            savedGeometry = geometry; savedQKV = packed; savedPadRow = padRow; savedProbabilities = probs; savedHidden = hidden
            scale1 = s1; scale2 = s2
        }
        return x3
    }

    func backward(_ dy: Tensor) -> Tensor {
        guard let geometry = savedGeometry, let packed = savedQKV, let probs = savedProbabilities, let hidden = savedHidden else {
            preconditionFailure("\(qkv.weight.name): backward without forward")
        }
        let (B, H, W, C) = (geometry.batch, geometry.height, geometry.width, channels)
        // MLP branch
        let dMLP = Elementwise.scaleSamples(dy, scale2).reshaped([B * H * W, C])
        let dG = fc2.backward(dMLP)!
        let dHidden = OpProfiler.measure("gelu bwd") { GELU.backward(dG, input: hidden) }
        let dx2 = mlpNorm.backward(fc1.backward(dHidden)!)
        OpProfiler.measure("residual add") { Elementwise.addInPlace(dx2, dy) }
        // local conv
        let dx1 = localConv.backward(dx2.reshaped([B, H, W, C])).input!
        // attention branch
        let dProjected = Elementwise.scaleSamples(dx1, scale1).reshaped([B * H * W, C])
        let dAttended = proj.backward(dProjected)!
        let (dPacked, dPad) = OpProfiler.measure("attention bwd") {
            WindowAttention.backward(dAttended, qkv: packed, padRow: savedPadRow, probabilities: probs, geometry: geometry,
                                     indices: biasIndices, gradBiasTable: attentionBiases.gradient) }
        let dNormed = qkv.backward(dPacked)!
        let dx = attentionNorm.backward(dNormed).reshaped([B, H, W, C])
        if let dPad { OpProfiler.measure("linear bwd") { accumulatePaddedTokenGradient(dPad) } }
        OpProfiler.measure("residual add") { Elementwise.addInPlace(dx, dx1) }
        savedGeometry = nil; savedQKV = nil; savedPadRow = nil; savedProbabilities = nil; savedHidden = nil
        scale1 = nil; scale2 = nil
        return dx
    }

    /// The padded tokens' path, `qkv(LayerNorm(0)) = W·β + b`: adds its gradient (`dPad`, summed
    /// over all padded positions) to the qkv weight and bias and to the attention norm's β.
    private func accumulatePaddedTokenGradient(_ dPad: Tensor) {
        let C = channels, O = 3 * channels
        let beta = attentionNorm.bias.value.pointer, w = qkv.weight.value.pointer
        let gw = qkv.weight.gradient.pointer, gb = qkv.bias.gradient.pointer, gBeta = attentionNorm.bias.gradient.pointer
        for o in 0..<O {
            let g = dPad.pointer[o]
            gb[o] += g
            for c in 0..<C { gw[o * C + c] += g * beta[c]; gBeta[c] += g * w[o * C + c] }
        }
    }
}

/// timm's `NormMlpClassifierHead` as TinyViT uses it: global average pool, LayerNorm2d, Linear.
public final class ClassifierHead: ParameterContainer {
    /// `head.norm`: LayerNorm over the pooled channels.
    public let norm: LayerNormLayer
    /// `head.fc`: channels to class logits.
    public let fc: LinearLayer
    private var savedShape: (Int, Int, Int)?

    /// A head from `channels` pooled features to `classes` logits.
    public init(channels: Int, classes: Int) {
        norm = LayerNormLayer(prefix: "head.norm", channels: channels)
        fc = LinearLayer(prefix: "head.fc", inFeatures: channels, outFeatures: classes)
    }
    /// The norm's and the classifier's parameters.
    public var parameters: [Parameter] { norm.parameters + fc.parameters }

    func forward(_ x: FeatureMap, _ ctx: ForwardContext) -> Tensor {
        let pooled = GlobalAveragePool.forward(x.data, batch: x.batch, channels: x.channels)
        let normed = norm.forward(pooled, ctx)
        ctx.recorder?("head.norm", normed)
        if ctx.recordsGradients { savedShape = (x.batch, x.height * x.width, x.channels) }
        return fc.forward(normed, ctx)
    }

    func backward(_ dLogits: Tensor) -> Tensor {
        guard let (N, L, C) = savedShape else { preconditionFailure("head: backward without forward") }
        let dPooled = norm.backward(fc.backward(dLogits)!)
        return GlobalAveragePool.backward(dPooled, batch: N, positions: L, channels: C)
    }
}
