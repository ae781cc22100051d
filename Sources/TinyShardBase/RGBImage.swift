/// An 8-bit RGB image, rows top to bottom, pixels left to right, channels R, G, B interleaved (HWC).
///
/// This is the one image type of the project: what the image store hands out, what every augmentation op
/// reads and writes, and what a teacher or student batch is built from. It is a plain value (copy on
/// write through the array), so ops can be chained without aliasing surprises.
public struct RGBImage: Sendable, Equatable, Hashable {
    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// `width * height * 3` bytes.
    public var pixels: [UInt8]

    /// Wraps existing pixels; throws ``RGBImageError`` when the byte count is not `width * height * 3`.
    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        guard width >= 1, height >= 1 else {
            throw RGBImageError("image size must be at least 1x1, got \(width)x\(height)")
        }
        guard pixels.count == width * height * 3 else {
            throw RGBImageError("a \(width)x\(height) RGB image has \(width * height * 3) bytes, got \(pixels.count)")
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// An image filled with one colour; throws ``RGBImageError`` when a side is below 1.
    public init(width: Int, height: Int, fill: (UInt8, UInt8, UInt8) = (0, 0, 0)) throws {
        guard width >= 1, height >= 1 else {
            throw RGBImageError("image size must be at least 1x1, got \(width)x\(height)")
        }
        self.init(filledWidth: width, height: height, fill: fill)
    }

    /// For the package: the same for sizes already known to be valid (taken from an existing image).
    package init(filledWidth width: Int, height: Int, fill: (UInt8, UInt8, UInt8)) {
        self.width = width
        self.height = height
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        if fill != (0, 0, 0) {
            pixels.withUnsafeMutableBufferPointer { p in
                for i in stride(from: 0, to: p.count, by: 3) {
                    p[i] = fill.0
                    p[i + 1] = fill.1
                    p[i + 2] = fill.2
                }
            }
        }
        self.pixels = pixels
    }

    /// For the package: an image whose pixels the caller fills right away (no validation, no zeroing cost
    /// beyond what Array needs).
    package init(uncheckedWidth width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// `width * height * 3`.
    public var byteCount: Int { width * height * 3 }

    /// The pixel at (x, y) as (R, G, B).
    public subscript(x: Int, y: Int) -> (UInt8, UInt8, UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }
}

/// An image value that cannot exist (wrong byte count, zero size). Its text is the one Augment's
/// `AugmentError.badImage` has always shown: `bad image: ` and the sentence.
public struct RGBImageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong, e.g. `a 2x2 RGB image has 12 bytes, got 3`.
    public let message: String

    /// An error with `message`.
    public init(_ message: String) { self.message = message }

    /// `bad image: MESSAGE`.
    public var description: String { "bad image: \(message)" }
}
