import Tensor

/// A trainable tensor with its timm `state_dict` name, its gradient and its optimizer settings.
public final class Parameter {
    /// The timm `state_dict` key, e.g. `stages.1.blocks.0.attn.qkv.weight`.
    public let name: String
    /// The current weights (the optimiser updates them in place).
    public var value: Tensor
    /// Gradient of the last backward pass (overwritten by each backward, not accumulated).
    public var gradient: Tensor
    /// Whether AdamW applies weight decay (TinyViT: only to ≥2-D weights, never to biases,
    /// 1-D parameters or attention biases).
    public var usesWeightDecay: Bool
    /// Learning-rate multiplier from layer-wise decay (1 by default).
    public var learningRateScale: Float = 1

    /// A parameter with a zero gradient of `value`'s shape.
    public init(name: String, value: Tensor) {
        self.name = name
        self.value = value
        self.gradient = Tensor(zeros: value.shape)
        self.usesWeightDecay = value.shape.count >= 2 && !name.hasSuffix(".bias") && !name.contains("attention_biases")
    }
}

/// A persistent non-trainable tensor of the `state_dict` (BatchNorm running statistics).
public final class Buffer {
    /// The timm `state_dict` key, e.g. `stages.0.blocks.0.conv1.bn.running_mean`.
    public let name: String
    /// The current values.
    public var value: Tensor
    /// A buffer named `name` holding `value`.
    public init(name: String, value: Tensor) { self.name = name; self.value = value }
}

/// Per-forward settings shared by every layer.
public final class ForwardContext {
    /// BatchNorm uses batch statistics (and updates running ones) and drop path is active.
    public let training: Bool
    /// Keep what the backward pass needs; `false` for inference (saves memory).
    public let recordsGradients: Bool
    /// Source of drop-path randomness.
    public var generator: any RandomNumberGenerator
    /// Receives named intermediate activations (timm module names, channels-last) when set.
    public var recorder: ((String, Tensor) -> Void)?
    /// In training mode: synchronised BatchNorm, statistics summed over the processes of a data-parallel
    /// run (nil: each process normalises with its own batch, as PyTorch DDP does by default).
    public var batchNormReducer: BatchNormReducer?

    /// Settings of one forward; `generator` drives drop path, `recorder` receives intermediate activations,
    /// `batchNormReducer` synchronises BatchNorm.
    public init(training: Bool, recordsGradients: Bool, generator: any RandomNumberGenerator = SystemRandomNumberGenerator(),
                recorder: ((String, Tensor) -> Void)? = nil, batchNormReducer: BatchNormReducer? = nil) {
        self.training = training
        self.recordsGradients = recordsGradients
        self.generator = generator
        self.recorder = recorder
        self.batchNormReducer = batchNormReducer
    }

    func dropPathScales(batch: Int, rate: Float) -> [Float]? {
        guard training, rate > 0 else { return nil }
        var g = generator
        defer { generator = g }
        return DropPath.sampleScales(batch: batch, rate: rate, training: true, using: &g)
    }
}

/// A channels-last activation with its spatial size: data `(N, H, W, C)`.
public struct FeatureMap {
    /// The activations, shaped `(batch, height, width, channels)`.
    public var data: Tensor
    /// The dimensions of ``data``.
    public var batch, height, width, channels: Int
    /// Wraps `data` (reshaped to NHWC); traps when its count is not the product of the dimensions.
    public init(_ data: Tensor, batch: Int, height: Int, width: Int, channels: Int) {
        precondition(data.count == batch * height * width * channels, "feature map \(data.shape) vs \(batch)×\(height)×\(width)×\(channels)")
        self.data = data.reshaped([batch, height, width, channels])
        (self.batch, self.height, self.width, self.channels) = (batch, height, width, channels)
    }
    func with(_ t: Tensor) -> FeatureMap { FeatureMap(t, batch: batch, height: height, width: width, channels: channels) }
}
