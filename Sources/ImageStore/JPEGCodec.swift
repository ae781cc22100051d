import Augment
import CTurboJPEG

/// JPEG through libturbojpeg with its defaults (accurate integer DCT, fancy upsampling): the decoder
/// settings PIL uses, so decoded pixels match torchvision's ImageFolder loader. EXIF orientation is not
/// applied (PIL does not apply it either).
public enum JPEGCodec {
    /// Decodes a baseline or progressive JPEG (grey or YCbCr) to RGB. CMYK JPEGs are refused.
    public static func decode(_ data: UnsafeRawBufferPointer, name: String) throws -> RGBImage {
        guard let handle = tjInitDecompress() else { throw ImageStoreError(.io, "cannot initialise libturbojpeg", file: name) }
        defer { tjDestroy(handle) }
        guard let base = data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count > 0 else {
            throw ImageStoreError(.badInput, "empty JPEG", file: name)
        }
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        guard tjDecompressHeader3(handle, base, UInt(data.count), &width, &height, &subsampling, &colorspace) == 0 else {
            throw ImageStoreError(.badInput, "not a readable JPEG: \(errorText(handle))", file: name)
        }
        guard colorspace != Int32(TJCS_CMYK.rawValue), colorspace != Int32(TJCS_YCCK.rawValue) else {
            throw ImageStoreError(.badInput, "CMYK JPEGs are not supported; convert to RGB first", file: name)
        }
        guard (1...65535).contains(width), (1...65535).contains(height) else {
            throw ImageStoreError(.badInput, "JPEG size \(width)x\(height) is outside 1...65535", file: name)
        }
        var pixels = [UInt8](repeating: 0, count: Int(width) * Int(height) * 3)
        let status = pixels.withUnsafeMutableBufferPointer {
            tjDecompress2(handle, base, UInt(data.count), $0.baseAddress, width, 0, height, Int32(TJPF_RGB.rawValue), 0)
        }
        // A warning (e.g. extraneous bytes after the image) still yields a complete image; an error does not.
        if status != 0, tjGetErrorCode(handle) == Int32(TJERR_FATAL.rawValue) {
            throw ImageStoreError(.badInput, "JPEG decoding failed: \(errorText(handle))", file: name)
        }
        return try RGBImage(width: Int(width), height: Int(height), pixels: pixels)
    }

    /// Encodes RGB as a JPEG (4:2:0, the given quality) — for test inputs and debugging dumps.
    public static func encode(_ image: RGBImage, quality: Int = 90) throws -> [UInt8] {
        guard let handle = tjInitCompress() else { throw ImageStoreError(.io, "cannot initialise libturbojpeg") }
        defer { tjDestroy(handle) }
        var buffer: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        let status = image.pixels.withUnsafeBufferPointer {
            tjCompress2(handle, $0.baseAddress, Int32(image.width), 0, Int32(image.height), Int32(TJPF_RGB.rawValue),
                        &buffer, &size, Int32(TJSAMP_420.rawValue), Int32(quality), 0)
        }
        defer { if let buffer { tjFree(buffer) } }
        guard status == 0, let buffer else { throw ImageStoreError(.invalidArgument, "JPEG encoding failed: \(errorText(handle))") }
        return Array(UnsafeBufferPointer(start: buffer, count: Int(size)))
    }

    private static func errorText(_ handle: tjhandle) -> String {
        guard let text = tjGetErrorStr2(handle) else { return "unknown libturbojpeg error" }
        return String(cString: text)
    }
}
