import Foundation
import ShardConvert
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A one-line progress bar on stderr, drawn only when stderr is a terminal (quiet in pipes, logs, CI).
final class ProgressBar {
    private var lastDraw = 0.0
    private var drawn = false

    /// A handler for the libraries, or nil when stderr is not a terminal.
    static func handler() -> (ProgressBar, ProgressHandler)? {
        guard isatty(STDERR_FILENO) == 1 else { return nil }
        let bar = ProgressBar()
        return (bar, { bar.draw($0) })
    }

    private func draw(_ progress: ConversionProgress) {
        let now = Date().timeIntervalSinceReferenceDate
        let finished = progress.total.map { progress.done >= $0 } ?? false
        guard finished || now - lastDraw >= 0.1 else { return }
        lastDraw = now
        var line = progress.stage
        if let total = progress.total, total > 0 {
            let fraction = min(1, Double(progress.done) / Double(total))
            let width = 30
            let filled = Int(fraction * Double(width))
            line += " [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            line += String(format: "%3.0f%% %d/%d records", fraction * 100, progress.done, total)
        } else {
            line += " \(progress.done) records"
        }
        fputs("\r\u{1B}[2K" + line, stderr)
        drawn = true
    }

    /// Clears the bar's line.
    func finish() {
        if drawn { fputs("\r\u{1B}[2K", stderr) }
        drawn = false
    }
}
