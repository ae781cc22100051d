/// Depthwise 2-D convolution (one k×k filter per channel, no bias) on NHWC activations with
/// PyTorch-layout weights `(C, 1, k, k)`: forward, input gradient and weight gradient.
///
/// Channels-last makes every tap a contiguous run of channels, so each kernel is a loop of
/// 8-wide fused multiply-adds; rows of the output are split across workers.
public enum DepthwiseConv {
    public struct Geometry: Hashable, Sendable {
        public var batch, channels, height, width, kernel, stride, padding: Int
        public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
        public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
        public init(batch: Int, channels: Int, height: Int, width: Int, kernel: Int = 3, stride: Int, padding: Int = 1) {
            (self.batch, self.channels, self.height, self.width) = (batch, channels, height, width)
            (self.kernel, self.stride, self.padding) = (kernel, stride, padding)
        }
    }

    /// Weights as `[tap][C]` so that a tap's weights for consecutive channels are contiguous.
    static func tapMajor(_ weight: Tensor, _ g: Geometry) -> [Float] {
        let T = g.kernel * g.kernel
        var w = [Float](repeating: 0, count: T * g.channels)
        for c in 0..<g.channels { for t in 0..<T { w[t * g.channels + c] = weight.pointer[c * T + t] } }
        return w
    }

    public static func forward(_ input: Tensor, weight: Tensor, geometry g: Geometry) -> Tensor {
        precondition(input.count == g.batch * g.height * g.width * g.channels, "depthwise input \(input.shape) vs \(g)")
        let (OH, OW, C, H, W, K) = (g.outHeight, g.outWidth, g.channels, g.height, g.width, g.kernel)
        let out = Tensor(uninitialized: [g.batch, OH, OW, C])
        let wt = tapMajor(weight, g)
        let x = input.pointer, y = out.pointer
        let C8 = C / 8 * 8
        wt.withUnsafeBufferPointer { wp in
            let w = wp.baseAddress!
            Parallel.forRanges(g.batch * OH, grain: 4) { rows in
                for r in rows {
                    let n = r / OH, oy = r % OH
                    let iy0 = oy * g.stride - g.padding
                    let ky0 = max(0, -iy0), ky1 = min(K, H - iy0)
                    for ox in 0..<OW {
                        let ix0 = ox * g.stride - g.padding
                        let kx0 = max(0, -ix0), kx1 = min(K, W - ix0)
                        let yo = ((n * OH + oy) * OW + ox) * C
                        var c = 0
                        while c < C8 {
                            var acc = Float8()
                            for ky in ky0..<ky1 {
                                let rowBase = ((n * H + iy0 + ky) * W + ix0) * C + c
                                for kx in kx0..<kx1 {
                                    acc += load8(x, rowBase + kx * C) * load8(w, (ky * K + kx) * C + c)
                                }
                            }
                            store8(acc, y, yo + c)
                            c += 8
                        }
                        while c < C {
                            var acc: Float = 0
                            for ky in ky0..<ky1 { for kx in kx0..<kx1 {
                                acc += x[((n * H + iy0 + ky) * W + ix0 + kx) * C + c] * w[(ky * K + kx) * C + c]
                            } }
                            y[yo + c] = acc
                            c += 1
                        }
                    }
                }
            }
        }
        return out
    }

    /// Gradient with respect to the input, `(N, H, W, C)`.
    public static func backwardData(_ gradOutput: Tensor, weight: Tensor, geometry g: Geometry) -> Tensor {
        let (OH, OW, C, H, W, K, S, P) = (g.outHeight, g.outWidth, g.channels, g.height, g.width, g.kernel, g.stride, g.padding)
        let dx = Tensor(uninitialized: [g.batch, H, W, C])
        let wt = tapMajor(weight, g)
        let dy = gradOutput.pointer, d = dx.pointer
        let C8 = C / 8 * 8
        wt.withUnsafeBufferPointer { wp in
            let w = wp.baseAddress!
            Parallel.forRanges(g.batch * H, grain: 4) { rows in
                var taps: [(Int, Int)] = []   // (offset into dy, offset into w) of contributing taps
                taps.reserveCapacity(K * K)
                for r in rows {
                    let n = r / H, iy = r % H
                    for ix in 0..<W {
                        taps.removeAll(keepingCapacity: true)
                        for ky in 0..<K {
                            let ty = iy + P - ky
                            if ty < 0 || ty % S != 0 || ty / S >= OH { continue }
                            for kx in 0..<K {
                                let tx = ix + P - kx
                                if tx < 0 || tx % S != 0 || tx / S >= OW { continue }
                                taps.append((((n * OH + ty / S) * OW + tx / S) * C, (ky * K + kx) * C))
                            }
                        }
                        let o = ((n * H + iy) * W + ix) * C
                        var c = 0
                        while c < C8 {
                            var acc = Float8()
                            for (a, b) in taps { acc += load8(dy, a + c) * load8(w, b + c) }
                            store8(acc, d, o + c)
                            c += 8
                        }
                        while c < C {
                            var acc: Float = 0
                            for (a, b) in taps { acc += dy[a + c] * w[b + c] }
                            d[o + c] = acc
                            c += 1
                        }
                    }
                }
            }
        }
        return dx
    }

    /// Writes the weight gradient (`(C, 1, k, k)`, overwriting) into `gradWeight`.
    public static func backwardWeights(_ gradOutput: Tensor, input: Tensor, gradWeight: Tensor, geometry g: Geometry) {
        let (OH, OW, C, H, W, K) = (g.outHeight, g.outWidth, g.channels, g.height, g.width, g.kernel)
        let T = K * K
        let workers = Parallel.workerCount
        var partial = [Double](repeating: 0, count: workers * T * C)
        let x = input.pointer, dy = gradOutput.pointer
        let C8 = C / 8 * 8
        partial.withUnsafeMutableBufferPointer { pp in
            let P = pp.baseAddress!
            Parallel.forWorkers(g.batch * OH, grain: 4) { worker, rows in
                let acc = UnsafeMutablePointer<Float>.allocate(capacity: T * C)
                defer { acc.deallocate() }
                acc.initialize(repeating: 0, count: T * C)
                for r in rows {
                    let n = r / OH, oy = r % OH
                    let iy0 = oy * g.stride - g.padding
                    let ky0 = max(0, -iy0), ky1 = min(K, H - iy0)
                    for ox in 0..<OW {
                        let ix0 = ox * g.stride - g.padding
                        let kx0 = max(0, -ix0), kx1 = min(K, W - ix0)
                        let yo = ((n * OH + oy) * OW + ox) * C
                        for ky in ky0..<ky1 {
                            for kx in kx0..<kx1 {
                                let xo = ((n * H + iy0 + ky) * W + ix0 + kx) * C
                                let ao = (ky * K + kx) * C
                                var c = 0
                                while c < C8 {
                                    store8(load8(acc, ao + c) + load8(dy, yo + c) * load8(x, xo + c), acc, ao + c)
                                    c += 8
                                }
                                while c < C { acc[ao + c] += dy[yo + c] * x[xo + c]; c += 1 }
                            }
                        }
                    }
                    if (r - rows.lowerBound) % 8 == 7 || r == rows.upperBound - 1 {
                        // flush to double every few rows to keep float sums short
                        for i in 0..<(T * C) { P[worker * T * C + i] += Double(acc[i]); acc[i] = 0 }
                    }
                }
            }
        }
        for c in 0..<C {
            for t in 0..<T {
                var s = 0.0
                for w in 0..<workers { s += partial[w * T * C + t * C + c] }
                gradWeight.pointer[c * T + t] = Float(s)
            }
        }
    }
}
