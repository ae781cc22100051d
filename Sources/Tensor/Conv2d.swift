import Foundation

/// Dense 2-D convolution (no bias, square kernel, symmetric padding) on NHWC activations with
/// PyTorch-layout weights `(out, in, k, k)`, forward and backward, as im2col + oneDNN SGEMM.
///
/// Channels-last makes each output pixel's receptive field `k` contiguous runs of `k·Cin`
/// values, so the patch matrix `(N·OH·OW, k·k·Cin)` is cheap to build and the products run at
/// GEMM speed. (oneDNN's direct convolution picks a reference kernel for plain NHWC/OIHW here.)
public enum Conv2d {
    /// Everything that determines a convolution's shapes.
    public struct Geometry: Hashable, Sendable {
        /// The input `(batch, height, width, inChannels)`, the output channels, and the square kernel's side, stride
        /// and zero padding.
        public var batch, inChannels, outChannels, height, width, kernel, stride, padding: Int
        /// Output height: `(height + 2·padding − kernel) / stride + 1`.
        public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
        /// Output width: `(width + 2·padding − kernel) / stride + 1`.
        public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
        var patchSize: Int { kernel * kernel * inChannels }
        var rows: Int { batch * outHeight * outWidth }
        /// A geometry with every dimension given.
        public init(batch: Int, inChannels: Int, outChannels: Int, height: Int, width: Int,
                    kernel: Int, stride: Int, padding: Int) {
            (self.batch, self.inChannels, self.outChannels, self.height, self.width) =
                (batch, inChannels, outChannels, height, width)
            (self.kernel, self.stride, self.padding) = (kernel, stride, padding)
        }
    }

    /// `(N·OH·OW, k·k·Cin)` patch matrix, zeros outside the image.
    static func im2col(_ x: UnsafeMutablePointer<Float>, _ g: Geometry) -> Tensor {
        let cols = Tensor(uninitialized: [g.rows, g.patchSize])
        let (OH, OW, K, C, H, W, P) = (g.outHeight, g.outWidth, g.kernel, g.inChannels, g.height, g.width, g.patchSize)
        let c = cols.pointer
        Parallel.forRanges(g.batch * OH, grain: 8) { rows in
            for r in rows {
                let n = r / OH, oy = r % OH
                for ox in 0..<OW {
                    let dst = c + (r * OW + ox) * P
                    for ky in 0..<K {
                        let iy = oy * g.stride - g.padding + ky
                        for kx in 0..<K {
                            let ix = ox * g.stride - g.padding + kx
                            let d = dst + (ky * K + kx) * C
                            if iy >= 0 && iy < H && ix >= 0 && ix < W {
                                d.update(from: x + ((n * H + iy) * W + ix) * C, count: C)
                            } else {
                                d.update(repeating: 0, count: C)
                            }
                        }
                    }
                }
            }
        }
        return cols
    }

    /// OIHW → `(O, k, k, I)` so that a weight row matches a patch row.
    static func patchMajorWeights(_ w: Tensor, _ g: Geometry) -> Tensor {
        let (O, I, K) = (g.outChannels, g.inChannels, g.kernel)
        let out = Tensor(uninitialized: [O, K * K * I])
        for o in 0..<O { for i in 0..<I { for t in 0..<(K * K) {
            out.pointer[(o * K * K + t) * I + i] = w.pointer[(o * I + i) * K * K + t]
        } } }
        return out
    }

    /// `output[n, oy, ox, o] = Σ input[n, iy, ix, i] · weight[o, i, ky, kx]`; input `(N, H, W, Cin)`.
    public static func forward(_ input: Tensor, weight: Tensor, geometry g: Geometry) -> Tensor {
        precondition(input.count == g.batch * g.height * g.width * g.inChannels, "conv input \(input.shape) vs \(g)")
        let cols = im2col(input.pointer, g)
        let w = patchMajorWeights(weight, g)
        let out = Tensor(uninitialized: [g.batch, g.outHeight, g.outWidth, g.outChannels])
        Gemm.run(transB: true, m: g.rows, n: g.outChannels, k: g.patchSize, a: cols.pointer, lda: g.patchSize,
                 b: w.pointer, ldb: g.patchSize, c: out.pointer, ldc: g.outChannels)
        return out
    }

    /// Gradient with respect to the input, `(N, H, W, Cin)`.
    public static func backwardData(_ gradOutput: Tensor, weight: Tensor, geometry g: Geometry) -> Tensor {
        let w = patchMajorWeights(weight, g)
        let dcols = Tensor(uninitialized: [g.rows, g.patchSize])
        Gemm.run(m: g.rows, n: g.patchSize, k: g.outChannels, a: gradOutput.pointer, lda: g.outChannels,
                 b: w.pointer, ldb: g.patchSize, c: dcols.pointer, ldc: g.patchSize)
        let dx = Tensor(zeros: [g.batch, g.height, g.width, g.inChannels])
        let (OH, OW, K, C, H, W, P) = (g.outHeight, g.outWidth, g.kernel, g.inChannels, g.height, g.width, g.patchSize)
        let d = dx.pointer, dc = dcols.pointer
        Parallel.forRanges(g.batch, grain: 1) { samples in   // samples never overlap: no races
            for n in samples {
                for oy in 0..<OH { for ox in 0..<OW {
                    let src = dc + ((n * OH + oy) * OW + ox) * P
                    for ky in 0..<K {
                        let iy = oy * g.stride - g.padding + ky
                        if iy < 0 || iy >= H { continue }
                        for kx in 0..<K {
                            let ix = ox * g.stride - g.padding + kx
                            if ix < 0 || ix >= W { continue }
                            let dst = d + ((n * H + iy) * W + ix) * C, s = src + (ky * K + kx) * C
                            for c in 0..<C { dst[c] += s[c] }
                        }
                    }
                } }
            }
        }
        return dx
    }

    /// Writes the gradient with respect to the weights into `gradWeight` (`(out, in, k, k)`).
    public static func backwardWeights(_ gradOutput: Tensor, input: Tensor, gradWeight: Tensor, geometry g: Geometry) {
        let cols = im2col(input.pointer, g)
        let dw = Tensor(uninitialized: [g.outChannels, g.patchSize])
        Gemm.run(transA: true, m: g.outChannels, n: g.patchSize, k: g.rows, a: gradOutput.pointer, lda: g.outChannels,
                 b: cols.pointer, ldb: g.patchSize, c: dw.pointer, ldc: g.patchSize)
        let (O, I, K) = (g.outChannels, g.inChannels, g.kernel)
        for o in 0..<O { for i in 0..<I { for t in 0..<(K * K) {
            gradWeight.pointer[(o * I + i) * K * K + t] = dw.pointer[(o * K * K + t) * I + i]
        } } }
    }
}
