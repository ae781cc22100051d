import ArgumentParser
import Foundation
import Tensor
import TinyViT

/// `tinyshard model …`: the TinyViT student on its own — run a checkpoint, or size a config.
struct Model: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a TinyViT checkpoint on an input, or print parameter counts and MACs of configs.",
        subcommands: [ModelForward.self, ModelInfo.self])

    /// A named config (5m, 11m, 21m, 21m_384, 21m_512) or a CONFIG.json with timm's key names.
    static func configuration(_ arch: String, classes: Int) throws -> TinyViTConfiguration {
        if let named = TinyViTConfiguration.named(arch, numClasses: classes) { return named }
        guard FileManager.default.fileExists(atPath: arch) else {
            throw CLIFailure("\(arch): [usage] --arch is not 5m, 11m, 21m, 21m_384, 21m_512 or an existing CONFIG.json")
        }
        guard let data = FileManager.default.contents(atPath: arch) else { throw CLIFailure("\(arch): [io] cannot read the config") }
        do {
            return try TinyViTConfiguration(json: data)
        } catch {
            throw CLIFailure("\(arch): [bad-config] \(error)")
        }
    }
}

struct ModelForward: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Logits of a TinyViT checkpoint (timm state_dict names, safetensors) for images in a .npy (N, C, H, W) float32.")

    @Option(help: "5m, 11m, 21m, 21m_384, 21m_512, or a CONFIG.json (embed_dims, depths, num_heads, window_sizes, num_classes, in_chans, mlp_ratio).")
    var arch: String

    @Option(help: "Classes of a named --arch (a CONFIG.json says its own).")
    var classes = 1000

    @Option(help: "The weights: a safetensors file with timm's state_dict keys (e.g. save_file(model.state_dict())).")
    var weights: String

    @Option(help: "Images: .npy float32 (N, in_chans, H, W).")
    var input: String

    @Option(help: "Where to write the logits: .npy float32 (N, classes).")
    var output: String

    @Flag(help: "BatchNorm with batch statistics (training mode) instead of running statistics.")
    var trainMode = false

    func run() throws {
        let configuration = try Model.configuration(arch, classes: classes)
        do {
            let model = try TinyViT(configuration)
            try model.load(contentsOf: URL(fileURLWithPath: weights))
            let images = try NPY.read(URL(fileURLWithPath: input))
            let logits = try model.forward(images, context: ForwardContext(training: trainMode, recordsGradients: false))
            try NPY.write(logits, to: URL(fileURLWithPath: output))
            print("wrote logits \(logits.shape) to \(output) (\(trainMode ? "train" : "eval")-mode BatchNorm)")
        } catch let failure as CLIFailure {
            throw failure
        } catch {
            throw CLIFailure("[model] \(error)")
        }
    }
}

struct ModelInfo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info", abstract: "Parameter count and multiply-accumulates of TinyViT configs.")

    @Option(help: "Configs to describe (named or CONFIG.json); repeat the option for several.")
    var arch: [String] = ["5m", "11m", "21m"]

    @Option(help: "Classes of the named configs.")
    var classes = 1000

    @Option(help: "Input resolution for the MAC count (default: the config's image size).")
    var resolution: Int?

    func run() throws {
        print("| config | classes | input | parameters | GMACs |")
        print("|---|---:|---:|---:|---:|")
        for name in arch {
            let configuration = try Model.configuration(name, classes: classes)
            let side = resolution ?? configuration.imageSize
            let macs = configuration.multiplyAccumulates(height: side, width: side)
            print("| \(name) | \(configuration.numClasses) | \(side)x\(side) | \(configuration.parameterCount) | \(String(format: "%.3f", Double(macs) / 1e9)) |")
        }
    }
}
