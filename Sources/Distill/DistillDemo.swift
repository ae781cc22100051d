import Augment
import Foundation
import ImageStore
import ShardFormat
import TinyViT

/// The README's main job on the digits: train a teacher on hard labels, teacher pass to shards, verify,
/// distil a smaller student off the shards, train the same student on hard labels (replaying the same
/// shards' parameters) for the same epochs, and compare held-out accuracies.
public enum DistillDemo {
    public struct Options: Sendable {
        public var upscale = 4
        /// Only the first this many digits (tests); nil for all 1,797.
        public var maxImages: Int?
        public var teacherEpochs = 30
        public var studentEpochs = 30
        public var k = 5
        public var seed: UInt64 = 0
        public var batchSize = 32
        public var teacher = TinyViTConfiguration(embedDims: [32, 64, 96, 128], depths: [1, 1, 2, 1], numHeads: [1, 2, 3, 4],
                                                  windowSizes: [4, 4, 2, 1], numClasses: 10, imageSize: 32)
        public var student = TinyViTConfiguration(embedDims: [16, 32, 32, 48], depths: [1, 1, 1, 1], numHeads: [1, 1, 1, 2],
                                                  windowSizes: [4, 4, 2, 1], numClasses: 10, imageSize: 32)
        public init() {}
    }

    public struct Result: Sendable {
        public var teacher: Evaluation
        public var distilled: Evaluation
        public var hardLabel: Evaluation
        public var bytesPerRecord: Double
        public var records: Int
        public var verifiedClean: Bool
        public var teacherParameters: Int
        public var studentParameters: Int
        public var seconds: [String: Double]
    }

    public static func run(digitsCSV: String, outputDirectory dir: String, options: Options,
                           log: (String) -> Void = { print($0) },
                           progress: ((String, TrainProgress) -> Void)? = nil) throws -> Result {
        var seconds: [String: Double] = [:]
        func timed<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
            let t0 = Date(); defer { seconds[name] = Date().timeIntervalSince(t0) }
            return try body()
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let storePath = dir + "/digits.tis"
        try timed("import") {
            if let limit = options.maxImages {
                let writer = try ImageStoreWriter(path: storePath, classNames: DigitsImport.classNames)
                for digit in try DigitsImport.read(digitsCSV, upscale: options.upscale).prefix(limit) {
                    try writer.append(key: digit.key, label: digit.label, image: digit.image)
                }
                _ = try writer.finish()
            } else {
                _ = try DigitsImport.importStore(from: digitsCSV, to: storePath, upscale: options.upscale)
            }
        }
        let store = try ImageStore(path: storePath)
        log("image store: \(store.count) digits at \(8 * options.upscale) px -> \(storePath)")
        try ModelArchitecture.write(options.teacher, to: dir + "/teacher-arch.json")
        try ModelArchitecture.write(options.student, to: dir + "/student-arch.json")
        func trainOptions(_ epochs: Int, lr: Float) -> TrainOptions {
            TrainOptions(epochs: epochs, batchSize: options.batchSize, learningRate: lr, minLearningRate: lr / 100,
                         warmupEpochs: 1, weightDecay: 0.05, clip: 5, dropPath: 0, layerDecay: 1, seed: options.seed)
        }
        let teacherTrainer = try Trainer(store: store, source: .onTheFly(recipe: .tinyViT, seed: options.seed ^ 0x7EAC),
                                         configuration: options.teacher, options: trainOptions(options.teacherEpochs, lr: 2e-3),
                                         runDirectory: dir + "/teacher")
        let teacherSummary = try timed("teacher training") {
            try teacherTrainer.run(evaluateEachEpoch: false) { progress?("teacher", $0) }
        }
        let teacherEval = teacherSummary.lastEvaluation!
        log(String(format: "teacher (%d params, hard labels, %d epochs): held-out top-1 %.2f%%", teacherTrainer.model.parameterCount,
                   options.teacherEpochs, teacherEval.top1 * 100))
        let pass = try timed("teacher pass") {
            try TeacherPass.run(store: store, teacher: teacherTrainer.model, outputDirectory: dir + "/shards",
                                options: .init(epochs: options.studentEpochs, k: options.k, seed: options.seed, batchSize: 64),
                                teacherName: "demo-teacher")
        }
        let report = timed("verify") { ShardVerifier().verifyDataset(directory: dir + "/shards") }
        log(String(format: "teacher pass: %d records, %.1f bytes/record, verify: %@", pass.records, pass.bytesPerRecord,
                   report.isClean ? "clean" : "\(report.problems.count) problems"))
        func student(_ hard: Bool) throws -> (Evaluation, Int) {
            let trainer = try Trainer(store: store, source: .shards(try ShardDataset(directory: dir + "/shards"), hardLabels: hard),
                                      configuration: options.student, options: trainOptions(options.studentEpochs, lr: 2e-3),
                                      runDirectory: dir + (hard ? "/student-hard" : "/student-distilled"))
            let summary = try timed(hard ? "student hard" : "student distilled") {
                try trainer.run(evaluateEachEpoch: false) { progress?(hard ? "student (hard)" : "student (distilled)", $0) }
            }
            return (summary.lastEvaluation!, trainer.model.parameterCount)
        }
        let (distilled, studentParameters) = try student(false)
        let (hard, _) = try student(true)
        return Result(teacher: teacherEval, distilled: distilled, hardLabel: hard, bytesPerRecord: pass.bytesPerRecord,
                      records: pass.records, verifiedClean: report.isClean, teacherParameters: teacherTrainer.model.parameterCount,
                      studentParameters: studentParameters, seconds: seconds)
    }
}
