import TinyShardBase

/// Decodes an image file by its content (PNG or JPEG signature), whatever its extension says.
public enum ImageDecoding {
    /// Decodes a PNG or JPEG (by its signature) to 8-bit RGB; throws ``ImageStoreError`` `bad-input` naming `name` for
    /// any other content or a damaged file.
    public static func decode(_ data: UnsafeRawBufferPointer, name: String) throws -> RGBImage {
        if data.count >= 8, Array(data.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] {
            return try PNGCodec.decode(data, name: name)
        }
        if data.count >= 3, data[0] == 0xFF, data[1] == 0xD8, data[2] == 0xFF {
            return try JPEGCodec.decode(data, name: name)
        }
        throw ImageStoreError(.badInput, "neither a PNG nor a JPEG (unknown signature)", file: name)
    }

    /// Reads and decodes a file.
    public static func decode(file path: String) throws -> RGBImage {
        let mapped = try MappedFile.images(path: path)
        return try decode(mapped.bytes, name: path)
    }
}
