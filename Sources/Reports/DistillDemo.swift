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
        /// An image store every model (teacher and students) is evaluated on — a real test set — instead of the
        /// held-out split; its classes must be the training store's (same count, same names when both name them).
        /// The held-out split is then not needed: every image of the training store trains.
        public var evaluationImages: String?
        /// The store the teacher trains on (default: the students' store) — e.g. more data than the student
        /// gets, keys disjoint from it. Its classes must be the students' store's.
        public var teacherImages: String?
        /// The seed of the teacher's training (default: the run's): a fixed one lets every seed share one teacher.
        public var teacherSeed: UInt64?
        /// A folder of trained teachers, each in a folder named by the fingerprint of everything that decides
        /// it (its store's content checksum, architecture, epochs, learning rates, recipe hash, seed, …): a
        /// teacher whose fingerprint is there is loaded instead of trained.
        public var teacherCache: String?
        /// One more student per k from the same pass, on the stored top-k (`.storedSoftLabels(top: k)`); the
        /// pass stores K = max(k, the largest k here).
        public var kSweep: [Int] = []
        /// After the pass, leave out the hard samples (label outside the teacher's top-n in at least this share
        /// of their records, Spec/ANALYZE.md 2) and train two more students without them: on hard labels and on
        /// stored labels.
        public var hardSampleShare: Double?
        /// Analyse the pass (agreement, hard samples, mass by k) and measure the hard-label and the shards
        /// students' class-correlation similarity to the teacher (Spec/ANALYZE.md 4).
        public var analysis = true
        public init() {}
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
        let testStore = try options.evaluationImages.map { try matchingStore($0, to: store, what: "evaluation") }
        if testStore != nil {
            guard options.validationFraction == 0 else {
                throw DistillError(.usage, "a validation split and a test store are two evaluations: give one")
            }
            options.heldOutFraction = 0
        }
        let split = testStore != nil ? "test" : options.validationFraction > 0 ? "validation" : "held-out"
        let passK = max(options.k, options.kSweep.max() ?? 0)
        guard options.kSweep.allSatisfy({ $0 >= 1 }), options.k >= 1, passK <= store.classCount else {
            throw DistillError(.invalidArgument, "every k must be in 1...\(store.classCount) (the classes), got \(([options.k] + options.kSweep).map(String.init).joined(separator: ", "))")
        }
        if let share = options.hardSampleShare, !(share > 0 && share <= 1) {
            throw DistillError(.invalidArgument, "the hard-sample share must be in (0, 1], got \(share)")
        }
        try ModelArchitecture.write(options.teacher, to: dir + "/teacher-arch.json")
        try ModelArchitecture.write(options.student, to: dir + "/student-arch.json")
        func trainOptions(_ epochs: Int, lr: Float, seed: UInt64) -> TrainOptions {
            TrainOptions(epochs: epochs, batchSize: options.batchSize, learningRate: lr, minLearningRate: lr / 100,
                         warmupEpochs: 1, weightDecay: options.weightDecay, clip: 5, dropPath: 0, layerDecay: 1, seed: seed,
                         heldOutFraction: options.heldOutFraction, validationFraction: options.validationFraction)
        }
        let seed = options.seed
        let evaluationImages = testStore.map { ($0, Array(0..<$0.count)) }
            ?? (store, DataSplit(store: store, heldOutFraction: options.heldOutFraction, validationFraction: options.validationFraction).evaluation)
        func evaluate(_ model: TinyViT) throws -> Evaluation {
            try Trainer.evaluate(model: model, store: evaluationImages.0, indices: evaluationImages.1)
        }
        let teacher: TinyViT
        var teacherEval: Evaluation
        var teacherTrainSeconds = 0.0
        var teacherCached: String?
        if let weights = options.teacherWeights {
            teacher = try TinyViT(options.teacher)
            do { try teacher.load(contentsOf: URL(fileURLWithPath: weights)) } catch {
                throw DistillError(.badWeights, "not weights of the teacher architecture: \(error)", file: weights)
            }
            teacherEval = try timed("teacher evaluation") { try evaluate(teacher) }
            log(String(format: "teacher (%d params, given weights %@): %@ top-1 %.2f%%", teacher.parameterCount, weights, split,
                       teacherEval.top1 * 100))
        } else {
            let teacherStore = try options.teacherImages.map { try matchingStore($0, to: store, what: "teacher's") } ?? store
            let teacherSeed = options.teacherSeed ?? seed
            let teacherOptions = trainOptions(options.teacherEpochs, lr: options.teacherLearningRate, seed: teacherSeed)
            let views = ViewSource.recipe(options.teacherRecipe, seed: teacherSeed ^ 0x7EAC)
            var runDirectory = dir + "/teacher"
            var cached: TeacherCache.Entry?
            if let cache = options.teacherCache {
                let entry = try TeacherCache.entry(in: cache, store: teacherStore, configuration: options.teacher, options: teacherOptions,
                                                   recipe: options.teacherRecipe)
                runDirectory = entry.folder
                if entry.isComplete { cached = entry }
            }
            if let cached {
                teacher = try TinyViT(options.teacher)
                try teacher.load(contentsOf: URL(fileURLWithPath: cached.weights))
                teacherTrainSeconds = cached.trainSeconds
                teacherCached = cached.folder
                teacherEval = try timed("teacher evaluation") { try evaluate(teacher) }
                log(String(format: "teacher (%d params, hard labels, %d epochs, cached in %@): %@ top-1 %.2f%%", teacher.parameterCount,
                           options.teacherEpochs, cached.folder, split, teacherEval.top1 * 100))
            } else {
                let sameStore = teacherStore === store
                let teacherTrainer = try Trainer(store: teacherStore, views: views, targets: .hardLabels, configuration: options.teacher,
                                                 options: teacherOptions, runDirectory: runDirectory,
                                                 evaluationStore: testStore)
                let teacherSummary = try timed("teacher training") {
                    try teacherTrainer.run(evaluateEvery: 0) { progress?("teacher", $0) }
                }
                guard let evaluation = teacherSummary.lastEvaluation else { throw DistillError(.internal, "the teacher was not evaluated") }
                teacher = teacherTrainer.model
                teacherEval = evaluation
                // A teacher of another store without a test store was evaluated on its own held-out split: the students' is the one.
                if !sameStore && testStore == nil { teacherEval = try timed("teacher evaluation") { try evaluate(teacher) } }
                teacherTrainSeconds = teacherSummary.trainSeconds
                if let cache = options.teacherCache {
                    let entry = try TeacherCache.entry(in: cache, store: teacherStore, configuration: options.teacher, options: teacherOptions,
                                                       recipe: options.teacherRecipe)
                    try entry.complete(trainSeconds: teacherTrainSeconds, evaluation: teacherEval, split: split)
                }
                log(String(format: "teacher (%d params, hard labels, %d epochs%@): %@ top-1 %.2f%%", teacher.parameterCount,
                           options.teacherEpochs, options.teacherCache == nil ? "" : ", cached in " + runDirectory, split, teacherEval.top1 * 100))
            }
        }
        let passOptions = TeacherPass.Options(epochs: options.studentEpochs, k: passK, seed: seed, batchSize: 64,
                                              recipe: options.studentRecipe, heldOutFraction: options.heldOutFraction,
                                              validationFraction: options.validationFraction)
        let pass = try timed("teacher pass") {
            try TeacherPass.run(store: store, teacher: teacher, outputDirectory: dir + "/shards", options: passOptions,
                                teacherName: "demo-teacher")
        }
        let report = timed("verify") { ShardVerifier().verifyDataset(directory: dir + "/shards") }
        log(String(format: "teacher pass: %d records, K = %d, %.1f bytes/record, verify: %@", pass.records, passK, pass.bytesPerRecord,
                   report.isClean ? "clean" : "\(report.problems.count) problems"))
        var analysis: PassAnalysis?
        var analysisResult: AnalysisResult?
        if options.analysis || options.hardSampleShare != nil {
            var analysisOptions = PassAnalysis.Options()
            analysisOptions.hardShare = options.hardSampleShare ?? 0.5
            let made = try PassAnalysis(dataset: try ShardDataset(directory: dir + "/shards"), store: store, options: analysisOptions)
            let result = try timed("analysis") { try made.run() }
            try AnalysisReport.write(result, to: dir + "/analysis", names: store.classNames)
            analysis = made
            analysisResult = result
            log(String(format: "analysis: the teacher's top-1 is the label on %.2f%% of the records, top-%d on %.2f%%; %d hard images (%.2f%%, share ≥ %g); top-1 keeps %.1f%% of the mass",
                       (result.overall?.top1 ?? 0) * 100, result.n, (result.overall?.topN ?? 0) * 100, result.hardSamples.count,
                       (result.hardImageShare ?? 0) * 100, analysisOptions.hardShare, (result.massByK.first?.mean ?? 0) * 100))
        }
        let evaluateEvery = max(1, (options.studentEpochs + options.curvePoints - 1) / max(1, options.curvePoints))
        func student(_ name: String, views: ViewSource, targets: TargetSource, lr: Float,
                     excluding: Set<Int> = []) throws -> (StudentResult, TinyViT) {
            let trainer = try Trainer(store: store, views: views, targets: targets, configuration: options.student,
                                      options: trainOptions(options.studentEpochs, lr: lr, seed: seed ^ 0x57D),
                                      runDirectory: dir + "/student-" + name, excluding: excluding, evaluationStore: testStore)
            let summary = try timed("student " + name) {
                try trainer.run(evaluateEvery: evaluateEvery) { progress?("student (\(name))", $0) }
            }
            guard let evaluation = summary.lastEvaluation else { throw DistillError(.internal, "student \(name) was not evaluated") }
            let curve = summary.rows.compactMap { row in row.top1.flatMap { t in row.trainSeconds.map { ($0, t) } } }
            let images = Double(summary.steps * options.batchSize)
            log(String(format: "student (%@): %@ top-1 %.2f%%, %.1f s training", name, split, evaluation.top1 * 100, summary.trainSeconds))
            return (StudentResult(evaluation: evaluation, trainSeconds: summary.trainSeconds,
                                  cpuSeconds: summary.cpuSeconds,
                                  imagesPerSecond: images / max(summary.trainSeconds, 1e-9), teacherShare: summary.teacherShare,
                                  curve: curve), trainer.model)
        }
        let drawn = ViewSource.recipe(options.studentRecipe, seed: seed)
        func replay() throws -> ViewSource { .replay(try ShardDataset(directory: dir + "/shards")) }
        func stored(_ k: Int) -> TargetSource { .storedSoftLabels(top: k < passK ? k : nil) }
        let (hard, hardModel) = try student("hard", views: drawn, targets: .hardLabels, lr: options.hardLearningRate)
        let (online, _) = try student("online", views: drawn,
                                      targets: .onlineTeacher(TinyViTTeacher(teacher), name: "demo-teacher", k: nil),
                                      lr: options.distillLearningRate)
        let (shards, shardsModel) = try student("shards", views: try replay(), targets: stored(options.k), lr: options.distillLearningRate)
        var kSweep: [KPoint] = []
        let measured = options.kSweep.isEmpty || analysisResult != nil ? nil
            : try TopKBytes.measure(try ShardDataset(directory: dir + "/shards"), records: PassAnalysis.Options().bytesSampleRecords)
        for k in Set(options.kSweep).sorted() {
            let result = k == options.k ? shards
                : try student("shards-k\(k)", views: try replay(), targets: stored(k), lr: options.distillLearningRate).0
            let bytes = analysisResult.flatMap { k <= $0.massByK.count ? $0.massByK[k - 1].bytesPerRecord : nil }
                ?? measured.flatMap { k <= $0.count ? $0[k - 1] : nil }
            kSweep.append(KPoint(k: k, student: result, bytesPerRecord: bytes))
        }
        var hardStudy: HardSampleStudy?
        if let share = options.hardSampleShare, let result = analysisResult {
            var excluded = Set<Int>()
            for sample in result.hardSamples { if let index = store.index(ofKey: sample.key) { excluded.insert(index) } }
            log(String(format: "hard samples (share ≥ %g): leaving out %d images (%.2f%%)", share, excluded.count, (result.hardImageShare ?? 0) * 100))
            let (hardWithout, _) = try student("hard-without-hard-samples", views: drawn, targets: .hardLabels,
                                               lr: options.hardLearningRate, excluding: excluded)
            let (shardsWithout, _) = try student("shards-without-hard-samples", views: try replay(), targets: stored(options.k),
                                                 lr: options.distillLearningRate, excluding: excluded)
            hardStudy = HardSampleStudy(threshold: share, excluded: excluded.count, share: result.hardImageShare ?? 0,
                                        hardWithout: hardWithout, shardsWithout: shardsWithout)
        }
        var summary: AnalysisSummary?
        if options.analysis, let analysis, let result = analysisResult {
            var similarity: [String: Double] = [:]
            try timed("class correlation") {
                for (name, model) in [("hard", hardModel), ("shards", shardsModel)] {
                    similarity[name] = try StudentCorrelation.similarity(model: model, store: store, analysis: analysis, teacher: result)
                }
            }
            log(String(format: "class-correlation similarity to the teacher: hard labels %.3f, from shards %.3f",
                       similarity["hard"] ?? 0, similarity["shards"] ?? 0))
            summary = AnalysisSummary(agreementTop1: result.overall?.top1 ?? 0, agreementTopN: result.overall?.topN ?? 0, n: result.n,
                                      hardThreshold: result.hardShareThreshold, hardImageShare: result.hardImageShare ?? 0,
                                      hardImages: result.hardSamples.count, massByK: result.massByK, similarity: similarity)
        }
        let studentModel = try TinyViT(options.student)
        return Result(images: images.name, seed: seed, validation: options.validationFraction > 0, split: split,
                      evaluationImages: options.evaluationImages, teacherCached: teacherCached, kSweep: kSweep,
                      hardSamples: hardStudy, analysis: summary, teacher: teacherEval,
                      teacherWeights: options.teacherWeights, teacherParameters: teacher.parameterCount,
                      teacherMACs: options.teacher.multiplyAccumulates(), teacherTrainSeconds: teacherTrainSeconds,
                      studentParameters: studentModel.parameterCount, studentMACs: options.student.multiplyAccumulates(),
                      hard: hard, online: online, shards: shards, bytesPerRecord: pass.bytesPerRecord, records: pass.records,
                      k: options.k, passK: passK, verifiedClean: report.isClean, seconds: seconds)
    }

    /// A labelled store (``labelledStore(_:)``) whose classes are `reference`'s: the same count, the same names when
    /// both name them.
    static func matchingStore(_ path: String, to reference: ImageStore, what: String) throws -> ImageStore {
        let other = try labelledStore(path)
        guard other.classCount == reference.classCount else {
            throw DistillError(.mismatch, "the \(what) store has \(other.classCount) classes, the training store \(reference.path) \(reference.classCount)", file: path)
        }
        guard reference.classNames.isEmpty || other.classNames.isEmpty || reference.classNames == other.classNames else {
            throw DistillError(.mismatch, "the \(what) store names its classes \(other.classNames.prefix(3).joined(separator: ", "))…, the training store \(reference.classNames.prefix(3).joined(separator: ", "))…", file: path)
        }
        return other
    }

    /// A store the job can train and evaluate on: at least two classes and a label on every image.
    static func labelledStore(_ path: String) throws -> ImageStore {
        let store = try ImageStore(path: path)
        guard store.classCount >= 2 else {
            throw DistillError(.usage, "the store has \(store.classCount) classes; the main job needs labelled images of at least 2 classes", file: path)
        }
        if let i = store.labels().firstIndex(where: { $0 < 0 }) {
            throw DistillError(.noLabel, "the main job needs a label on every image", file: path, item: "image \(i) (key \(try store.key(at: i)))")
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
