import TinyShardBase

/// Runs file I/O of the base module's shared helpers (``MappedFile``, ``AtomicFileOutput``), reporting
/// their failures as this module's error.
func imageStoreIO<T>(_ path: String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as FileIOError {
        throw ImageStoreError(.io, error.message, file: error.path)
    }
}

extension MappedFile {
    /// Maps an image-store or import file (the base module's read-only map), reporting failure as this
    /// module's error.
    static func images(path: String) throws -> MappedFile {
        try imageStoreIO(path) { try MappedFile(path: path) }
    }
}
