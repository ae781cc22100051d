import Distill
import Foundation
import ShardConvert

/// The files and the summary `tinyshard analyze` writes from an ``AnalysisResult``: analysis.json,
/// hard_samples.tsv / .json, mass_by_k.tsv, correlation.npy and correlation.svg (Spec/ANALYZE.md).
public enum AnalysisReport {
    /// Writes every file into `folder` (created); `names[c]` names class c where the store names classes.
    public static func write(_ result: AnalysisResult, to folder: String, names: [String]) throws {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw DistillError(.io, "cannot create the folder: \(error.localizedDescription)", file: folder)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try write(try encoder.encode(result), to: folder + "/analysis.json")
        try write(try encoder.encode(result.hardSamples), to: folder + "/hard_samples.json")
        try write(Data(hardSamplesTSV(result, names: names).utf8), to: folder + "/hard_samples.tsv")
        try write(Data(massTSV(result).utf8), to: folder + "/mass_by_k.tsv")
        let width = result.correlationClasses.count
        try NpyWriter.write(result.matrix, shape: [width, width], to: folder + "/correlation.npy")
        try write(Data(heatmap(result, names: names).utf8), to: folder + "/correlation.svg")
    }

    private static func write(_ data: Data, to path: String) throws {
        do { try data.write(to: URL(fileURLWithPath: path)) } catch {
            throw DistillError(.io, "cannot write: \(error.localizedDescription)", file: path)
        }
    }

    static func name(_ c: Int, _ names: [String]) -> String { c < names.count && !names[c].isEmpty ? names[c] : String(c) }

    static func hardSamplesTSV(_ result: AnalysisResult, names: [String]) -> String {
        var out = "key\tlabel\tmiss_share\trecords\ttop_classes\n"
        for sample in result.hardSamples {
            let top = zip(sample.topClasses, sample.topMeans).map { "\(name($0, names)) \(String(format: "%.4f", $1))" }
            out += "\(sample.key)\t\(name(sample.label, names))\t\(String(format: "%.4f", sample.missShare))\t\(sample.records)\t"
                + top.joined(separator: ", ") + "\n"
        }
        return out
    }

    static func massTSV(_ result: AnalysisResult) -> String {
        var out = "k\tmean\tp10\tp50\tp90\tresidual\tbytes_per_record\n"
        for row in result.massByK {
            out += "\(row.k)\t\(String(format: "%.6f", row.mean))\t\(String(format: "%.6f", row.p10))\t\(String(format: "%.6f", row.p50))\t"
                + "\(String(format: "%.6f", row.p90))\t\(String(format: "%.3e", row.residual))\t"
                + (row.bytesPerRecord.map { String(format: "%.2f", $0) } ?? "") + "\n"
        }
        return out
    }

    /// The correlation of the heatmap's classes (``AnalysisResult/heatmapPositions``: the most frequent top-1
    /// classes, ascending), as an SVG heatmap: blue below 0, red above, white at 0; the diagonal (1) drawn like
    /// any other cell.
    static func heatmap(_ result: AnalysisResult, names: [String]) -> String {
        let width = result.correlationClasses.count
        let shown = result.heatmapPositions
        let cell = max(4, 600 / max(1, shown.count)), margin = 120
        let side = margin + cell * shown.count + 10
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(side)\" height=\"\(side)\" font-family=\"sans-serif\" font-size=\"9\">\n"
        out += "<text x=\"4\" y=\"14\" font-size=\"12\">class correlation of the teacher's soft labels (\(result.correlationRecords) records)</text>\n"
        for (row, i) in shown.enumerated() {
            let y = margin + row * cell
            if cell >= 8 {
                out += "<text x=\"\(margin - 4)\" y=\"\(y + cell - 1)\" text-anchor=\"end\">\(escape(name(result.correlationClasses[i], names)))</text>\n"
            }
            for (column, j) in shown.enumerated() {
                let value = max(-1, min(1, result.matrix[i * width + j]))
                let shade = Int((1 - abs(value)) * 255)
                let color = value >= 0 ? "rgb(255,\(shade),\(shade))" : "rgb(\(shade),\(shade),255)"
                out += "<rect x=\"\(margin + column * cell)\" y=\"\(y)\" width=\"\(cell)\" height=\"\(cell)\" fill=\"\(color)\"/>\n"
            }
        }
        return out + "</svg>\n"
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// The lines `tinyshard analyze` prints.
    public static func summary(_ result: AnalysisResult, names: [String]) -> String {
        var out = "\(result.records) records, K = \(result.k), C = \(result.classes)\n"
        if let overall = result.overall {
            out += String(format: "agreement: label is the teacher's top 1 in %.2f%% of records, in its top %d in %.2f%%\n",
                          100 * overall.top1, result.n, 100 * overall.topN)
            if let image = result.perImage {
                out += String(format: "per image (%d images): mean top-1 share %.3f, mean top-%d share %.3f\n",
                              image.images, image.meanTop1Share, result.n, image.meanTopNShare)
            }
            out += String(format: "hard samples (label outside the top %d in ≥ %.0f%% of an image's records): %d, %.2f%% of images\n",
                          result.n, 100 * result.hardShareThreshold, result.hardSamples.count, 100 * (result.hardImageShare ?? 0))
        }
        out += "mass kept by the top k (mean, p10 / p50 / p90; residual per other class; bytes/record):\n"
        let rows = result.massByK.count <= 12 ? result.massByK
            : result.massByK.filter { [1, 2, 3, 5, 10, 20, 50, 100, 200, result.k].contains($0.k) }
        for row in rows {
            out += String(format: "  k = %3d: %.4f  %.4f / %.4f / %.4f  %.2e  %@\n", row.k, row.mean, row.p10, row.p50, row.p90, row.residual,
                          row.bytesPerRecord.map { String(format: "%.1f", $0) } ?? "-")
        }
        out += "most correlated classes (\(result.correlationRecords) records\(result.correlationStride > 1 ? ", every \(result.correlationStride)th" : "")):\n"
        for pair in result.topPairs.prefix(5) {
            out += String(format: "  %@ ~ %@: %.3f\n", name(pair.a, names), name(pair.b, names), pair.correlation)
        }
        if let similarity = result.studentSimilarity {
            out += String(format: "the student's class correlations follow the teacher's: Pearson %.3f over class pairs\n", similarity)
        }
        for skipped in result.skipped { out += "skipped: \(skipped)\n" }
        return out
    }
}
