/// How far a long operation is. The libraries print nothing; a caller that wants a progress bar passes
/// a ``ProgressHandler`` and draws it (the CLI does, on a terminal only).
public struct ConversionProgress: Sendable, Equatable {
    /// What is being done, e.g. "epoch 3 rank 1".
    public var stage: String
    /// Records done so far (over the whole operation).
    public var done: Int
    /// Records in all, when known.
    public var total: Int?

    /// A progress report: `done` of `total` records (nil when unknown) in `stage`.
    public init(stage: String, done: Int, total: Int?) {
        self.stage = stage
        self.done = done
        self.total = total
    }
}

/// Called from the converting thread, at most every few thousand records and once at the end.
public typealias ProgressHandler = (ConversionProgress) -> Void

/// Calls a handler at most every `interval` records (plus the final call). Package-visible: DemoData reports
/// its progress through it too.
package struct ProgressThrottle {
    let handler: ProgressHandler?
    let total: Int?
    let interval: Int
    private var lastReported: Int?

    package init(_ handler: ProgressHandler?, total: Int?, interval: Int = 4096) {
        self.handler = handler
        self.total = total
        self.interval = interval
    }

    package mutating func report(stage: String, done: Int, force: Bool = false) {
        guard let handler, force || lastReported.map({ done - $0 >= interval }) ?? true else { return }
        lastReported = done
        handler(ConversionProgress(stage: stage, done: done, total: total))
    }
}
