import Foundation

/// Wall-clock time per op category, for benchmark tables. Off by default (one branch per op when off).
/// Ops are issued from one thread, so the totals need no lock.
public enum OpProfiler {
    nonisolated(unsafe) public static var isEnabled = false
    nonisolated(unsafe) private static var totals: [String: Double] = [:]

    /// Runs `body`, adding its wall time to category `name` when profiling is enabled.
    @inline(__always)
    public static func measure<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        guard isEnabled else { return try body() }
        let start = DispatchTime.now().uptimeNanoseconds
        defer { totals[name, default: 0] += Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 }
        return try body()
    }

    /// Forgets every total.
    public static func reset() { totals = [:] }

    /// Seconds per category, largest first.
    public static func report() -> [(name: String, seconds: Double)] {
        totals.sorted { $0.value > $1.value }.map { ($0.key, $0.value) }
    }
}
