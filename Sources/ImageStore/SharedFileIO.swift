import ShardFormat

/// Runs file I/O of ShardFormat's shared helpers (``MappedFile``, ``AtomicFileOutput``), reporting
/// their failures as this module's error.
func imageStoreIO<T>(_ path: String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ShardError {
        throw ImageStoreError(.io, error.message, file: error.location.file ?? path)
    }
}

extension MappedFile {
    /// Maps an image-store or import file (ShardFormat's read-only map), reporting failure as this
    /// module's error.
    static func images(path: String) throws -> MappedFile {
        try imageStoreIO(path) { try MappedFile(path: path) }
    }
}
