import Distill
import Foundation

/// The main job's outputs: the table printed at the end, `summary.json`, and the SVG of the three
/// students' accuracy against training time — for one seed or, with several, mean ± std per row and
/// the per-seed paired differences.
public enum DemoReport {
    static let studentNames = ["hard", "online", "shards"]
    static let studentLabels = ["hard labels", "online teacher", "from shards"]

    static func students(_ r: DistillDemo.Result) -> [DistillDemo.StudentResult] { [r.hard, r.online, r.shards] }

    // MARK: Table

    /// The Markdown table of one seed.
    public static func table(_ r: DistillDemo.Result) -> String {
        let split = r.validation ? "validation" : "held-out"
        var out = "| model | \(split) top-1 | top-5 | train wall s | train CPU s | img/s | teacher share of step time |\n"
        out += "|---|---:|---:|---:|---:|---:|---:|\n"
        out += String(format: "| teacher (%d params, %.2f MMACs, %@) | %.2f%% | %.2f%% | %@ | | | |\n", r.teacherParameters,
                      Double(r.teacherMACs) / 1e6, r.teacherWeights == nil ? "hard labels" : "given weights", r.teacher.top1 * 100,
                      r.teacher.top5 * 100, r.teacherWeights == nil ? String(format: "%.1f", r.teacherTrainSeconds) : "")
        for (label, s) in zip(studentLabels, students(r)) {
            out += String(format: "| student (%d params, %.2f MMACs), %@ | %.2f%% | %.2f%% | %.1f | %.1f | %.0f | %@ |\n",
                          r.studentParameters, Double(r.studentMACs) / 1e6, label, s.evaluation.top1 * 100, s.evaluation.top5 * 100,
                          s.trainSeconds, s.cpuSeconds, s.imagesPerSecond, s.teacherShare > 0 ? String(format: "%.0f%%", s.teacherShare * 100) : "")
        }
        out += String(format: "\nshards: %d records, K = %d, %.1f bytes/record, verify %@; %@ images: %d; teacher MACs / student MACs = %.1fx\n",
                      r.records, r.k, r.bytesPerRecord, r.verifiedClean ? "clean" : "FAILED", split, r.teacher.count,
                      Double(r.teacherMACs) / Double(max(r.studentMACs, 1)))
        out += String(format: "paired differences (top-1 points): shards - hard %+.2f, shards - online %+.2f; shards wall / online wall = %.2f\n",
                      (r.shards.evaluation.top1 - r.hard.evaluation.top1) * 100, (r.shards.evaluation.top1 - r.online.evaluation.top1) * 100,
                      r.shards.trainSeconds / max(r.online.trainSeconds, 1e-9))
        return out
    }

    /// The Markdown tables of several seeds: mean ± std per row, then the paired differences per seed.
    public static func table(_ runs: [DistillDemo.Result]) -> String {
        guard let first = runs.first else { return "" }
        if runs.count == 1 { return table(first) }
        let split = first.validation ? "validation" : "held-out"
        func ms(_ values: [Double], _ scale: Double = 1, _ digits: Int = 2) -> String {
            let (m, s) = meanStd(values.map { $0 * scale })
            return String(format: "%.\(digits)f ± %.\(digits)f", m, s)
        }
        var out = "\(runs.count) seeds (\(runs.map { String($0.seed) }.joined(separator: ", "))), mean ± std:\n\n"
        out += "| model | \(split) top-1 % | top-5 % | train wall s | train CPU s | img/s | teacher share |\n"
        out += "|---|---:|---:|---:|---:|---:|---:|\n"
        let given = runs.allSatisfy { $0.teacherWeights != nil }
        out += "| teacher\(given ? " (given weights)" : "") | \(ms(runs.map(\.teacher.top1), 100)) | \(ms(runs.map(\.teacher.top5), 100)) | "
        out += "\(given ? "" : ms(runs.map(\.teacherTrainSeconds), 1, 1)) | | | |\n"
        for (i, label) in studentLabels.enumerated() {
            let s = runs.map { students($0)[i] }
            let share = s.map(\.teacherShare).max() ?? 0 > 0 ? ms(s.map(\.teacherShare), 100, 0) + "%" : ""
            out += "| student, \(label) | \(ms(s.map(\.evaluation.top1), 100)) | \(ms(s.map(\.evaluation.top5), 100)) | "
            out += "\(ms(s.map(\.trainSeconds), 1, 1)) | \(ms(s.map(\.cpuSeconds), 1, 1)) | \(ms(s.map(\.imagesPerSecond), 1, 0)) | \(share) |\n"
        }
        out += "\nper seed, \(split) top-1 %:\n\n| seed | teacher | hard | online | shards | shards − hard | shards − online |\n"
        out += "|---:|---:|---:|---:|---:|---:|---:|\n"
        for r in runs {
            out += String(format: "| %llu | %.2f | %.2f | %.2f | %.2f | %+.2f | %+.2f |\n", r.seed, r.teacher.top1 * 100,
                          r.hard.evaluation.top1 * 100, r.online.evaluation.top1 * 100, r.shards.evaluation.top1 * 100,
                          (r.shards.evaluation.top1 - r.hard.evaluation.top1) * 100, (r.shards.evaluation.top1 - r.online.evaluation.top1) * 100)
        }
        let dh = runs.map { ($0.shards.evaluation.top1 - $0.hard.evaluation.top1) * 100 }
        let dOnline = runs.map { ($0.shards.evaluation.top1 - $0.online.evaluation.top1) * 100 }
        out += "| mean ± std | \(ms(runs.map(\.teacher.top1), 100)) | \(ms(runs.map(\.hard.evaluation.top1), 100)) | "
        out += "\(ms(runs.map(\.online.evaluation.top1), 100)) | \(ms(runs.map(\.shards.evaluation.top1), 100)) | \(ms(dh)) | \(ms(dOnline)) |\n"
        out += "\nshards above hard on \(dh.filter { $0 > 0 }.count) of \(runs.count) seeds; "
        out += String(format: "shards wall / online wall = %.2f; %.1f bytes/record; all shards verified: %@\n",
                      runs.map(\.shards.trainSeconds).reduce(0, +) / max(runs.map(\.online.trainSeconds).reduce(0, +), 1e-9),
                      first.bytesPerRecord, runs.allSatisfy(\.verifiedClean) ? "yes" : "NO")
        return out
    }

    static func meanStd(_ values: [Double]) -> (Double, Double) {
        guard !values.isEmpty else { return (0, 0) }
        let mean = values.reduce(0, +) / Double(values.count)
        guard values.count > 1 else { return (mean, 0) }
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)
        return (mean, variance.squareRoot())
    }

    // MARK: summary.json

    /// One seed's summary: accuracies as fractions in 0–1, seconds, MACs, shard facts.
    public static func summary(_ r: DistillDemo.Result) -> [String: Any] {
        func student(_ s: DistillDemo.StudentResult) -> [String: Any] {
            ["top1": s.evaluation.top1, "top5": s.evaluation.top5, "train_seconds": s.trainSeconds, "cpu_seconds": s.cpuSeconds,
             "images_per_second": s.imagesPerSecond, "teacher_share": s.teacherShare, "macs": r.studentMACs,
             "parameters": r.studentParameters,
             "curve": s.curve.map { ["train_seconds": $0.seconds, "top1": $0.top1] }]
        }
        return [
            "images": r.images,
            "seed": r.seed,
            "split": r.validation ? "validation" : "held-out",
            "evaluation_images": r.teacher.count,
            "teacher": ["top1": r.teacher.top1, "top5": r.teacher.top5, "parameters": r.teacherParameters, "macs": r.teacherMACs,
                        "train_seconds": r.teacherTrainSeconds, "weights": r.teacherWeights ?? NSNull()] as [String: Any],
            "students": ["hard": student(r.hard), "online": student(r.online), "shards": student(r.shards)],
            "shards": ["records": r.records, "k": r.k, "bytes_per_record": r.bytesPerRecord, "verified": r.verifiedClean] as [String: Any],
            "paired": ["shards_minus_hard": r.shards.evaluation.top1 - r.hard.evaluation.top1,
                       "shards_minus_online": r.shards.evaluation.top1 - r.online.evaluation.top1],
            "stage_seconds": r.seconds,
        ]
    }

    /// Several seeds: every run's summary, plus mean and std of each student's top-1 and the paired differences.
    public static func summary(_ runs: [DistillDemo.Result]) -> [String: Any] {
        if runs.count == 1, let only = runs.first { return summary(only) }
        func stats(_ values: [Double]) -> [String: Any] {
            let (m, s) = meanStd(values)
            return ["mean": m, "std": s, "values": values]
        }
        var students: [String: Any] = [:]
        for (i, name) in studentNames.enumerated() {
            students[name] = ["top1": stats(runs.map { Self.students($0)[i].evaluation.top1 }),
                              "train_seconds": stats(runs.map { Self.students($0)[i].trainSeconds })]
        }
        let dh = runs.map { $0.shards.evaluation.top1 - $0.hard.evaluation.top1 }
        return [
            "seeds": runs.map(\.seed),
            "runs": runs.map(summary),
            "teacher": ["top1": stats(runs.map(\.teacher.top1))],
            "students": students,
            "paired": ["shards_minus_hard": stats(dh), "shards_minus_online": stats(runs.map { $0.shards.evaluation.top1 - $0.online.evaluation.top1 }),
                       "shards_above_hard_seeds": dh.filter { $0 > 0 }.count],
        ]
    }

    public static func writeSummary(_ object: [String: Any], to path: String) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    // MARK: SVG

    /// Evaluation top-1 of the three students against their training seconds (evaluation excluded).
    public static func svg(_ r: DistillDemo.Result) -> String {
        let (width, height, left, right, top, bottom) = (640.0, 380.0, 60.0, 170.0, 30.0, 50.0)
        let series = zip(studentLabels, students(r)).map { ($0, $1.curve) }
        let xMax = max(1, (series.flatMap { $0.1.map(\.seconds) }.max() ?? 1) * 1.05)
        let accuracies = series.flatMap { $0.1.map(\.top1) }
        let yMin = max(0, floor(((accuracies.min() ?? 0) * 100 - 2) / 5) * 5) / 100
        let yMax = 1.0
        let plotW = width - left - right, plotH = height - top - bottom
        func x(_ v: Double) -> Double { left + plotW * v / xMax }
        func y(_ v: Double) -> Double { top + plotH * (1 - (v - yMin) / (yMax - yMin)) }
        let split = r.validation ? "validation" : "held-out"
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += "<text x=\"\(left)\" y=\"18\">student \(split) top-1 vs training time (seed \(r.seed); evaluation time excluded)</text>\n"
        out += "<line x1=\"\(left)\" y1=\"\(top + plotH)\" x2=\"\(left + plotW)\" y2=\"\(top + plotH)\" stroke=\"black\"/>\n"
        out += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(top + plotH)\" stroke=\"black\"/>\n"
        var tick = yMin
        while tick <= yMax + 1e-9 {
            out += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.0f%%</text>\n", left - 6, y(tick) + 4, tick * 100)
            out += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, y(tick), left + plotW, y(tick))
            tick += 0.05
        }
        let step = niceStep(xMax / 6)
        var xt = 0.0
        while xt <= xMax {
            out += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", x(xt), top + plotH + 16, xt)
            xt += step
        }
        out += "<text x=\"\(left + plotW / 2)\" y=\"\(height - 10)\" text-anchor=\"middle\">student training wall seconds</text>\n"
        let colours = ["#7f7f7f", "#d62728", "#1f77b4"]
        for (i, (label, curve)) in series.enumerated() {
            let points = ([(0.0, yMin)] + curve.map { ($0.seconds, $0.top1) }).dropFirst()
                .map { String(format: "%.1f,%.1f", x($0.0), y(max($0.1, yMin))) }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(colours[i])\" stroke-width=\"2\" points=\"\(points)\"/>\n"
            for p in curve {
                out += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%@\"/>\n", x(p.seconds), y(max(p.top1, yMin)), colours[i])
            }
            let final = curve.last.map { String(format: " %.1f%%", $0.top1 * 100) } ?? ""
            out += "<text x=\"\(left + plotW + 10)\" y=\"\(top + 20 + 18 * Double(i))\" fill=\"\(colours[i])\">\(label)\(final)</text>\n"
        }
        return out + "</svg>\n"
    }

    static func niceStep(_ raw: Double) -> Double {
        let magnitude = pow(10, floor(log10(max(raw, 1e-9))))
        for m in [1.0, 2, 5, 10] where m * magnitude >= raw { return m * magnitude }
        return 10 * magnitude
    }
}
