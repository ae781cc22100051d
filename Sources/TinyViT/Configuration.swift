import Foundation
import Interchange

/// The hyper-parameters that define a TinyViT, with timm's names in JSON
/// (`embed_dims`, `depths`, `num_heads`, `window_sizes`, `num_classes`, `in_chans`, `mlp_ratio`, ...).
public struct TinyViTConfiguration: Codable, Equatable, Sendable {
    /// Channels of each of the four stages (timm's `embed_dims`).
    public var embedDims: [Int]
    /// Blocks in each stage (`depths`); stage 0 is MBConv blocks, the others transformer blocks.
    public var depths: [Int]
    /// Attention heads per transformer stage (`num_heads`; the stage's channels must divide by it).
    public var numHeads: [Int]
    /// Attention window side per stage (`window_sizes`), in tokens.
    public var windowSizes: [Int]
    /// Classes of the head (`num_classes`).
    public var numClasses: Int
    /// Channels of the input images (`in_chans`, 3 for RGB).
    public var inChannels: Int
    /// Hidden width of each transformer MLP as a multiple of the channels (`mlp_ratio`).
    public var mlpRatio: Float
    /// Hidden width of each MBConv as a multiple of the channels (`mbconv_expand_ratio`).
    public var mbconvExpandRatio: Float
    /// Kernel side of the depthwise `local_conv` in transformer blocks (`local_conv_size`).
    public var localConvSize: Int
    /// Stochastic depth: rates rise linearly from 0 to this over all blocks (timm's `dpr`).
    public var dropPathRate: Float
    /// The nominal input size (for MACs and defaults; the model accepts any size).
    public var imageSize: Int

    enum CodingKeys: String, CodingKey {
        case embedDims = "embed_dims", depths, numHeads = "num_heads", windowSizes = "window_sizes"
        case numClasses = "num_classes", inChannels = "in_chans", mlpRatio = "mlp_ratio"
        case mbconvExpandRatio = "mbconv_expand_ratio", localConvSize = "local_conv_size"
        case dropPathRate = "drop_path_rate", imageSize = "img_size"
    }

    /// A configuration with timm's defaults for the fields not given; checked when a model is built from it.
    public init(embedDims: [Int], depths: [Int], numHeads: [Int], windowSizes: [Int], numClasses: Int = 1000,
                inChannels: Int = 3, mlpRatio: Float = 4, mbconvExpandRatio: Float = 4, localConvSize: Int = 3,
                dropPathRate: Float = 0, imageSize: Int = 224) {
        self.embedDims = embedDims; self.depths = depths; self.numHeads = numHeads; self.windowSizes = windowSizes
        self.numClasses = numClasses; self.inChannels = inChannels; self.mlpRatio = mlpRatio
        self.mbconvExpandRatio = mbconvExpandRatio; self.localConvSize = localConvSize
        self.dropPathRate = dropPathRate; self.imageSize = imageSize
    }

    /// Decodes timm's `config.json` keys; the four lists are required, the other keys default as in the memberwise
    /// initialiser when absent.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(embedDims: try c.decode([Int].self, forKey: .embedDims),
                  depths: try c.decode([Int].self, forKey: .depths),
                  numHeads: try c.decode([Int].self, forKey: .numHeads),
                  windowSizes: try c.decode([Int].self, forKey: .windowSizes),
                  numClasses: try c.decodeIfPresent(Int.self, forKey: .numClasses) ?? 1000,
                  inChannels: try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? 3,
                  mlpRatio: try c.decodeIfPresent(Float.self, forKey: .mlpRatio) ?? 4,
                  mbconvExpandRatio: try c.decodeIfPresent(Float.self, forKey: .mbconvExpandRatio) ?? 4,
                  localConvSize: try c.decodeIfPresent(Int.self, forKey: .localConvSize) ?? 3,
                  dropPathRate: try c.decodeIfPresent(Float.self, forKey: .dropPathRate) ?? 0,
                  imageSize: try c.decodeIfPresent(Int.self, forKey: .imageSize) ?? 224)
    }

    /// `tiny_vit_5m_224`.
    public static func tiny5M(numClasses: Int = 1000) -> Self {
        .init(embedDims: [64, 128, 160, 320], depths: [2, 2, 6, 2], numHeads: [2, 4, 5, 10], windowSizes: [7, 7, 14, 7],
              numClasses: numClasses)
    }
    /// `tiny_vit_11m_224`.
    public static func tiny11M(numClasses: Int = 1000) -> Self {
        .init(embedDims: [64, 128, 256, 448], depths: [2, 2, 6, 2], numHeads: [2, 4, 8, 14], windowSizes: [7, 7, 14, 7],
              numClasses: numClasses)
    }
    /// `tiny_vit_21m_224`; `imageSize` 384 or 512 selects the windows of timm's larger variants.
    public static func tiny21M(numClasses: Int = 1000, imageSize: Int = 224) -> Self {
        let windows: [Int] = imageSize == 384 ? [12, 12, 24, 12] : imageSize == 512 ? [16, 16, 32, 16] : [7, 7, 14, 7]
        return .init(embedDims: [96, 192, 384, 576], depths: [2, 2, 6, 2], numHeads: [3, 6, 12, 18], windowSizes: windows,
                     numClasses: numClasses, imageSize: imageSize)
    }

    /// Named configs: "5m", "11m", "21m" (also "21m_384", "21m_512").
    public static func named(_ name: String, numClasses: Int = 1000) -> Self? {
        switch name.lowercased() {
        case "5m", "tiny_vit_5m_224": return tiny5M(numClasses: numClasses)
        case "11m", "tiny_vit_11m_224": return tiny11M(numClasses: numClasses)
        case "21m", "tiny_vit_21m_224": return tiny21M(numClasses: numClasses)
        case "21m_384", "tiny_vit_21m_384": return tiny21M(numClasses: numClasses, imageSize: 384)
        case "21m_512", "tiny_vit_21m_512": return tiny21M(numClasses: numClasses, imageSize: 512)
        default: return nil
        }
    }

    /// Checks the invariants the model relies on; throws ``TinyViTError/invalidConfiguration(_:)``.
    public func validate() throws {
        func bad(_ s: String) -> TinyViTError { .invalidConfiguration(s) }
        let n = depths.count
        guard n >= 1 else { throw bad("depths is empty") }
        guard embedDims.count == n, numHeads.count == n, windowSizes.count == n else {
            throw bad("embed_dims, depths, num_heads, window_sizes need one entry per stage (\(n))")
        }
        guard embedDims.allSatisfy({ $0 > 0 }), depths.allSatisfy({ $0 >= 0 }), numHeads.allSatisfy({ $0 > 0 }),
              windowSizes.allSatisfy({ $0 > 0 }) else { throw bad("dims, heads and windows must be positive, depths ≥ 0") }
        guard embedDims[0] % 2 == 0 else { throw bad("embed_dims[0] must be even (patch embed halves it)") }
        for i in 1..<n where embedDims[i] % numHeads[i] != 0 {
            throw bad("embed_dims[\(i)] = \(embedDims[i]) is not divisible by num_heads[\(i)] = \(numHeads[i])")
        }
        guard numClasses > 0, inChannels > 0, mlpRatio > 0, mbconvExpandRatio > 0 else {
            throw bad("num_classes, in_chans, mlp_ratio, mbconv_expand_ratio must be positive")
        }
        guard localConvSize % 2 == 1 else { throw bad("local_conv_size must be odd") }
        guard (0..<1).contains(dropPathRate) else { throw bad("drop_path_rate must be in [0, 1)") }
    }
}

/// Errors from building, loading and saving TinyViT models.
public enum TinyViTError: Error, CustomStringConvertible, Equatable {
    /// Stage counts that disagree, a size or ratio out of range, channels not divisible by heads.
    case invalidConfiguration(String)
    /// A weights file lacks a parameter or buffer of the model.
    case missingKey(key: String, file: String)
    /// A weights file holds a tensor the model does not have.
    case unexpectedKey(key: String, file: String)
    /// A tensor of the weights file has another shape than the model's.
    case shapeMismatch(key: String, expected: [Int], found: [Int], file: String)
    /// An input batch of the wrong shape or size.
    case invalidInput(String)

    /// One line: what failed, with the key, shapes and file where they apply.
    public var description: String {
        switch self {
        case .invalidConfiguration(let s): return "invalid TinyViT configuration: \(s)"
        case .missingKey(let k, let f): return "\(f): missing tensor '\(k)'"
        case .unexpectedKey(let k, let f): return "\(f): unexpected tensor '\(k)'"
        case .shapeMismatch(let k, let e, let g, let f): return "\(f): tensor '\(k)' has shape \(g), expected \(e)"
        case .invalidInput(let s): return "invalid input: \(s)"
        }
    }
}

extension TinyViTConfiguration {
    /// Reads a CONFIG.json (timm's key names) and validates it. The bytes must first pass the project's
    /// one JSON grammar (Interchange's `StrictJSON`, Spec/FORMAT.md "JSON grammar"): Foundation's
    /// decoder alone would take a duplicate key, a BOM or a UTF-16 file, and read them its own way.
    public init(json data: Data) throws {
        do {
            _ = try StrictJSON.parse(Array(data))
        } catch let error as JSONSyntaxError {
            throw TinyViTError.invalidConfiguration("not valid JSON: \(error)")
        }
        do {
            self = try JSONDecoder().decode(TinyViTConfiguration.self, from: data)
        } catch {
            throw TinyViTError.invalidConfiguration("cannot decode a TinyViT configuration: \(error)")
        }
        try validate()
    }
}
