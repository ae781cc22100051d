import ArgumentParser
import Distill
import Foundation

/// `tinyshard distill-demo`: the whole pipeline on the digits.
struct DistillDemo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distill-demo",
        abstract: "Teacher on hard labels, teacher pass, verify, distilled student vs the same student on hard labels (digits).")

    @Option(help: "Output folder (store, teacher, shards, three runs).") var out: String
    @Option(help: "The digits CSV (the copy in this repository when run from the package root).")
    var digits = "Tools/data/digits.csv.gz"
    @Option(help: "Epochs of the teacher.") var teacherEpochs = 30
    @Option(help: "Epochs of each student (and of shards written).") var epochs = 30
    @Option var k = 5
    @Option var seed: UInt64 = 0

    func run() throws {
        guard FileManager.default.fileExists(atPath: digits) else {
            throw CLIFailure("\(digits): [io] the digits CSV is not there; run from the package root or pass --digits")
        }
        var options = Distill.DistillDemo.Options()
        options.teacherEpochs = teacherEpochs
        options.studentEpochs = epochs
        options.k = k
        options.seed = seed
        let bar = DistillCLI.Bar()
        let start = Date()
        let result = try DistillCLI.run {
            try Distill.DistillDemo.run(digitsCSV: digits, outputDirectory: out, options: options,
                                        log: { bar.finish(); print($0) }) { stage, p in
                let done = Double(p.epoch * p.stepsPerEpoch + p.stepInEpoch) / Double(max(1, p.epochs * p.stepsPerEpoch))
                bar.draw(done, String(format: "%@ epoch %d/%d loss %.4f lr %.2e %.0f img/s", stage, p.epoch + 1, p.epochs,
                                      p.loss, p.learningRate, p.imagesPerSecond))
            }
        }
        bar.finish()
        print(String(format: "held-out top-1: teacher %.2f%% (%d params) | distilled student %.2f%% | hard-label student %.2f%% (%d params)",
                     result.teacher.top1 * 100, result.teacherParameters, result.distilled.top1 * 100, result.hardLabel.top1 * 100,
                     result.studentParameters))
        print(String(format: "shards: %d records, %.1f bytes/record, verify %@; held-out images: %d",
                     result.records, result.bytesPerRecord, result.verifiedClean ? "clean" : "FAILED", result.teacher.count))
        let stages = result.seconds.sorted { $0.key < $1.key }.map { String(format: "%@ %.0f s", $0.key, $0.value) }.joined(separator: ", ")
        print(String(format: "%.1f minutes (%@)", Date().timeIntervalSince(start) / 60, stages))
    }
}
