// The antialiased separable resampler of torchvision's `resize(..., antialias=True)` on a uint8 image
// (PIL's algorithm): Augment's `ResizedCrop` and ImageStore's `MaxSideResize` both resize through it, so
// their pixels are the same bits.

/// The resampling filter of ``RGBImage/resampled(left:top:width:height:outputWidth:outputHeight:interpolation:)``
/// (Augment's crop-and-resize step, the image store's `--max-side`).
public enum ResizeInterpolation: Sendable, Equatable {
    /// Cubic convolution with a = −0.5 (PIL's and torch's antialiased bicubic).
    case bicubic
    /// Triangle filter.
    case bilinear

    /// Half-width of the filter in source pixels at scale 1.
    var support: Double { self == .bicubic ? 2 : 1 }

    func weight(_ x: Double) -> Double {
        let x = abs(x)
        switch self {
        case .bilinear:
            return x < 1 ? 1 - x : 0
        case .bicubic:
            let a = -0.5
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        }
    }
}

extension RGBImage {
    /// The box (`left`, `top`, `width` × `height`, in source pixels) resized to `outputWidth` × `outputHeight`
    /// with torch's antialiased separable filter: when shrinking, the filter is stretched by the scale so
    /// every source pixel contributes; when enlarging, it is the plain filter.
    ///
    /// The arithmetic is torchvision's float path (convert to float32, interpolate horizontally then
    /// vertically without intermediate rounding, round half to even, clamp). The box must lie inside the
    /// image and the output must be at least 1×1 (a precondition: callers check and report).
    public func resampled(left: Int, top: Int, width cropWidth: Int, height cropHeight: Int,
                          outputWidth: Int, outputHeight: Int, interpolation: ResizeInterpolation) -> RGBImage {
        precondition(left >= 0 && top >= 0 && cropWidth >= 1 && cropHeight >= 1
                     && left + cropWidth <= width && top + cropHeight <= height, "box not inside the image")
        precondition(outputWidth >= 1 && outputHeight >= 1, "output below 1x1")
        let horizontal = FilterTaps(inputSize: cropWidth, outputSize: outputWidth, interpolation: interpolation)
        let vertical = FilterTaps(inputSize: cropHeight, outputSize: outputHeight, interpolation: interpolation)
        // Horizontal pass over the crop's rows into float32: cropHeight x outputWidth x 3.
        let rowStride = outputWidth * 3
        var rows = [Float](repeating: 0, count: cropHeight * rowStride)
        // The line holds the crop row as RGB0 float vectors, followed by zeros so every output can run
        // over `stride` taps (the extra taps have weight 0 and add exactly nothing).
        var line = [SIMD4<Float>](repeating: .zero, count: cropWidth + horizontal.stride)
        pixels.withUnsafeBufferPointer { src in
            rows.withUnsafeMutableBufferPointer { dst in
                line.withUnsafeMutableBufferPointer { line in
                    let rgb0 = SIMD4<Float>(1, 1, 1, 0)
                    for y in 0..<cropHeight {
                        let from = src.baseAddress! + ((top + y) * self.width + left) * 3
                        // Four bytes at a time (R, G, B and the next pixel's R, masked off); the row's
                        // last pixel is read byte by byte so no read passes the end of the image.
                        for x in 0..<(cropWidth - 1) {
                            let word = UnsafeRawPointer(from + x * 3).loadUnaligned(as: SIMD4<UInt8>.self)
                            line[x] = SIMD4<Float>(SIMD4<Int32>(truncatingIfNeeded: word)) * rgb0
                        }
                        let last = from + (cropWidth - 1) * 3
                        line[cropWidth - 1] = SIMD4(Float(last[0]), Float(last[1]), Float(last[2]), 0)
                        horizontal.resampleLine(UnsafeBufferPointer(line), into: dst.baseAddress! + y * rowStride)
                    }
                }
            }
        }
        // Vertical pass: each output row is a weighted sum of whole intermediate rows.
        var out = [UInt8](repeating: 0, count: outputHeight * rowStride)
        rows.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                var accumulator = [Float](repeating: 0, count: rowStride)
                accumulator.withUnsafeMutableBufferPointer { acc in
                    for y in 0..<outputHeight {
                        for i in 0..<rowStride { acc[i] = 0 }
                        let start = Int(vertical.starts[y])
                        for k in 0..<Int(vertical.counts[y]) {
                            let w = vertical.weights[y * vertical.stride + k]
                            let row = src.baseAddress! + (start + k) * rowStride
                            for i in 0..<rowStride { acc[i] += w * row[i] }
                        }
                        let target = dst.baseAddress! + y * rowStride
                        for i in 0..<rowStride { target[i] = roundedClamped(acc[i]) }
                    }
                }
            }
        }
        return RGBImage(uncheckedWidth: outputWidth, height: outputHeight, pixels: out)
    }

    /// Clamp to [0, 255], then round half to even (torch's `round_` then the uint8 cast); Augment's
    /// `PixelMath.roundedClamped`, copied so the inner loop inlines.
    @inline(__always)
    private func roundedClamped(_ v: Float) -> UInt8 {
        let c = min(max(v, 0), 255)
        return UInt8(truncatingIfNeeded: (c + 0x1p23).bitPattern)
    }
}

/// Normalised filter weights for one axis, as torch's `_compute_indices_min_size_weights_aa` computes
/// them: scale s = in/out; support = filter support × max(s, 1); output i has centre c = s·(i + 0.5),
/// taps from max(int(c − support + 0.5), 0) to min(int(c + support + 0.5), in), weights
/// filter((j − c + 0.5) / max(s, 1)) normalised to sum 1.
struct FilterTaps {
    let starts: [Int32]
    let counts: [Int32]
    /// `outputSize × stride` weights, row i holding output i's taps.
    let weights: [Float]
    let stride: Int

    init(inputSize: Int, outputSize: Int, interpolation: ResizeInterpolation) {
        let scale = Double(inputSize) / Double(outputSize)
        let filterScale = max(scale, 1)
        let support = interpolation.support * filterScale
        let stride = Int((support * 2).rounded(.up)) + 2
        var starts = [Int32](repeating: 0, count: outputSize)
        var counts = [Int32](repeating: 0, count: outputSize)
        var weights = [Float](repeating: 0, count: outputSize * stride)
        for i in 0..<outputSize {
            let centre = scale * (Double(i) + 0.5)
            let low = max(Int(centre - support + 0.5), 0)
            let high = min(Int(centre + support + 0.5), inputSize)
            let count = min(max(high - low, 0), stride)
            var raw = [Double](repeating: 0, count: count)
            var total = 0.0
            for j in 0..<count {
                raw[j] = interpolation.weight((Double(j + low) - centre + 0.5) / filterScale)
                total += raw[j]
            }
            for j in 0..<count { weights[i * stride + j] = Float(total != 0 ? raw[j] / total : 0) }
            starts[i] = Int32(low)
            counts[i] = Int32(count)
        }
        self.starts = starts
        self.counts = counts
        self.weights = weights
        self.stride = stride
    }

    /// Resamples one line of RGB pixels (as RGB0 float vectors, padded with `stride` zero vectors) into
    /// `outputSize` float RGB pixels. Four outputs run side by side so their sums are independent
    /// dependency chains; each sum adds its taps in order, exactly as a one-output loop would.
    func resampleLine(_ source: UnsafeBufferPointer<SIMD4<Float>>, into target: UnsafeMutablePointer<Float>) {
        let n = starts.count
        let taps = stride
        weights.withUnsafeBufferPointer { w in
            starts.withUnsafeBufferPointer { starts in
                // Pointer arithmetic: no overflow checks in the innermost loop.
                let pixels = source.baseAddress!
                var weight = w.baseAddress!
                var i = 0
                while i + 4 <= n {
                    let p0 = pixels + Int(starts[i]), p1 = pixels + Int(starts[i + 1])
                    let p2 = pixels + Int(starts[i + 2]), p3 = pixels + Int(starts[i + 3])
                    let w0 = weight, w1 = weight + taps, w2 = weight + 2 * taps, w3 = weight + 3 * taps
                    var s0 = SIMD4<Float>.zero, s1 = SIMD4<Float>.zero, s2 = SIMD4<Float>.zero, s3 = SIMD4<Float>.zero
                    for k in 0..<taps {
                        s0 += w0[k] * p0[k]
                        s1 += w1[k] * p1[k]
                        s2 += w2[k] * p2[k]
                        s3 += w3[k] * p3[k]
                    }
                    let out = target + i * 3
                    store(s0, out)
                    store(s1, out + 3)
                    store(s2, out + 6)
                    store(s3, out + 9)
                    weight += 4 * taps
                    i += 4
                }
                while i < n {
                    let p0 = pixels + Int(starts[i])
                    var sum = SIMD4<Float>.zero
                    for k in 0..<taps { sum += weight[k] * p0[k] }
                    store(sum, target + i * 3)
                    weight += taps
                    i += 1
                }
            }
        }
    }

    @inline(__always)
    private func store(_ v: SIMD4<Float>, _ p: UnsafeMutablePointer<Float>) {
        p[0] = v[0]
        p[1] = v[1]
        p[2] = v[2]
    }
}
