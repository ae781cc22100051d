import Tensor

/// Something with parameters and buffers named like timm's modules.
public protocol ParameterContainer: AnyObject {
    /// Trainable tensors, in a fixed order (the optimiser and checkpoints rely on it).
    var parameters: [Parameter] { get }
    /// Persistent non-trainable tensors (BatchNorm running statistics).
    var buffers: [Buffer] { get }
}

public extension ParameterContainer {
    /// None, for layers without BatchNorm.
    var buffers: [Buffer] { [] }
}

/// timm's `ConvNorm`: a bias-free convolution followed by BatchNorm2d, here fused with what
/// follows it in TinyViT (optional residual add with drop path, optional GELU).
public final class ConvNorm: ParameterContainer {
    /// A k×k dense convolution, a 1×1 convolution, or a k×k depthwise convolution, with the given stride.
    public enum Kind: Equatable { case dense(kernel: Int, stride: Int), pointwise, depthwise(kernel: Int, stride: Int) }
    /// Which convolution.
    public let kind: Kind
    /// Input and output channels.
    public let inChannels, outChannels: Int
    /// The convolution's weight (`c.weight`) and BatchNorm's γ and β (`bn.weight`, `bn.bias`).
    public let weight, bnWeight, bnBias: Parameter
    /// BatchNorm's running mean and variance (`bn.running_mean`, `bn.running_var`).
    public let runningMean, runningVar: Buffer
    /// BatchNorm's `num_batches_tracked`.
    public var batchesTracked: Int64 = 0
    let prefix: String

    // saved for backward
    private var savedInput: FeatureMap?
    private var savedConvOutput: Tensor?
    private var savedResidual: Tensor?
    private var savedScale: [Float]?
    private var savedStats: BatchNormStatistics?
    private var savedGELU = false
    private var savedReducer: BatchNormReducer?

    /// A ConvNorm with timm's names under `prefix`, zero weights and BatchNorm at identity (γ 1, β 0, running variance
    /// 1).
    public init(prefix: String, inChannels: Int, outChannels: Int, kind: Kind) {
        self.prefix = prefix
        self.kind = kind
        self.inChannels = inChannels
        self.outChannels = outChannels
        let wshape: [Int]
        switch kind {
        case .dense(let k, _): wshape = [outChannels, inChannels, k, k]
        case .pointwise: wshape = [outChannels, inChannels, 1, 1]
        case .depthwise(let k, _): wshape = [outChannels, 1, k, k]
        }
        weight = Parameter(name: prefix + ".conv.weight", value: Tensor(zeros: wshape))
        bnWeight = Parameter(name: prefix + ".bn.weight", value: Tensor(repeating: 1, shape: [outChannels]))
        bnBias = Parameter(name: prefix + ".bn.bias", value: Tensor(zeros: [outChannels]))
        runningMean = Buffer(name: prefix + ".bn.running_mean", value: Tensor(zeros: [outChannels]))
        runningVar = Buffer(name: prefix + ".bn.running_var", value: Tensor(repeating: 1, shape: [outChannels]))
    }

    /// Weight, γ and β.
    public var parameters: [Parameter] { [weight, bnWeight, bnBias] }
    /// Running mean and variance.
    public var buffers: [Buffer] { [runningMean, runningVar] }

    func outputSize(_ h: Int, _ w: Int) -> (Int, Int) {
        switch kind {
        case .pointwise: return (h, w)
        case .dense(let k, let s), .depthwise(let k, let s):
            return ((h + 2 * (k / 2) - k) / s + 1, (w + 2 * (k / 2) - k) / s + 1)
        }
    }

    private func convGeometry(_ x: FeatureMap) -> (Conv2d.Geometry?, DepthwiseConv.Geometry?) {
        switch kind {
        case .pointwise: return (nil, nil)
        case .dense(let k, let s):
            return (Conv2d.Geometry(batch: x.batch, inChannels: inChannels, outChannels: outChannels, height: x.height,
                                    width: x.width, kernel: k, stride: s, padding: k / 2), nil)
        case .depthwise(let k, let s):
            return (nil, DepthwiseConv.Geometry(batch: x.batch, channels: inChannels, height: x.height, width: x.width,
                                                kernel: k, stride: s, padding: k / 2))
        }
    }

    /// `act(scale·BN(conv(x)) + residual)`.
    public func forward(_ x: FeatureMap, _ ctx: ForwardContext, residual: Tensor? = nil, branchScale: [Float]? = nil,
                        gelu: Bool) -> FeatureMap {
        precondition(x.channels == inChannels, "\(prefix): expected \(inChannels) channels, got \(x.channels)")
        let (dense, dw) = convGeometry(x)
        let y: Tensor
        if let dense { y = OpProfiler.measure("conv3x3 fwd") { Conv2d.forward(x.data, weight: weight.value, geometry: dense) } }
        else if let dw { y = OpProfiler.measure("depthwise fwd") { DepthwiseConv.forward(x.data, weight: weight.value, geometry: dw) } }
        else { y = OpProfiler.measure("conv1x1 fwd") { Linear.forward(x.data.reshaped([x.count, inChannels]), weight: weight.value.reshaped([outChannels, inChannels]), bias: nil) } }
        let (oh, ow) = outputSize(x.height, x.width)
        let reducer = ctx.training ? ctx.batchNormReducer : nil
        let (z, stats) = OpProfiler.measure("batchnorm(+gelu) fwd") { BatchNorm.forward(y, gamma: bnWeight.value, beta: bnBias.value, runningMean: runningMean.value,
                                           runningVar: runningVar.value, training: ctx.training, residual: residual,
                                           branchScale: branchScale, gelu: gelu, reducer: reducer) }
        if ctx.training { batchesTracked += 1 }
        if ctx.recordsGradients {
            savedInput = x; savedConvOutput = y; savedResidual = residual; savedScale = branchScale
            savedStats = stats; savedGELU = gelu; savedReducer = reducer
        }
        return FeatureMap(z, batch: x.batch, height: oh, width: ow, channels: outChannels)
    }

    /// Returns the input gradient and, when the forward had a residual, the residual's gradient.
    public func backward(_ gradOutput: Tensor, needInputGradient: Bool = true) -> (input: Tensor?, residual: Tensor?) {
        guard let x = savedInput, let y = savedConvOutput, let stats = savedStats else {
            preconditionFailure("\(prefix): backward without a recorded forward")
        }
        let (dy, dres) = OpProfiler.measure("batchnorm(+gelu) bwd") { BatchNorm.backward(gradOutput, input: y, statistics: stats, gamma: bnWeight.value, beta: bnBias.value,
                                            gradGamma: bnWeight.gradient, gradBeta: bnBias.gradient,
                                            residual: savedResidual, branchScale: savedScale, gelu: savedGELU,
                                            reducer: savedReducer) }
        let (dense, dw) = convGeometry(x)
        var dx: Tensor?
        if let dense {
            OpProfiler.measure("conv3x3 bwd") {
                Conv2d.backwardWeights(dy, input: x.data, gradWeight: weight.gradient, geometry: dense)
                if needInputGradient { dx = Conv2d.backwardData(dy, weight: weight.value, geometry: dense) }
            }
        } else if let dw {
            OpProfiler.measure("depthwise bwd") {
                DepthwiseConv.backwardWeights(dy, input: x.data, gradWeight: weight.gradient, geometry: dw)
                if needInputGradient { dx = DepthwiseConv.backwardData(dy, weight: weight.value, geometry: dw) }
            }
        } else {
            dx = OpProfiler.measure("conv1x1 bwd") { Linear.backward(dy.reshaped([dy.count / outChannels, outChannels]), input: x.data.reshaped([x.count, inChannels]),
                                 weight: weight.value.reshaped([outChannels, inChannels]),
                                 gradWeight: weight.gradient.reshaped([outChannels, inChannels]), gradBias: nil,
                                 needInputGradient: needInputGradient) }
        }
        savedInput = nil; savedConvOutput = nil; savedResidual = nil; savedScale = nil; savedStats = nil; savedReducer = nil
        return (dx?.reshaped(x.data.shape), dres)
    }
}

extension FeatureMap { var count: Int { batch * height * width } }

/// `nn.LayerNorm` over the channel (last) dimension.
public final class LayerNormLayer: ParameterContainer {
    /// γ and β, each of the channels' length.
    public let weight, bias: Parameter
    private var savedInput: Tensor?
    private var savedStats: LayerNorm.Statistics?

    /// A LayerNorm at identity (γ 1, β 0), named under `prefix`.
    public init(prefix: String, channels: Int) {
        weight = Parameter(name: prefix + ".weight", value: Tensor(repeating: 1, shape: [channels]))
        bias = Parameter(name: prefix + ".bias", value: Tensor(zeros: [channels]))
    }
    /// γ and β.
    public var parameters: [Parameter] { [weight, bias] }

    /// Normalises each row of `x` over its last dimension; keeps what the backward needs when `ctx` records gradients.
    public func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor {
        let (y, st) = OpProfiler.measure("layernorm fwd") { LayerNorm.forward(x, gamma: weight.value, beta: bias.value) }
        if ctx.recordsGradients { savedInput = x; savedStats = st }
        return y
    }

    /// Writes γ's and β's gradients and returns the input's; traps without a recorded forward.
    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = savedInput, let st = savedStats else { preconditionFailure("\(weight.name): backward without forward") }
        savedInput = nil; savedStats = nil
        return OpProfiler.measure("layernorm bwd") {
            LayerNorm.backward(dy, input: x, statistics: st, gamma: weight.value, gradGamma: weight.gradient, gradBeta: bias.gradient)
        }
    }
}

/// `nn.Linear` on `(rows, in)` data.
public final class LinearLayer: ParameterContainer {
    /// The weight `(out, in)` and bias `(out)`.
    public let weight, bias: Parameter
    private var savedInput: Tensor?

    /// A linear layer with zero weight and bias, named under `prefix`.
    public init(prefix: String, inFeatures: Int, outFeatures: Int) {
        weight = Parameter(name: prefix + ".weight", value: Tensor(zeros: [outFeatures, inFeatures]))
        bias = Parameter(name: prefix + ".bias", value: Tensor(zeros: [outFeatures]))
    }
    /// Weight and bias.
    public var parameters: [Parameter] { [weight, bias] }

    /// `x · weightᵀ + bias` on `(rows, in)` data; keeps the input when `ctx` records gradients.
    public func forward(_ x: Tensor, _ ctx: ForwardContext) -> Tensor {
        if ctx.recordsGradients { savedInput = x }
        return OpProfiler.measure("linear fwd") { Linear.forward(x, weight: weight.value, bias: bias.value) }
    }

    /// Writes the weight's and bias's gradients and returns the input's (nil when `needInputGradient` is false); traps
    /// without a recorded forward.
    public func backward(_ dy: Tensor, needInputGradient: Bool = true) -> Tensor? {
        guard let x = savedInput else { preconditionFailure("\(weight.name): backward without forward") }
        savedInput = nil
        return OpProfiler.measure("linear bwd") {
            Linear.backward(dy, input: x, weight: weight.value, gradWeight: weight.gradient, gradBias: bias.gradient,
                            needInputGradient: needInputGradient)
        }
    }
}
