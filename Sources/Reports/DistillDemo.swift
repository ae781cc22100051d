import Distill
import Augment
import Foundation
import ImageStore
import ShardFormat
import TinyViT

/// The README's main job, on the digits (the embedded default) or any labelled image store: train a
/// teacher on hard labels, run the teacher pass to shards, verify them, then train the same student
/// three ways on the same views — hard labels, an online teacher (in the loop, full softmax), and the
/// stored top-K off the shards — and compare accuracy and cost (``DemoReport``). The online and hard
/// students draw their views from the pass's recipe and seed, which reproduces the stored views exactly
/// (same order, same parameters).
public enum DistillDemo {
    /// Where the images come from.
    public enum Images: Sendable, Equatable {
        /// The digits CSV, imported into `OUT/digits.tis` (``Options/upscale``, ``Options/maxImages``).
        case digits(csv: String)
        /// An image store, used in place. Every image must carry a label; the teacher's and the student's
        /// class count become the store's.
        case store(path: String)

        var name: String {
            switch self {
            case let .digits(csv): return csv
            case let .store(path): return path
            }
        }
    }

    public struct Options: Sendable {
        public var upscale = 4
        /// Only the first this many digits (tests); nil for all 1,797.
        public var maxImages: Int?
        public var teacherEpochs = 40
        public var studentEpochs = 20
        public var k = 5
        public var seed: UInt64 = 0
        public var batchSize = 32
        public var teacherLearningRate: Float = 2e-3
        /// Peak learning rates of the distilled students (online and shards) and of the hard-label student,
        /// each the best of the same grid on the validation split.
        public var distillLearningRate: Float = 1.2e-2
        public var hardLearningRate: Float = 1.2e-2
        public var weightDecay: Float = 0.05
        /// A teacher you already have (safetensors, timm keys, architecture ``teacher``): used as it is
        /// instead of training one on the store's training split — e.g. one trained on more data than the
        /// student gets, or one shared by several seeds. Evaluated on the same split as the students.
        public var teacherWeights: String?
        /// The teacher's training views, and the views of the pass and every student.
        public var teacherRecipe = NamedRecipe(name: "digits", recipe: .digits)
        public var studentRecipe = NamedRecipe(name: "digits", recipe: .digits)
        /// > 0: train without, and evaluate on, this validation part of the training split (for tuning).
        public var validationFraction = 0.0
        public var heldOutFraction = 0.2
        /// Points per student curve (evaluations spread over the epochs; the last epoch is always one).
        public var curvePoints = 6
        /// 1.47M parameters, 11.2M MACs at 32 px: 16.5× the student's MACs.
        public var teacher = TinyViTConfiguration(embedDims: [64, 128, 160, 192], depths: [1, 1, 2, 1], numHeads: [2, 4, 5, 6],
                                                  windowSizes: [4, 4, 2, 1], numClasses: 10, imageSize: 32)
        /// 69k parameters, 0.68M MACs.
        public var student = TinyViTConfiguration(embedDims: [16, 32, 32, 48], depths: [1, 1, 1, 1], numHeads: [1, 1, 1, 2],
                                                  windowSizes: [4, 4, 2, 1], numClasses: 10, imageSize: 32)
        public init() {}
    }

    /// One student's outcome and cost.
    public struct StudentResult: Sendable {
        public var evaluation: Evaluation
        /// Training wall seconds (evaluation excluded) and process CPU seconds over the run.
        public var trainSeconds: Double
        public var cpuSeconds: Double
        public var imagesPerSecond: Double
        /// The online teacher's share of step time (0 for the others).
        public var teacherShare: Double
        /// (training seconds, evaluation top-1) after each evaluated epoch.
        public var curve: [(seconds: Double, top1: Double)]
    }

    public struct Result: Sendable {
        /// The digits CSV or the image store.
        public var images: String
        public var seed: UInt64
        public var validation: Bool
        public var teacher: Evaluation
        /// The given teacher's weights (``Options/teacherWeights``); nil when the job trained its teacher.
        public var teacherWeights: String?
        public var teacherParameters: Int
        public var teacherMACs: Int
        public var teacherTrainSeconds: Double
        public var studentParameters: Int
        public var studentMACs: Int
        public var hard: StudentResult
        public var online: StudentResult
        public var shards: StudentResult
        public var bytesPerRecord: Double
        public var records: Int
        public var k: Int
        public var verifiedClean: Bool
        /// Wall seconds by stage.
        public var seconds: [String: Double]
    }

    /// Runs the job on the digits for `options.seed` in `dir`.
    public static func run(digitsCSV: String, outputDirectory dir: String, options: Options,
                           log: (String) -> Void = { print($0) },
                           progress: ((String, TrainProgress) -> Void)? = nil) throws -> Result {
        try run(images: .digits(csv: digitsCSV), outputDirectory: dir, options: options, log: log, progress: progress)
    }

    /// Runs the job on `images` for `options.seed` in `dir`.
    public static func run(images: Images, outputDirectory dir: String, options original: Options,
                           log: (String) -> Void = { print($0) },
                           progress: ((String, TrainProgress) -> Void)? = nil) throws -> Result {
        var options = original
        var seconds: [String: Double] = [:]
        func timed<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
            let t0 = Date(); defer { seconds[name] = Date().timeIntervalSince(t0) }
            return try body()
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let store: ImageStore
        switch images {
        case let .digits(csv):
            store = try timed("import") { try importDigits(csv, into: dir, options: options) }
        case let .store(path):
            store = try labelledStore(path)
            options.teacher.numClasses = store.classCount
            options.student.numClasses = store.classCount
        }
        let split = options.validationFraction > 0 ? "validation" : "held-out"
        try ModelArchitecture.write(options.teacher, to: dir + "/teacher-arch.json")
        try ModelArchitecture.write(options.student, to: dir + "/student-arch.json")
        func trainOptions(_ epochs: Int, lr: Float, seed: UInt64) -> TrainOptions {
            TrainOptions(epochs: epochs, batchSize: options.batchSize, learningRate: lr, minLearningRate: lr / 100,
                         warmupEpochs: 1, weightDecay: options.weightDecay, clip: 5, dropPath: 0, layerDecay: 1, seed: seed,
                         heldOutFraction: options.heldOutFraction, validationFraction: options.validationFraction)
        }
        let seed = options.seed
        let teacher: TinyViT
        let teacherEval: Evaluation
        var teacherTrainSeconds = 0.0
        if let weights = options.teacherWeights {
            teacher = try TinyViT(options.teacher)
            do { try teacher.load(contentsOf: URL(fileURLWithPath: weights)) } catch {
                throw DistillError("\(weights): [bad_weights] not weights of the teacher architecture: \(error)")
            }
            let evaluation = DataSplit(store: store, heldOutFraction: options.heldOutFraction,
                                       validationFraction: options.validationFraction).evaluation
            teacherEval = try timed("teacher evaluation") { try Trainer.evaluate(model: teacher, store: store, indices: evaluation) }
            log(String(format: "teacher (%d params, given weights %@): %@ top-1 %.2f%%", teacher.parameterCount, weights, split,
                       teacherEval.top1 * 100))
        } else {
            let teacherTrainer = try Trainer(store: store, views: .recipe(options.teacherRecipe, seed: seed ^ 0x7EAC), targets: .hardLabels,
                                             configuration: options.teacher,
                                             options: trainOptions(options.teacherEpochs, lr: options.teacherLearningRate, seed: seed),
                                             runDirectory: dir + "/teacher")
            let teacherSummary = try timed("teacher training") {
                try teacherTrainer.run(evaluateEvery: 0) { progress?("teacher", $0) }
            }
            guard let evaluation = teacherSummary.lastEvaluation else { throw DistillError("[internal] the teacher was not evaluated") }
            teacher = teacherTrainer.model
            teacherEval = evaluation
            teacherTrainSeconds = teacherSummary.trainSeconds
            log(String(format: "teacher (%d params, hard labels, %d epochs): %@ top-1 %.2f%%", teacher.parameterCount,
                       options.teacherEpochs, split, teacherEval.top1 * 100))
        }
        let passOptions = TeacherPass.Options(epochs: options.studentEpochs, k: options.k, seed: seed, batchSize: 64,
                                              recipe: options.studentRecipe, heldOutFraction: options.heldOutFraction,
                                              validationFraction: options.validationFraction)
        let pass = try timed("teacher pass") {
            try TeacherPass.run(store: store, teacher: teacher, outputDirectory: dir + "/shards", options: passOptions,
                                teacherName: "demo-teacher")
        }
        let report = timed("verify") { ShardVerifier().verifyDataset(directory: dir + "/shards") }
        log(String(format: "teacher pass: %d records, %.1f bytes/record, verify: %@", pass.records, pass.bytesPerRecord,
                   report.isClean ? "clean" : "\(report.problems.count) problems"))
        let evaluateEvery = max(1, (options.studentEpochs + options.curvePoints - 1) / max(1, options.curvePoints))
        func student(_ name: String, views: ViewSource, targets: TargetSource, lr: Float) throws -> StudentResult {
            let trainer = try Trainer(store: store, views: views, targets: targets, configuration: options.student,
                                      options: trainOptions(options.studentEpochs, lr: lr, seed: seed ^ 0x57D),
                                      runDirectory: dir + "/student-" + name)
            let summary = try timed("student " + name) {
                try trainer.run(evaluateEvery: evaluateEvery) { progress?("student (\(name))", $0) }
            }
            guard let evaluation = summary.lastEvaluation else { throw DistillError("[internal] student \(name) was not evaluated") }
            let curve = summary.rows.compactMap { row in row.top1.flatMap { t in row.trainSeconds.map { ($0, t) } } }
            let images = Double(summary.steps * options.batchSize)
            log(String(format: "student (%@): %@ top-1 %.2f%%, %.1f s training", name, split, evaluation.top1 * 100, summary.trainSeconds))
            return StudentResult(evaluation: evaluation, trainSeconds: summary.trainSeconds,
                                 cpuSeconds: summary.cpuSeconds,
                                 imagesPerSecond: images / max(summary.trainSeconds, 1e-9), teacherShare: summary.teacherShare,
                                 curve: curve)
        }
        let drawn = ViewSource.recipe(options.studentRecipe, seed: seed)
        let hard = try student("hard", views: drawn, targets: .hardLabels, lr: options.hardLearningRate)
        let online = try student("online", views: drawn,
                                 targets: .onlineTeacher(TinyViTTeacher(teacher), name: "demo-teacher", k: nil),
                                 lr: options.distillLearningRate)
        let shards = try student("shards", views: .replay(try ShardDataset(directory: dir + "/shards")), targets: .storedSoftLabels(),
                                 lr: options.distillLearningRate)
        let studentModel = try TinyViT(options.student)
        return Result(images: images.name, seed: seed, validation: options.validationFraction > 0, teacher: teacherEval,
                      teacherWeights: options.teacherWeights, teacherParameters: teacher.parameterCount,
                      teacherMACs: options.teacher.multiplyAccumulates(), teacherTrainSeconds: teacherTrainSeconds,
                      studentParameters: studentModel.parameterCount, studentMACs: options.student.multiplyAccumulates(),
                      hard: hard, online: online, shards: shards, bytesPerRecord: pass.bytesPerRecord, records: pass.records,
                      k: options.k, verifiedClean: report.isClean, seconds: seconds)
    }

    /// A store the job can train and evaluate on: at least two classes and a label on every image.
    static func labelledStore(_ path: String) throws -> ImageStore {
        let store = try ImageStore(path: path)
        guard store.classCount >= 2 else {
            throw DistillError("\(path): [usage] the store has \(store.classCount) classes; the main job needs labelled images of at least 2 classes")
        }
        if let i = store.labels().firstIndex(where: { $0 < 0 }) {
            throw DistillError("\(path): image \(i) (key \(try store.key(at: i))): [no_label] the main job needs a label on every image")
        }
        return store
    }

    /// The digits as an image store in `dir`.
    static func importDigits(_ csv: String, into dir: String, options: Options) throws -> ImageStore {
        let storePath = dir + "/digits.tis"
        if let limit = options.maxImages {
            let writer = try ImageStoreWriter(path: storePath, classNames: DigitsImport.classNames)
            for digit in try DigitsImport.read(csv, upscale: options.upscale).prefix(limit) {
                try writer.append(key: digit.key, label: digit.label, image: digit.image)
            }
            _ = try writer.finish()
        } else {
            _ = try DigitsImport.importStore(from: csv, to: storePath, upscale: options.upscale)
        }
        return try ImageStore(path: storePath)
    }
}
