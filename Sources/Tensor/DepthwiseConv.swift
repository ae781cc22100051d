import CTensorKernels

/// Depthwise 2-D convolution (one k×k filter per channel, no bias) on NHWC activations with
/// PyTorch-layout weights `(C, 1, k, k)`: forward, input gradient and weight gradient.
///
/// Channels-last makes every tap a contiguous run of channels, so each kernel (CTensorKernels) is a
/// loop of 8-wide multiply-adds; rows of the output are split across workers.
public enum DepthwiseConv {
    /// Everything that determines a depthwise convolution's shapes.
    public struct Geometry: Hashable, Sendable {
        /// The input `(batch, height, width, channels)` and the square kernel's side, stride and zero padding.
        public var batch, channels, height, width, kernel, stride, padding: Int
        /// Output height: `(height + 2·padding − kernel) / stride + 1`.
        public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
        /// Output width: `(width + 2·padding − kernel) / stride + 1`.
        public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
        /// A geometry; 3×3 with padding 1 by default.
        public init(batch: Int, channels: Int, height: Int, width: Int, kernel: Int = 3, stride: Int, padding: Int = 1) {
            (self.batch, self.channels, self.height, self.width) = (batch, channels, height, width)
            (self.kernel, self.stride, self.padding) = (kernel, stride, padding)
        }
        /// The C kernels' form of the geometry.
        var kernelGeometry: tinyshard_depthwise_geometry {
            tinyshard_depthwise_geometry(batch: batch, channels: channels, height: height, width: width, kernel: kernel,
                                         stride: stride, padding: padding, out_height: outHeight, out_width: outWidth)
        }
    }

    /// Weights as `[tap][C]` so that a tap's weights for consecutive channels are contiguous.
    static func tapMajor(_ weight: Tensor, _ g: Geometry) -> [Float] {
        let T = g.kernel * g.kernel
        var w = [Float](repeating: 0, count: T * g.channels)
        for c in 0..<g.channels { for t in 0..<T { w[t * g.channels + c] = weight.pointer[c * T + t] } }
        return w
    }

    /// The depthwise convolution of NHWC `input` with `weight` (one k×k filter per channel); traps on a shape that
    /// disagrees with `geometry`.
    public static func forward(_ input: Tensor, weight: Tensor, geometry g: Geometry) -> Tensor {
        precondition(input.count == g.batch * g.height * g.width * g.channels, "depthwise input \(input.shape) vs \(g)")
        let out = Tensor(uninitialized: [g.batch, g.outHeight, g.outWidth, g.channels])
        let wt = tapMajor(weight, g)
        let x = input.pointer, y = out.pointer
        wt.withUnsafeBufferPointer { wp in withUnsafePointer(to: g.kernelGeometry) { geometry in
            Parallel.forRanges(g.batch * g.outHeight, grain: 4) { rows in
                tinyshard_depthwise_forward_rows(x, wp.baseAddress, y, geometry, rows.lowerBound, rows.upperBound)
            }
        } }
        return out
    }

    /// Gradient with respect to the input, `(N, H, W, C)`.
    public static func backwardData(_ gradOutput: Tensor, weight: Tensor, geometry g: Geometry) -> Tensor {
        let dx = Tensor(uninitialized: [g.batch, g.height, g.width, g.channels])
        let wt = tapMajor(weight, g)
        let dy = gradOutput.pointer, d = dx.pointer
        wt.withUnsafeBufferPointer { wp in withUnsafePointer(to: g.kernelGeometry) { geometry in
            Parallel.forRanges(g.batch * g.height, grain: 4) { rows in
                withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * g.kernel * g.kernel) { taps in
                    tinyshard_depthwise_backward_data_rows(dy, wp.baseAddress, d, geometry, rows.lowerBound, rows.upperBound,
                                                           taps.baseAddress)
                }
            }
        } }
        return dx
    }

    /// Writes the weight gradient (`(C, 1, k, k)`, overwriting) into `gradWeight`.
    public static func backwardWeights(_ gradOutput: Tensor, input: Tensor, gradWeight: Tensor, geometry g: Geometry) {
        let (C, T) = (g.channels, g.kernel * g.kernel)
        let workers = Parallel.workerCount
        var partial = [Double](repeating: 0, count: workers * T * C)
        let x = input.pointer, dy = gradOutput.pointer
        partial.withUnsafeMutableBufferPointer { pp in withUnsafePointer(to: g.kernelGeometry) { geometry in
            let P = pp.baseAddress!
            Parallel.forWorkers(g.batch * g.outHeight, grain: 4) { worker, rows in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: T * C) { scratch in
                    tinyshard_depthwise_backward_weights_rows(dy, x, geometry, rows.lowerBound, rows.upperBound, scratch.baseAddress,
                                                              P + worker * T * C)
                }
            }
        } }
        for c in 0..<C {
            for t in 0..<T {
                var s = 0.0
                for w in 0..<workers { s += partial[w * T * C + t * C + c] }
                gradWeight.pointer[c * T + t] = Float(s)
            }
        }
    }
}
