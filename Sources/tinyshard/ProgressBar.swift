import Foundation
import ShardConvert
import TinyShardBase
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The CLI's one progress bar: one line on stderr, drawn only when stderr is a terminal (quiet in pipes,
/// logs, CI), at most every 0.1 s. `draw(_:_:)` shows `[####....] text`; ``handler()`` adapts it to the
/// libraries' ``ConversionProgress`` (`stage [####....]  42% n/total records`).
final class ProgressBar {
    private let enabled: Bool
    private var lastDraw = 0.0
    private var drawn = false
    private static let width = 30

    /// `enabled` false (a rank other than 0 under mpirun) never draws.
    init(enabled: Bool = true) { self.enabled = enabled && isatty(STDERR_FILENO) == 1 }

    /// A handler for the libraries, or nil when stderr is not a terminal.
    static func handler() -> (ProgressBar, ProgressHandler)? {
        guard isatty(STDERR_FILENO) == 1 else { return nil }
        let bar = ProgressBar()
        return (bar, { bar.draw($0) })
    }

    /// `[####....] text` for `fraction` done; `force` draws even within 0.1 s of the last line.
    func draw(_ fraction: Double, _ text: String, force: Bool = false) {
        drawLine(Self.bar(fraction) + " " + text, force: force)
    }

    private func draw(_ progress: ConversionProgress) {
        let finished = progress.total.map { progress.done >= $0 } ?? false
        var line = progress.stage
        if let total = progress.total, total > 0 {
            let fraction = min(1, Double(progress.done) / Double(total))
            line += " " + Self.bar(fraction) + " "
            line += String(format: "%3.0f%% %d/%d records", fraction * 100, progress.done, total)
        } else {
            line += " \(progress.done) records"
        }
        drawLine(line, force: finished)
    }

    /// Clears the bar's line.
    func finish() {
        if drawn { StandardError.write("\r\u{1B}[2K") }
        drawn = false
    }

    private static func bar(_ fraction: Double) -> String {
        let filled = Int(min(1, max(0, fraction)) * Double(width))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
    }

    private func drawLine(_ line: @autoclosure () -> String, force: Bool) {
        guard enabled else { return }
        let now = Date().timeIntervalSinceReferenceDate
        guard force || now - lastDraw >= 0.1 else { return }
        lastDraw = now
        StandardError.write("\r\u{1B}[2K" + line())
        drawn = true
    }
}
