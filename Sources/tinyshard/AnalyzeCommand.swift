import ArgumentParser
import Distill
import Foundation
import ImageStore
import Reports
import ShardFormat
import TinyViT

/// `tinyshard analyze`: what a teacher pass knows, from its shards (Spec/ANALYZE.md).
struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Agreement with the labels, hard samples, mass kept by each top-k and class correlations of a teacher pass.",
        discussion: """
            Reads every record of DATASET twice (epochs, shards by rank, ordinals) and writes OUT/analysis.json, \
            OUT/hard_samples.tsv and .json (images whose label is outside the teacher's top 5 in at least --hard-share \
            of their records, with the teacher's top classes by name), OUT/mass_by_k.tsv (mean and percentiles of the \
            probability kept by each top-k, the residual it leaves and the bytes per record it would cost: the table K \
            is chosen from), OUT/correlation.npy and OUT/correlation.svg (Pearson correlation between classes over \
            the teacher's dense soft labels, the TinyViT paper's Fig. 3), and OUT/hard_samples.png (a contact sheet of \
            the worst hard samples' views). --images gives the labels (agreement and hard samples need them; a pass \
            without parameters — converted official data — is analysed without views). --model W --arch A also \
            computes a trained student's class correlation on the same views and how closely it follows the teacher's.
            """)

    @Argument(help: "A dataset folder (a teacher pass).") var dataset: String
    @Option(help: "The image store the pass read (labels, class names and views).") var images: String?
    @Option(help: "Output folder.") var out: String
    @Option(help: "An image is hard when its label is outside the teacher's top 5 in at least this share of its records.") var hardShare = 0.5
    @Option(help: "A student's weights (safetensors) whose class correlation is compared with the teacher's.") var model: String?
    @Option(help: "The student's architecture (5m, 11m, 21m or CONFIG.json).") var arch: String?
    @Option(help: "Hard samples on the contact sheet (0: none).") var sheet = 32
    @Flag(help: "Print analysis.json instead of the summary.") var json = false

    func validate() throws {
        guard (0...1).contains(hardShare) else { throw ValidationError("--hard-share must be in 0...1") }
        guard (model == nil) == (arch == nil) else { throw ValidationError("--model and --arch go together") }
        guard model == nil || images != nil else { throw ValidationError("--model needs --images (the student sees the replayed views)") }
        guard sheet >= 0 else { throw ValidationError("--sheet must be ≥ 0") }
    }

    func run() throws {
        let store = try images.map { path in try DistillCLI.run { try ImageStore(path: path, pixelCheck: .never) } }
        let bar = ProgressBar()
        var options = PassAnalysis.Options()
        options.hardShare = hardShare
        let (analysis, result) = try DistillCLI.run { () throws -> (PassAnalysis, AnalysisResult) in
            let analysis = try PassAnalysis(dataset: try ShardDataset(directory: dataset), store: store, options: options)
            var result = try analysis.run { done, total in bar.draw(Double(done) / Double(max(1, total)), "analyze \(done)/\(total) records") }
            if let model, let arch, let store {
                let student = try DistillCLI.loadTeacher(weights: model, arch: arch, store: store, imageSize: nil)
                result.studentSimilarity = try StudentCorrelation.similarity(model: student, store: store, analysis: analysis, teacher: result) { done, total in
                    bar.draw(Double(done) / Double(max(1, total)), "student \(done)/\(total) views")
                }
            }
            return (analysis, result)
        }
        bar.finish()
        let names = store?.classNames ?? []
        var final = result
        final.skipped += try contactSheet(result, analysis: analysis, store: store)
        try DistillCLI.run { try AnalysisReport.write(final, to: out, names: names) }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(final), as: UTF8.self))
        } else {
            print(AnalysisReport.summary(final, names: names), terminator: "")
            print("files in \(out): analysis.json, hard_samples.tsv, hard_samples.json, mass_by_k.tsv, correlation.npy, correlation.svg"
                  + (FileManager.default.fileExists(atPath: out + "/hard_samples.png") ? ", hard_samples.png" : ""))
        }
    }

    /// The worst hard samples' views (each image's first record holding it), or why there is none.
    private func contactSheet(_ result: AnalysisResult, analysis: PassAnalysis, store: ImageStore?) throws -> [String] {
        guard sheet > 0, !result.hardSamples.isEmpty else { return [] }
        guard let store else { return [] }
        guard analysis.dataset.shards.allSatisfy({ if case .params = $0.schema.augmentation { return true }; return false }) else {
            return ["the hard samples' contact sheet: the records carry no views (augmentation is not params)"]
        }
        let renderer = try DistillCLI.run { try RecordRenderer(store: store, dataset: analysis.dataset) }
        var records: [RenderedRecord] = []
        for sample in result.hardSamples.prefix(sheet) {
            for epoch in analysis.dataset.epochs where try analysis.dataset.locate(epoch: epoch, key: sample.key) != nil {
                records.append(try DistillCLI.run { try renderer.render(epoch: epoch, key: sample.key) })
                break
            }
        }
        let image = try DistillCLI.run { try ContactSheet.draw(records, classNames: store.classNames) }
        let bytes = try DistillCLI.run { try PNGCodec.encode(image) }
        do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try Data(bytes).write(to: URL(fileURLWithPath: out + "/hard_samples.png"), options: .atomic)
        } catch {
            throw CLIFailure(file: out + "/hard_samples.png", code: "io", "cannot write the contact sheet: \(error.localizedDescription)")
        }
        return []
    }
}
