import Augment
import Distill
import Foundation
import ImageStore
import ShardFormat
import Tensor
import TinyViT
import XCTest

/// Tiny shapes throughout: debug builds are slow.
public enum Fixture {
    /// The repository's copy of the digits (Tools/data), found from this file's path.
    public static let digitsPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Tools/data/digits.csv.gz").path

    public static func tinyConfig(imageSize: Int = 16) -> TinyViTConfiguration {
        TinyViTConfiguration(embedDims: [8, 16, 16, 16], depths: [1, 1, 1, 1], numHeads: [1, 1, 1, 1], windowSizes: [2, 2, 2, 2],
                             numClasses: 10, imageSize: imageSize)
    }

    public static func temporaryDirectory(_ name: String) throws -> String {
        let path = NSTemporaryDirectory() + "distill-tests-\(name)-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The first `count` digits, upscaled ×2 to 16 px.
    public static func store(count: Int, in directory: String) throws -> ImageStore {
        guard FileManager.default.fileExists(atPath: digitsPath) else { throw XCTSkip("no \(digitsPath)") }
        let digits = try DigitsImport.read(digitsPath, upscale: 2).prefix(count)
        let path = directory + "/digits.tis"
        let writer = try ImageStoreWriter(path: path, classNames: DigitsImport.classNames)
        for d in digits { try writer.append(key: d.key, label: d.label, image: d.image) }
        _ = try writer.finish()
        return try ImageStore(path: path)
    }

    /// A tiny teacher with confident outputs (head scaled up so the soft labels are far from uniform).
    public static func teacher(seed: UInt64 = 7) throws -> TinyViT {
        let model = try TinyViT(tinyConfig())
        model.initializeWeights(seed: seed)
        for p in model.head.parameters where p.name.hasSuffix("weight") && p.value.shape.count == 2 {
            for i in 0..<p.value.count { p.value[flat: i] *= 100 }
        }
        return model
    }

    public static func teacherPass(store: ImageStore, directory: String, epochs: Int = 2, k: Int = 3) throws -> (TinyViT, TeacherPass.Summary) {
        let teacher = try teacher()
        let summary = try TeacherPass.run(store: store, teacher: teacher, outputDirectory: directory,
                                          options: .init(epochs: epochs, k: k, seed: 11, batchSize: 8))
        return (teacher, summary)
    }

    /// `cycleEpochs`: train more epochs than a test's pass stored, reading them again.
    public static func options(epochs: Int, cycleEpochs: Bool = false) -> TrainOptions {
        TrainOptions(epochs: epochs, batchSize: 8, learningRate: 3e-3, minLearningRate: 1e-4, warmupEpochs: 0.5,
                     weightDecay: 0.05, clip: 5, dropPath: 0.1, layerDecay: 0.9, seed: 3, evalBatchSize: 16, cycleEpochs: cycleEpochs)
    }
}

