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
        let split = r.split
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
        return out + extraTables([r])
    }

    /// The K sweep, the hard-sample study and the analysis: one value per seed, or mean ± std over seeds.
    static func extraTables(_ runs: [DistillDemo.Result]) -> String {
        guard let first = runs.first else { return "" }
        let split = first.split
        func ms(_ values: [Double], _ scale: Double = 100, _ digits: Int = 2) -> String {
            let (m, s) = meanStd(values.map { $0 * scale })
            return runs.count == 1 ? String(format: "%.\(digits)f", m) : String(format: "%.\(digits)f ± %.\(digits)f", m, s)
        }
        var out = ""
        if !first.kSweep.isEmpty {
            out += "\nK sweep: one pass of K = \(first.passK), one student per k on the stored top-k (\(split) top-1 %):\n\n"
            out += "| k | student top-1 % | − hard labels | bytes/record |\n|---:|---:|---:|---:|\n"
            for (i, point) in first.kSweep.enumerated() {
                let top1 = runs.map { $0.kSweep[i].student.evaluation.top1 }
                let gain = runs.map { $0.kSweep[i].student.evaluation.top1 - $0.hard.evaluation.top1 }
                let bytes = point.bytesPerRecord.map { String(format: "%.1f", $0) } ?? ""
                out += "| \(point.k) | \(ms(top1)) | \(ms(gain).hasPrefix("-") ? "" : "+")\(ms(gain)) | \(bytes) |\n"
            }
        }
        if let study = first.hardSamples {
            let excluded = runs.compactMap { $0.hardSamples.map { Double($0.excluded) } }
            let shares = runs.compactMap { $0.hardSamples?.share }
            out += String(format: "\nhard samples (label outside the teacher's top-%d in ≥ %g of their records): %@ images (%@%%) left out; %@ top-1 %%:\n\n",
                          first.analysis?.n ?? min(5, first.passK), study.threshold, ms(excluded, 1, 0), ms(shares, 100, 2), split)
            out += "| student | with hard samples | without | without − with |\n|---|---:|---:|---:|\n"
            let hardWith = runs.map(\.hard.evaluation.top1), hardWithout = runs.map { $0.hardSamples?.hardWithout.evaluation.top1 ?? 0 }
            let shardsWith = runs.map(\.shards.evaluation.top1), shardsWithout = runs.map { $0.hardSamples?.shardsWithout.evaluation.top1 ?? 0 }
            out += "| hard labels | \(ms(hardWith)) | \(ms(hardWithout)) | \(signed(ms(zip(hardWithout, hardWith).map(-)))) |\n"
            out += "| from shards | \(ms(shardsWith)) | \(ms(shardsWithout)) | \(signed(ms(zip(shardsWithout, shardsWith).map(-)))) |\n"
        }
        if let analysis = first.analysis {
            let all = runs.compactMap(\.analysis)
            out += "\nwhat the stored teacher knows (the pass, Spec/ANALYZE.md):\n\n"
            out += "| agreement top-1 % | top-\(analysis.n) % | hard images % (share ≥ \(String(format: "%g", analysis.hardThreshold))) |"
            out += analysis.massByK.map { " mass top-\($0.k) %" }.joined(separator: " |") + " |\n"
            out += "|---:|---:|---:|" + String(repeating: "---:|", count: analysis.massByK.count) + "\n"
            out += "| \(ms(all.map(\.agreementTop1))) | \(ms(all.map(\.agreementTopN))) | \(ms(all.map(\.hardImageShare))) |"
            out += analysis.massByK.indices.map { j in " " + ms(all.map { $0.massByK[j].mean }) }.joined(separator: " |") + " |\n"
            let hard = all.map { $0.similarity["hard"] ?? 0 }, shards = all.map { $0.similarity["shards"] ?? 0 }
            out += "\nclass-correlation similarity to the teacher (Pearson over class pairs; 1 = the teacher's correlations): "
            out += "hard labels \(ms(hard, 1, 3)), from shards \(ms(shards, 1, 3)); from shards above hard labels on "
            out += "\(zip(shards, hard).filter { $0 > $1 }.count) of \(all.count) seed\(all.count == 1 ? "" : "s")\n"
        }
        return out
    }

    static func signed(_ text: String) -> String { text.hasPrefix("-") ? text : "+" + text }

    /// The last line of the digits job: where the gain of stored labels shows.
    public static func digitsHint(_ runs: [DistillDemo.Result]) -> String? {
        guard !runs.isEmpty else { return nil }
        let teacher = runs.map(\.teacher.top1).reduce(0, +) / Double(runs.count)
        let gap = runs.flatMap { r in students(r).map { r.teacher.top1 - $0.evaluation.top1 } }.max() ?? 0
        return String(format: "on these digits every student is within %.1f points of a %.1f%% teacher: for the gain of stored labels, run `tinyshard distill-demo --dataset fashion-mnist`",
                      max(gap, 0) * 100, teacher * 100)
    }

    /// The Markdown tables of several seeds: mean ± std per row, then the paired differences per seed.
    public static func table(_ runs: [DistillDemo.Result]) -> String {
        guard let first = runs.first else { return "" }
        if runs.count == 1 { return table(first) }
        let split = first.split
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
        return out + extraTables(runs)
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
        var out: [String: Any] = [
            "images": r.images,
            "seed": r.seed,
            "split": r.split,
            "evaluation_store": r.evaluationImages ?? NSNull(),
            "evaluation_images": r.teacher.count,
            "teacher": ["top1": r.teacher.top1, "top5": r.teacher.top5, "parameters": r.teacherParameters, "macs": r.teacherMACs,
                        "train_seconds": r.teacherTrainSeconds, "weights": r.teacherWeights ?? NSNull()] as [String: Any],
            "students": ["hard": student(r.hard), "online": student(r.online), "shards": student(r.shards)],
            "shards": ["records": r.records, "k": r.k, "pass_k": r.passK, "bytes_per_record": r.bytesPerRecord,
                       "verified": r.verifiedClean] as [String: Any],
            "paired": ["shards_minus_hard": r.shards.evaluation.top1 - r.hard.evaluation.top1,
                       "shards_minus_online": r.shards.evaluation.top1 - r.online.evaluation.top1],
            "stage_seconds": r.seconds,
        ]
        if let cached = r.teacherCached {
            var teacher = out["teacher"] as? [String: Any] ?? [:]
            teacher["cached"] = cached
            out["teacher"] = teacher
        }
        if !r.kSweep.isEmpty {
            out["k_sweep"] = r.kSweep.map { point -> [String: Any] in
                ["k": point.k, "top1": point.student.evaluation.top1, "top5": point.student.evaluation.top5,
                 "bytes_per_record": point.bytesPerRecord ?? NSNull(), "train_seconds": point.student.trainSeconds,
                 "minus_hard": point.student.evaluation.top1 - r.hard.evaluation.top1]
            }
        }
        if let study = r.hardSamples {
            out["hard_samples"] = ["share_threshold": study.threshold, "excluded_images": study.excluded, "image_share": study.share,
                                   "hard": ["with": r.hard.evaluation.top1, "without": study.hardWithout.evaluation.top1],
                                   "shards": ["with": r.shards.evaluation.top1, "without": study.shardsWithout.evaluation.top1],
                                   "without_minus_with": ["hard": study.hardWithout.evaluation.top1 - r.hard.evaluation.top1,
                                                          "shards": study.shardsWithout.evaluation.top1 - r.shards.evaluation.top1]] as [String: Any]
        }
        if let analysis = r.analysis {
            out["analysis"] = ["agreement_top1": analysis.agreementTop1, "agreement_topn": analysis.agreementTopN, "n": analysis.n,
                               "hard_share_threshold": analysis.hardThreshold, "hard_image_share": analysis.hardImageShare,
                               "hard_images": analysis.hardImages,
                               "mass_by_k": analysis.massByK.map { row -> [String: Any] in
                                   ["k": row.k, "mean": row.mean, "p10": row.p10, "p50": row.p50, "p90": row.p90, "residual": row.residual,
                                    "bytes_per_record": row.bytesPerRecord ?? NSNull()]
                               }] as [String: Any]
            out["correlation_similarity"] = analysis.similarity
        }
        return out
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
        var extra: [String: Any] = [:]
        if let first = runs.first, !first.kSweep.isEmpty {
            extra["k_sweep"] = first.kSweep.indices.map { i -> [String: Any] in
                ["k": first.kSweep[i].k, "top1": stats(runs.map { $0.kSweep[i].student.evaluation.top1 }),
                 "minus_hard": stats(runs.map { $0.kSweep[i].student.evaluation.top1 - $0.hard.evaluation.top1 }),
                 "bytes_per_record": stats(runs.compactMap { $0.kSweep[i].bytesPerRecord })]
            }
        }
        let studies = runs.compactMap(\.hardSamples)
        if studies.count == runs.count, let first = studies.first {
            extra["hard_samples"] = ["share_threshold": first.threshold, "excluded_images": stats(studies.map { Double($0.excluded) }),
                                     "image_share": stats(studies.map(\.share)),
                                     "hard": ["with": stats(runs.map(\.hard.evaluation.top1)), "without": stats(studies.map(\.hardWithout.evaluation.top1))],
                                     "shards": ["with": stats(runs.map(\.shards.evaluation.top1)), "without": stats(studies.map(\.shardsWithout.evaluation.top1))],
                                     "without_minus_with": ["hard": stats(zip(studies, runs).map { $0.hardWithout.evaluation.top1 - $1.hard.evaluation.top1 }),
                                                            "shards": stats(zip(studies, runs).map { $0.shardsWithout.evaluation.top1 - $1.shards.evaluation.top1 })]]
                as [String: Any]
        }
        let analyses = runs.compactMap(\.analysis)
        if analyses.count == runs.count, let first = analyses.first {
            extra["analysis"] = ["agreement_top1": stats(analyses.map(\.agreementTop1)), "agreement_topn": stats(analyses.map(\.agreementTopN)),
                                 "n": first.n, "hard_image_share": stats(analyses.map(\.hardImageShare)),
                                 "mass_by_k": first.massByK.indices.map { j -> [String: Any] in
                                     ["k": j + 1, "mean": stats(analyses.map { $0.massByK[j].mean }),
                                      "residual": stats(analyses.map { $0.massByK[j].residual })]
                                 }] as [String: Any]
            let hard = analyses.map { $0.similarity["hard"] ?? 0 }, shards = analyses.map { $0.similarity["shards"] ?? 0 }
            extra["correlation_similarity"] = ["hard": stats(hard), "shards": stats(shards),
                                               "shards_above_hard_seeds": zip(shards, hard).filter { $0 > $1 }.count] as [String: Any]
        }
        return extra.merging([
            "split": runs.first?.split ?? "held-out",
            "seeds": runs.map(\.seed),
            "runs": runs.map(summary),
            "teacher": ["top1": stats(runs.map(\.teacher.top1))],
            "students": students,
            "paired": ["shards_minus_hard": stats(dh), "shards_minus_online": stats(runs.map { $0.shards.evaluation.top1 - $0.online.evaluation.top1 }),
                       "shards_above_hard_seeds": dh.filter { $0 > 0 }.count],
        ]) { a, _ in a }
    }

    /// Writes `object` as pretty-printed JSON with sorted keys to `path`, atomically.
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
        let split = r.split
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

    /// The K sweep: student top-1 (mean ± std over the runs) against the stored k, with the bytes per record of
    /// each k under its point and the hard-label and online students as dashed lines.
    public static func kSweepSVG(_ runs: [DistillDemo.Result]) -> String {
        let (width, height, left, right, top, bottom) = (640.0, 380.0, 60.0, 170.0, 30.0, 64.0)
        guard let first = runs.first, !first.kSweep.isEmpty else { return "" }
        let points = first.kSweep.indices.map { i -> (k: Int, mean: Double, std: Double, bytes: Double?) in
            let (m, s) = meanStd(runs.map { $0.kSweep[i].student.evaluation.top1 })
            return (first.kSweep[i].k, m, s, first.kSweep[i].bytesPerRecord)
        }
        let hard = meanStd(runs.map(\.hard.evaluation.top1)).0, online = meanStd(runs.map(\.online.evaluation.top1)).0
        let lows = points.map { $0.mean - $0.std } + [hard, online], highs = points.map { $0.mean + $0.std } + [hard, online]
        let yMin = floor(((lows.min() ?? 0) * 100 - 0.5) * 2) / 200, yMax = ceil(((highs.max() ?? 1) * 100 + 0.5) * 2) / 200
        let plotW = width - left - right, plotH = height - top - bottom
        func x(_ i: Int) -> Double { left + plotW * (Double(i) + 0.5) / Double(points.count) }
        func y(_ v: Double) -> Double { top + plotH * (1 - (v - yMin) / max(yMax - yMin, 1e-9)) }
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        let seeds = runs.count == 1 ? "seed \(first.seed)" : "\(runs.count) seeds, mean ± std"
        out += "<text x=\"\(left)\" y=\"18\">student \(first.split) top-1 vs stored top-k (one pass of K = \(first.passK); \(seeds))</text>\n"
        out += "<line x1=\"\(left)\" y1=\"\(top + plotH)\" x2=\"\(left + plotW)\" y2=\"\(top + plotH)\" stroke=\"black\"/>\n"
        out += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(top + plotH)\" stroke=\"black\"/>\n"
        let step = niceStep((yMax - yMin) * 100 / 6) / 100
        var tick = (yMin / step).rounded(.up) * step
        while tick <= yMax + 1e-9 {
            out += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.1f%%</text>\n", left - 6, y(tick) + 4, tick * 100)
            out += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, y(tick), left + plotW, y(tick))
            tick += step
        }
        for (i, p) in points.enumerated() {
            out += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">k = %d</text>\n", x(i), top + plotH + 16, p.k)
            if let bytes = p.bytes {
                out += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#555\">%.1f B</text>\n", x(i), top + plotH + 32, bytes)
            }
        }
        out += "<text x=\"\(left + plotW / 2)\" y=\"\(height - 8)\" text-anchor=\"middle\">stored top-k (bytes per record below)</text>\n"
        for (label, value, colour) in [("hard labels", hard, "#7f7f7f"), ("online teacher", online, "#d62728")] {
            out += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%@\" stroke-dasharray=\"6,4\"/>\n",
                          left, y(value), left + plotW, y(value), colour)
            out += String(format: "<text x=\"%.1f\" y=\"%.1f\" fill=\"%@\">%@ %.2f%%</text>\n", left + plotW + 10, y(value) + 4, colour, label, value * 100)
        }
        let line = points.indices.map { String(format: "%.1f,%.1f", x($0), y(points[$0].mean)) }.joined(separator: " ")
        out += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"\(line)\"/>\n"
        for (i, p) in points.enumerated() {
            if p.std > 0 {
                out += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#1f77b4\"/>\n", x(i), y(p.mean - p.std), x(i), y(p.mean + p.std))
            }
            out += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"#1f77b4\"/>\n", x(i), y(p.mean))
            out += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#1f77b4\">%.2f</text>\n", x(i), y(p.mean) - 8, p.mean * 100)
        }
        out += "<text x=\"\(left + plotW + 10)\" y=\"\(top + 12)\" fill=\"#1f77b4\">from shards, top-k</text>\n"
        return out + "</svg>\n"
    }

    static func niceStep(_ raw: Double) -> Double {
        let magnitude = pow(10, floor(log10(max(raw, 1e-9))))
        for m in [1.0, 2, 5, 10] where m * magnitude >= raw { return m * magnitude }
        return 10 * magnitude
    }
}
