import TinyShardBase
import CTurboJPEG

/// JPEG through libturbojpeg with its decoding defaults (accurate integer IDCT, fancy upsampling): the
/// decoder settings PIL uses, so decoded pixels match torchvision's ImageFolder loader byte for byte.
/// EXIF orientation is not applied (PIL does not apply it either).
public enum JPEGCodec {
    /// Decodes an input file's JPEG (baseline or progressive, grey or YCbCr) to RGB, for the importers.
    /// CMYK JPEGs are refused, so is a header claiming more than ``ImageLimits/maxPixels`` (before any
    /// allocation) and a stream that ends early (libjpeg would fill the rest with grey; PIL refuses it as
    /// truncated). Other libjpeg warnings (e.g. extraneous bytes before a marker) are accepted, as PIL
    /// accepts them. Progressive streams are limited to 500 scans (libjpeg-turbo's bound).
    public static func decode(_ data: UnsafeRawBufferPointer, name: String) throws -> RGBImage {
        guard let base = data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count > 0 else {
            throw ImageStoreError(.badInput, "empty JPEG", file: name)
        }
        guard let handle = tjInitDecompress() else { throw ImageStoreError(.io, "cannot initialise libturbojpeg", file: name) }
        defer { tjDestroy(handle) }
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        guard tjDecompressHeader3(handle, base, UInt(data.count), &width, &height, &subsampling, &colorspace) == 0 else {
            throw ImageStoreError(.badInput, "not a readable JPEG: \(errorText(handle))", file: name)
        }
        guard colorspace != Int32(TJCS_CMYK.rawValue), colorspace != Int32(TJCS_YCCK.rawValue) else {
            throw ImageStoreError(.badInput, "CMYK JPEGs are not supported; convert to RGB first", file: name)
        }
        guard width > 0, height > 0 else { throw ImageStoreError(.badInput, "not a readable JPEG: no image size in its header", file: name) }
        try ImageLimits.checkInputSize(Int(width), Int(height), what: "JPEG", name: name)
        var pixels = [UInt8](repeating: 0, count: Int(width) * Int(height) * 3)
        let status = pixels.withUnsafeMutableBufferPointer {
            tjDecompress2(handle, base, UInt(data.count), $0.baseAddress, width, 0, height, Int32(TJPF_RGB.rawValue),
                          Int32(TJFLAG_LIMITSCANS))
        }
        if status != 0 {
            let text = errorText(handle)
            if tjGetErrorCode(handle) == Int32(TJERR_FATAL.rawValue) {
                throw ImageStoreError(.badInput, "JPEG decoding failed: \(text)", file: name)
            }
            if text.contains("Premature end") {
                throw ImageStoreError(.badInput, "truncated JPEG: \(text)", file: name)
            }
        }
        return try RGBImage(width: Int(width), height: Int(height), pixels: pixels)
    }

    /// Decodes a JPEG store's image into `pixels` (W·H·3 bytes), checking Spec/IMAGESTORE.md 3.2 rules
    /// 1-4: the marker structure and frame first (no entropy-coded data is touched when they fail), then
    /// a decode that treats every libjpeg warning as an error. Returns a sentence when the image breaks
    /// a rule, nil when `pixels` holds the image.
    static func decodeStored(_ data: UnsafeRawBufferPointer, width: Int, height: Int,
                             into pixels: UnsafeMutableRawBufferPointer) -> String? {
        precondition(pixels.count == width * height * 3, "caller passes a W·H·3 buffer")
        if let problem = JPEGFrame.problem(data, width: width, height: height) { return problem }
        guard let base = data.baseAddress?.assumingMemoryBound(to: UInt8.self),
              let target = pixels.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return "empty JPEG" }
        guard let handle = tjInitDecompress() else { return "cannot initialise libturbojpeg" }
        defer { tjDestroy(handle) }
        let status = tjDecompress2(handle, base, UInt(data.count), target, Int32(width), 0, Int32(height),
                                   Int32(TJPF_RGB.rawValue), Int32(TJFLAG_STOPONWARNING))
        return status == 0 ? nil : "JPEG decoding failed: \(errorText(handle))"
    }

    /// Encodes RGB as a baseline JPEG with the accurate integer DCT (libjpeg's and PIL's default; the
    /// TurboJPEG API would otherwise use the fast one) and standard Huffman tables.
    public static func encode(_ image: RGBImage, quality: Int = 90, subsampling: ChromaSubsampling = .s420) throws -> [UInt8] {
        guard (1...100).contains(quality) else { throw ImageStoreError(.invalidArgument, "JPEG quality \(quality) must be 1...100") }
        guard let handle = tjInitCompress() else { throw ImageStoreError(.io, "cannot initialise libturbojpeg") }
        defer { tjDestroy(handle) }
        var buffer: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        let sampling = subsampling == .s420 ? TJSAMP_420 : TJSAMP_444
        let status = image.pixels.withUnsafeBufferPointer {
            tjCompress2(handle, $0.baseAddress, Int32(image.width), 0, Int32(image.height), Int32(TJPF_RGB.rawValue),
                        &buffer, &size, Int32(sampling.rawValue), Int32(quality), Int32(TJFLAG_ACCURATEDCT))
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
