import Foundation

/// The metrics CSV and an SVG plot of the loss and held-out accuracy curves.
public enum MetricsOutput {
    /// The metrics CSV: header `epoch,step,loss,lr,img_per_s,eval_top1,eval_top5`, one line per row, empty fields where
    /// a row has no evaluation.
    public static func csv(_ rows: [MetricsRow]) -> String {
        var out = "epoch,step,loss,lr,img_per_s,eval_top1,eval_top5\n"
        for r in rows {
            out += "\(r.epoch),\(r.step),\(r.loss),\(r.learningRate),\(String(format: "%.1f", r.imagesPerSecond)),"
            out += (r.top1.map { String(format: "%.4f", $0) } ?? "") + "," + (r.top5.map { String(format: "%.4f", $0) } ?? "") + "\n"
        }
        return out
    }

    /// Two panels: training loss per step (left) and held-out top-1 / top-5 per epoch (right).
    public static func svg(_ rows: [MetricsRow]) -> String {
        let (w, h, pad) = (360.0, 240.0, 40.0)
        var out = #"<svg xmlns="http://www.w3.org/2000/svg" width="760" height="280" font-family="sans-serif" font-size="11">"#
        out += "\n<rect width=\"760\" height=\"280\" fill=\"white\"/>\n"
        func panel(x0: Double, title: String, yMax: Double, series: [(String, [(Double, Double)])], xMax: Double, xLabel: String) {
            out += "<g transform=\"translate(\(x0),10)\">\n"
            out += "<text x=\"\(w / 2)\" y=\"12\" text-anchor=\"middle\">\(title)</text>\n"
            out += "<line x1=\"\(pad)\" y1=\"\(h - pad + 20)\" x2=\"\(w)\" y2=\"\(h - pad + 20)\" stroke=\"black\"/>\n"
            out += "<line x1=\"\(pad)\" y1=\"20\" x2=\"\(pad)\" y2=\"\(h - pad + 20)\" stroke=\"black\"/>\n"
            out += "<text x=\"\(pad - 4)\" y=\"24\" text-anchor=\"end\">\(String(format: "%.3g", yMax))</text>\n"
            out += "<text x=\"\(pad - 4)\" y=\"\(h - pad + 20)\" text-anchor=\"end\">0</text>\n"
            out += "<text x=\"\(w)\" y=\"\(h - pad + 34)\" text-anchor=\"end\">\(xLabel) \(Int(xMax))</text>\n"
            for (i, (name, points)) in series.enumerated() {
                let colour = ["#1f77b4", "#d62728", "#2ca02c"][i % 3]
                let coords = points.map { p -> String in
                    let x = pad + (w - pad) * (xMax > 0 ? p.0 / xMax : 0)
                    let y = 20 + (h - pad) * (1 - (yMax > 0 ? min(p.1, yMax) / yMax : 0))
                    return String(format: "%.1f,%.1f", x, y)
                }.joined(separator: " ")
                out += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.5\" points=\"\(coords)\"/>\n"
                out += "<text x=\"\(pad + 8)\" y=\"\(36 + 14 * Double(i))\" fill=\"\(colour)\">\(name)</text>\n"
            }
            out += "</g>\n"
        }
        let loss = rows.map { (Double($0.step), Double($0.loss)) }
        let maxLoss = (loss.map(\.1).filter { $0.isFinite }.max() ?? 1) * 1.05
        panel(x0: 0, title: "training loss", yMax: maxLoss, series: [("loss", loss)], xMax: Double(rows.last?.step ?? 0), xLabel: "step")
        let evals = rows.filter { $0.top1 != nil }
        let t1 = evals.map { (Double($0.epoch + 1), $0.top1!) }, t5 = evals.map { (Double($0.epoch + 1), $0.top5 ?? 0) }
        panel(x0: 390, title: "held-out accuracy", yMax: 1, series: [("top-1", t1), ("top-5", t5)],
              xMax: Double((rows.last?.epoch ?? 0) + 1), xLabel: "epoch")
        out += "</svg>\n"
        return out
    }
}
