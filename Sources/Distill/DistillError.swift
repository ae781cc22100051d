/// The codes of the distillation pipeline's errors. Their raw values are the codes as printed between
/// brackets (`FILE: [code] message`), so the CLI's output and the tests that match it name problems the
/// same way; `invalid-argument` is spelled as the format's `ShardErrorCode.invalidArgument`.
public enum DistillErrorCode: String, Sendable, CaseIterable, Codable {
    /// A file or folder that cannot be read, written or created.
    case io
    /// Two inputs that do not belong together (a store and a dataset, a checkpoint and a run, ranks' options).
    case mismatch
    /// The caller asked for something the inputs cannot give (a k, an epoch, a rank, a batch split).
    case invalidArgument = "invalid-argument"
    /// Options that cannot go together.
    case usage
    /// The teacher (in process or external) failed or answered with the wrong shape.
    case teacher
    /// A state the pipeline should never reach.
    case `internal`
    case badConfig = "bad_config"
    case badCheckpoint = "bad_checkpoint"
    case badWeights = "bad_weights"
    /// An image without the label training or the main job needs.
    case noLabel = "no_label"
    /// A dataset with no shards.
    case empty
    /// A key with no record in the epoch asked for.
    case missingSample = "missing-sample"
    /// An input that is not installed (Fashion-MNIST).
    case missing
    /// Importing a data set into an image store failed.
    case `import`
    /// MPI could not start as TinyShard needs it.
    case mpi
    /// Another rank failed; this one stopped with it.
    case peerFailed = "peer_failed"
    /// The ranks' weights differ: the run cannot continue.
    case diverged
}

/// An error of the distillation pipeline: a code, the file (and the record or image in it) when there is
/// one, and a sentence for a person. It prints as one line, `FILE: ITEM: [code] message`.
public struct DistillError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: DistillErrorCode
    public var message: String
    /// The file or folder the error is about.
    public var file: String?
    /// The record or image in `file` the error is about, as printed ("record 3 (key cat_01)").
    public var item: String?

    public init(_ code: DistillErrorCode, _ message: String, file: String? = nil, item: String? = nil) {
        self.code = code
        self.message = message
        self.file = file
        self.item = item
    }

    public var description: String {
        let place = [file, item].compactMap { $0 }.joined(separator: ": ")
        return place.isEmpty ? "[\(code.rawValue)] \(message)" : "\(place): [\(code.rawValue)] \(message)"
    }
}
