import TinyShardBase

/// The format's mixer (Spec/FORMAT.md 4), kept in the base module so that modules below the format
/// (TinyViT) share the one copy; ShardFormat's users keep writing `Mix64`.
public typealias Mix64 = TinyShardBase.Mix64

/// The project's one file-descriptor write loop (TinyShardBase), under the name ShardFormat's users know.
public typealias FileDescriptorIO = TinyShardBase.FileDescriptorIO

/// CRC-32 as zlib computes it (TinyShardBase), under the name ShardFormat's users know.
public typealias CRC32 = TinyShardBase.CRC32

/// The read-only file map of every store (TinyShardBase). ShardFormat's readers open it with
/// `MappedFile.format(path:)`, which reports failure as ``ShardError`` code `io`.
public typealias MappedFile = TinyShardBase.MappedFile

/// The write-then-rename output of every writer (TinyShardBase). ShardFormat's writers run it inside
/// `formatIO`, which reports failure as ``ShardError`` code `io`.
public typealias AtomicFileOutput = TinyShardBase.AtomicFileOutput

/// A file that cannot be opened, mapped, written or renamed (TinyShardBase); ShardFormat reports it as
/// ``ShardError`` code `io`.
public typealias FileIOError = TinyShardBase.FileIOError

extension ShardError {
    /// The base module's file error as this module's: code `io`, the same message, located at the file.
    public init(_ error: FileIOError) {
        self.init(.io, error.message, at: ShardLocation(file: error.path))
    }
}

/// Runs file I/O of the base module's ``MappedFile`` or ``AtomicFileOutput``, reporting its failures as
/// ``ShardError`` code `io` naming the file (what ShardFormat has always thrown for them).
func formatIO<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as FileIOError {
        throw ShardError(error)
    }
}

extension MappedFile {
    /// Maps `path` like `MappedFile(path:)`, reporting failure as ``ShardError`` code
    /// `io` naming the file: how ShardFormat's readers, and tools that report format errors, open files.
    public static func format(path: String) throws -> MappedFile {
        try formatIO { try MappedFile(path: path) }
    }
}
