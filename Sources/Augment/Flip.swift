extension RGBImage {
    /// The image mirrored left to right (torchvision's `hflip`, PIL's `FLIP_LEFT_RIGHT`).
    public func flippedHorizontally() -> RGBImage {
        var out = self
        let width = self.width
        pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                for y in 0..<height {
                    let row = y * width * 3
                    for x in 0..<width {
                        let from = row + x * 3
                        let to = row + (width - 1 - x) * 3
                        dst[to] = src[from]
                        dst[to + 1] = src[from + 1]
                        dst[to + 2] = src[from + 2]
                    }
                }
            }
        }
        return out
    }
}
