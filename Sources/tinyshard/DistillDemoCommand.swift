import ArgumentParser
import Augment
import Distill
import Foundation
import ImageStore
import Reports

/// `tinyshard distill-demo`: the whole pipeline on the digits, or on any labelled image store (`--images`).
struct DistillDemo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill-demo",
        abstract: "Teacher on hard labels, teacher pass, verify, then one student three ways: hard labels, online teacher, from shards (digits, or --images STORE).",
        discussion: """
            Prints one table (top-1/top-5, student training wall and CPU seconds, img/s, the teacher's share of the \
            online run, shard bytes/record, paired differences) and writes OUT/summary.json, OUT/table.md and \
            OUT/students.svg (accuracy vs training time). --seeds 0,1,2,3,4 repeats teacher and students per seed \
            (OUT/seed-N/) and reports mean ± std and per-seed paired differences. --validation trains without and \
            evaluates on a validation part of the training split: use it, never the held-out split, to choose options. \
            --images STORE runs the same job on an image store (tinyshard images import) instead of the digits: every \
            image labelled, the models' class count the store's, everything else as with the digits. \
            --eval-images STORE evaluates every model on a real test set (its classes the training store's) and trains \
            on the whole training store. After the pass the job analyses it (agreement with the labels, hard samples, \
            probability mass by k: OUT/analysis/) and measures how closely the hard-label and the shards students' \
            class correlations follow the teacher's. --k-sweep 1,2,3,5,10 stores K = the largest k once and trains one \
            more student per k on the stored top-k (OUT/k-sweep.svg). --hard-samples SHARE trains the hard-label and \
            the shards students again without the pass's hard samples. \
            --dataset fashion-mnist is the whole Fashion-MNIST study in one flag: Debian's dataset-fashion-mnist \
            imported into --cache (the students' 15,000 images, the teacher's other 45,000, the official 10,000 test \
            images), the t11m teacher trained once on the 45,000 (30 epochs, lr 2e-3, recipe fashion) and cached under \
            its fingerprint, the s69k student (20 epochs, lr 1.2e-2, K = 5), every model on the test set; other flags \
            still override.
            """)

    @Option(help: "Output folder.") var out: String
    @Option(help: "The digits CSV (default: the copy in this repository, Tools/data/digits.csv.gz, when run from the package root).")
    var digits: String?
    @Option(help: "An image store to run on instead of the digits (every image labelled).") var images: String?
    @Option(help: "Epochs of the teacher.") var teacherEpochs: Int?
    @Option(help: "Epochs of each student (and of shards written).") var epochs: Int?
    @Option(help: "Probabilities stored per record.") var k: Int?
    @Option(help: "One seed.") var seed: UInt64 = 0
    @Option(help: "Several seeds, comma-separated (e.g. 0,1,2,3,4); overrides --seed.") var seeds: String?
    @Flag(help: "Evaluate on a validation part of the training split (20%, disjoint from the held-out split).") var validation = false
    @Option(help: "The teacher's training recipe (preset or JSON file).") var teacherRecipe: String?
    @Option(help: "The views of the teacher pass and the students (preset or JSON file).") var recipe: String?
    @Option(help: "The teacher's peak learning rate.") var teacherLr: Float?
    @Option(help: "The distilled students' peak learning rate (online and shards).") var lr: Float?
    @Option(help: "The hard-label student's peak learning rate.") var hardLr: Float?
    @Option(help: "Weight decay of every run.") var weightDecay: Float?
    @Option(help: "The teacher's CONFIG.json.") var teacherArch: String?
    @Option(help: "Use these teacher weights (safetensors, architecture --teacher-arch) instead of training a teacher on the store.")
    var teacherWeights: String?
    @Option(help: "The student's CONFIG.json.") var studentArch: String?
    @Option(help: "Evaluate every model on this image store (a real test set; its classes the training store's) instead of the held-out split; the whole training store trains.")
    var evalImages: String?
    @Option(help: "One more student per k from one pass of K = the largest k (or --k if larger), e.g. 1,2,3,5,10: accuracy and bytes/record per k.")
    var kSweep: String?
    @Option(help: "Train the hard-label and the shards students again without the pass's hard samples (label outside the teacher's top 5 in at least this share of their records).")
    var hardSamples: Double?
    @Flag(help: "Skip the analysis of the pass and the students' class-correlation similarity.") var noAnalysis = false
    @Option(help: "A preset study instead of the digits: fashion-mnist (Debian's dataset-fashion-mnist).") var dataset: String?
    @Option(help: "--dataset: where the imported stores and the cached teacher go (default ~/.cache/tinyshard/fashion-mnist).")
    var cache: String?
    @Option(help: "--dataset fashion-mnist: the folder of the IDX files (default /usr/share/datasets/fashion-mnist).")
    var datasetDir: String?
    @Option(help: "--dataset: the first N training images are the students' store, the rest the teacher's (default 15000).")
    var studentImages: Int?

    func run() throws {
        let input: Reports.DistillDemo.Images
        var classes = 10
        var options = Reports.DistillDemo.Options()
        if let dataset {
            guard dataset == "fashion-mnist" else { throw CLIFailure("[usage] --dataset knows fashion-mnist, got \"\(dataset)\"") }
            guard images == nil, digits == nil else { throw CLIFailure("[usage] --dataset brings its own images: not with --images or --digits") }
            let folder = cache ?? FashionMNIST.defaultCache
            let stores = try DistillCLI.run {
                try FashionMNIST.prepare(source: datasetDir ?? FashionMNIST.packageDirectory, cache: folder,
                                         studentImages: studentImages ?? FashionMNIST.studentImages)
            }
            options = FashionMNIST.options(stores: stores, cache: folder)
            input = .store(path: stores.students)
        } else if let images {
            guard digits == nil else { throw CLIFailure("[usage] give --images STORE or --digits CSV, not both") }
            guard cache == nil, datasetDir == nil, studentImages == nil else {
                throw CLIFailure("[usage] --cache, --dataset-dir and --student-images go with --dataset")
            }
            let store = try DistillCLI.run { try ImageStore(path: images, pixelCheck: .never) }
            classes = store.classCount
            input = .store(path: images)
        } else {
            guard cache == nil, datasetDir == nil, studentImages == nil else {
                throw CLIFailure("[usage] --cache, --dataset-dir and --student-images go with --dataset")
            }
            let csv = digits ?? "Tools/data/digits.csv.gz"
            guard FileManager.default.fileExists(atPath: csv) else {
                throw CLIFailure("\(csv): [io] the digits CSV is not there; run from the package root or pass --digits")
            }
            input = .digits(csv: csv)
        }
        if let teacherEpochs { options.teacherEpochs = teacherEpochs }
        if let epochs { options.studentEpochs = epochs }
        if let k { options.k = k }
        if let teacherLr { options.teacherLearningRate = teacherLr }
        if let lr { options.distillLearningRate = lr }
        if let hardLr { options.hardLearningRate = hardLr }
        if let weightDecay { options.weightDecay = weightDecay }
        if validation {
            options.validationFraction = 0.2
            options.evaluationImages = nil
        }
        if let evalImages {
            guard !validation else { throw CLIFailure("[usage] --validation and --eval-images are two evaluations: give one") }
            options.evaluationImages = evalImages
        }
        if let kSweep {
            let parsed = kSweep.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parsed.isEmpty, parsed.allSatisfy({ ($0 ?? 0) >= 1 }) else {
                throw CLIFailure("[usage] --k-sweep takes positive integers separated by commas, got \"\(kSweep)\"")
            }
            options.kSweep = parsed.map { $0! }
        }
        if let hardSamples {
            guard hardSamples > 0, hardSamples <= 1 else { throw CLIFailure("[usage] --hard-samples takes a share in (0, 1], got \(hardSamples)") }
            options.hardSampleShare = hardSamples
        }
        if noAnalysis { options.analysis = false }
        if let teacherWeights {
            guard teacherArch != nil else { throw CLIFailure("[usage] --teacher-weights needs --teacher-arch (the weights' architecture)") }
            guard teacherEpochs == nil, teacherLr == nil, teacherRecipe == nil else {
                throw CLIFailure("[usage] --teacher-epochs, --teacher-lr and --teacher-recipe train a teacher; --teacher-weights gives one")
            }
            guard FileManager.default.fileExists(atPath: teacherWeights) else { throw CLIFailure("\(teacherWeights): [io] no such file") }
            options.teacherWeights = teacherWeights
        }
        try DistillCLI.run {
            if let teacherRecipe { options.teacherRecipe = try NamedRecipe.load(teacherRecipe) }
            if let recipe { options.studentRecipe = try NamedRecipe.load(recipe) }
            if let teacherArch { options.teacher = try ModelArchitecture.configuration(teacherArch, numClasses: max(classes, 1)) }
            if let studentArch { options.student = try ModelArchitecture.configuration(studentArch, numClasses: max(classes, 1)) }
        }
        let seedList: [UInt64]
        if let seeds {
            let parsed = seeds.split(separator: ",").map { UInt64($0.trimmingCharacters(in: .whitespaces)) }
            guard !parsed.isEmpty, parsed.allSatisfy({ $0 != nil }), Set(parsed).count == parsed.count else {
                throw CLIFailure("[usage] --seeds takes distinct unsigned integers separated by commas, got \"\(seeds)\"")
            }
            seedList = parsed.map { $0! }
        } else {
            seedList = [seed]
        }
        let bar = ProgressBar()
        let start = Date()
        var results: [Reports.DistillDemo.Result] = []
        for s in seedList {
            var o = options
            o.seed = s
            let dir = seedList.count == 1 ? out : "\(out)/seed-\(s)"
            if seedList.count > 1 { print("== seed \(s) ==") }
            let result = try DistillCLI.run {
                try Reports.DistillDemo.run(images: input, outputDirectory: dir, options: o,
                                            log: { bar.finish(); print($0) }) { stage, p in
                    let done = Double(p.epoch * p.stepsPerEpoch + p.stepInEpoch) / Double(max(1, p.epochs * p.stepsPerEpoch))
                    bar.draw(done, String(format: "%@ epoch %d/%d loss %.4f lr %.2e %.0f img/s", stage, p.epoch + 1, p.epochs,
                                          p.loss, p.learningRate, p.imagesPerSecond))
                }
            }
            bar.finish()
            try DistillCLI.run {
                try DemoReport.writeSummary(DemoReport.summary(result), to: dir + "/summary.json")
                try DemoReport.svg(result).write(toFile: dir + "/students.svg", atomically: true, encoding: .utf8)
                if seedList.count == 1, !result.kSweep.isEmpty {
                    try DemoReport.kSweepSVG([result]).write(toFile: dir + "/k-sweep.svg", atomically: true, encoding: .utf8)
                }
            }
            results.append(result)
        }
        let table = DemoReport.table(results)
        print("")
        print(table, terminator: "")
        try DistillCLI.run {
            try table.write(toFile: out + "/table.md", atomically: true, encoding: .utf8)
            if seedList.count > 1 { try DemoReport.writeSummary(DemoReport.summary(results), to: out + "/summary.json") }
            if seedList.count > 1, !options.kSweep.isEmpty {
                try DemoReport.kSweepSVG(results).write(toFile: out + "/k-sweep.svg", atomically: true, encoding: .utf8)
            }
        }
        let stages = (results.last?.seconds ?? [:]).sorted { $0.key < $1.key }.map { String(format: "%@ %.0f s", $0.key, $0.value) }
        let files = ["summary.json", "table.md", "students.svg"] + (options.kSweep.isEmpty ? [] : ["k-sweep.svg"])
        print(String(format: "%.1f minutes (wall: depends on the machine's load); %@; stages of the last seed: %@", Date().timeIntervalSince(start) / 60,
                     "outputs in \(out) (\(files.joined(separator: ", ")))", stages.joined(separator: ", ")))
        if case .digits = input, let hint = DemoReport.digitsHint(results) { print(hint) }
    }
}
