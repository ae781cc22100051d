/// A file of the project that cannot be opened, mapped, written or renamed (``MappedFile``,
/// ``AtomicFileOutput``): the path and what failed, with the system's reason.
///
/// Each module above reports it as its own error (ShardFormat's `ShardError` code `io`, ImageStore's
/// `ImageStoreError` code `io`) with the same path and message.
public struct FileIOError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file the operation was on.
    public let path: String
    /// What failed and why, e.g. `cannot open: No such file or directory`.
    public let message: String

    /// An error about `path`.
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    /// `PATH: MESSAGE`.
    public var description: String { "\(path): \(message)" }
}
