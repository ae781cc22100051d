import ShardFormat

extension MappedFile {
    /// Maps an image-store or import file (ShardFormat's read-only map), reporting failure as this
    /// module's error.
    static func images(path: String) throws -> MappedFile {
        do {
            return try MappedFile(path: path)
        } catch let error as ShardError {
            throw ImageStoreError(.io, error.message, file: path)
        }
    }
}
