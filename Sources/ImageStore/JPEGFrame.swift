/// The structural rules of a JPEG store's image (Spec/IMAGESTORE.md 3.2, rules 1-3), checked from the
/// marker segments alone before libjpeg sees any entropy-coded data: whole stream (SOI ... EOI), a
/// sequential 8-bit frame (SOF0/SOF1) before the first scan, 1 or 3 components. Cost: one walk over the
/// segment headers, bounded by the stream's length.
struct JPEGFrame: Equatable {
    var marker: UInt8
    var precision: Int
    var width: Int
    var height: Int
    var components: Int

    /// The first frame header, or a sentence saying which rule the stream breaks.
    static func parse(_ data: UnsafeRawBufferPointer) -> Result<JPEGFrame, JPEGStructureProblem> {
        func fail(_ message: String) -> Result<JPEGFrame, JPEGStructureProblem> { .failure(JPEGStructureProblem(message)) }
        let n = data.count
        guard n >= 4, data[0] == 0xFF, data[1] == 0xD8 else { return fail("the JPEG does not start with SOI (FF D8)") }
        guard data[n - 2] == 0xFF, data[n - 1] == 0xD9 else { return fail("the JPEG does not end with EOI (FF D9): truncated or padded") }
        var p = 2
        while true {
            guard p < n, data[p] == 0xFF else { return fail("expected a marker at byte \(p)") }
            while p < n, data[p] == 0xFF { p += 1 }  // fill bytes
            guard p < n else { return fail("the JPEG ends inside a marker") }
            let marker = data[p]
            p += 1
            switch marker {
            case 0xDA: return fail("a scan (SOS) comes before any frame header")
            case 0xD9: return fail("the JPEG ends (EOI) before any frame header")
            case 0x00: return fail("byte \(p - 1): FF 00 is not a marker")
            case 0x01, 0xD0...0xD8: continue  // TEM, RSTn, SOI: no length
            default: break
            }
            guard p + 2 <= n else { return fail("marker FF \(hex(marker)) at byte \(p - 2) has no length") }
            let length = Int(data[p]) << 8 | Int(data[p + 1])
            guard length >= 2, p + length <= n else {
                return fail("marker FF \(hex(marker)) at byte \(p - 2): segment length \(length) leaves the \(n)-byte stream")
            }
            let isFrame = (0xC0...0xCF).contains(marker) && marker != 0xC4 && marker != 0xC8 && marker != 0xCC
            if isFrame {
                guard marker == 0xC0 || marker == 0xC1 else {
                    return fail("frame SOF\(marker - 0xC0) (FF \(hex(marker))) is not sequential Huffman: only baseline (SOF0) and extended sequential (SOF1) are allowed")
                }
                guard length >= 8 else { return fail("frame header length \(length) is below 8") }
                let components = Int(data[p + 7])
                guard length == 8 + 3 * components else {
                    return fail("frame header length \(length) does not match its \(components) components")
                }
                return .success(JPEGFrame(marker: marker, precision: Int(data[p + 2]),
                                          width: Int(data[p + 5]) << 8 | Int(data[p + 6]),
                                          height: Int(data[p + 3]) << 8 | Int(data[p + 4]), components: components))
            }
            p += length
        }
    }

    /// Rules 1-3 for an image the index says is `width`×`height`; nil when the stream passes.
    static func problem(_ data: UnsafeRawBufferPointer, width: Int, height: Int) -> String? {
        switch parse(data) {
        case let .failure(problem): return problem.message
        case let .success(frame):
            if frame.precision != 8 { return "sample precision \(frame.precision) must be 8" }
            if frame.height == 0 { return "frame height 0 (defined by a DNL marker) is not allowed" }
            if frame.width != width || frame.height != height {
                return "the JPEG is \(frame.width)x\(frame.height), the index says \(width)x\(height)"
            }
            if frame.components != 1 && frame.components != 3 {
                return "\(frame.components) components: only grey (1) and colour (3) are allowed\(frame.components == 4 ? " (CMYK/YCCK)" : "")"
            }
            return nil
        }
    }

    private static func hex(_ byte: UInt8) -> String {
        let text = String(byte, radix: 16, uppercase: true)
        return text.count == 1 ? "0" + text : text
    }
}

/// Why a stream breaks the structural rules (a sentence for the error message).
struct JPEGStructureProblem: Error, Equatable {
    var message: String
    init(_ message: String) { self.message = message }
}
