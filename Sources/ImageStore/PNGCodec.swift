import TinyShardBase
import CPNG

/// PNG through libpng's simplified API (`png_image_*`), which reports errors as return values instead of
/// `longjmp` (that cannot cross Swift frames safely).
public enum PNGCodec {
    /// Decodes any PNG (grey, palette, RGB, with or without alpha, 8 or 16 bits) to 8-bit RGB. Alpha is
    /// dropped, as PIL's `convert("RGB")` (torchvision's ImageFolder loader) does; 16-bit samples
    /// without gamma information are taken as sRGB-encoded, not linear. A header claiming more than
    /// ``ImageLimits/maxPixels`` is refused before anything is allocated. `name` only labels errors.
    public static func decode(_ data: UnsafeRawBufferPointer, name: String) throws -> RGBImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.flags = UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)
        defer { png_image_free(&image) }
        guard let base = data.baseAddress, png_image_begin_read_from_memory(&image, base, data.count) != 0 else {
            throw ImageStoreError(.badInput, "not a readable PNG: \(message(&image))", file: name)
        }
        let width = Int(image.width), height = Int(image.height)
        try ImageLimits.checkInputSize(width, height, what: "PNG", name: name)  // before the pixels are allocated
        image.format = UInt32(PNG_FORMAT_RGB | PNG_FORMAT_FLAG_ALPHA)  // PNG_FORMAT_RGBA (a macro Swift does not import)
        var rgba = [UInt8](repeating: 0, count: width * height * 4)
        let ok = rgba.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, Int32(width * 4), nil) }
        guard ok != 0 else { throw ImageStoreError(.badInput, "PNG decoding failed: \(message(&image))", file: name) }
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        rgba.withUnsafeBufferPointer { src in
            rgb.withUnsafeMutableBufferPointer { dst in
                for i in 0..<(width * height) {
                    dst[i * 3] = src[i * 4]
                    dst[i * 3 + 1] = src[i * 4 + 1]
                    dst[i * 3 + 2] = src[i * 4 + 2]
                }
            }
        }
        return try RGBImage(width: width, height: height, pixels: rgb)
    }

    /// Encodes 8-bit RGB as PNG (for test inputs, debugging dumps and viewers).
    public static func encode(_ rgb: RGBImage) throws -> [UInt8] {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(rgb.width)
        image.height = UInt32(rgb.height)
        image.format = UInt32(PNG_FORMAT_RGB)
        defer { png_image_free(&image) }
        var size = 0
        let stride = Int32(rgb.width * 3)
        guard rgb.pixels.withUnsafeBytes({ png_image_write_to_memory(&image, nil, &size, 0, $0.baseAddress, stride, nil) }) != 0 else {
            throw ImageStoreError(.invalidArgument, "PNG encoding failed: \(message(&image))")
        }
        var out = [UInt8](repeating: 0, count: size)
        let ok = rgb.pixels.withUnsafeBytes { pixels in
            out.withUnsafeMutableBytes { png_image_write_to_memory(&image, $0.baseAddress, &size, 0, pixels.baseAddress, stride, nil) }
        }
        guard ok != 0 else { throw ImageStoreError(.invalidArgument, "PNG encoding failed: \(message(&image))") }
        return Array(out.prefix(size))
    }

    private static func message(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            let text = String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            return text.isEmpty ? "unknown libpng error" : text
        }
    }
}
