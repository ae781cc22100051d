import Foundation

/// Soft-target cross entropy, `mean_n Σ_c −t[n,c]·log_softmax(z[n])[c]` (timm's SoftTargetCrossEntropy).
public enum SoftTargetCrossEntropy {
    /// Returns the loss and the gradient with respect to the logits `(N, classes)`.
    public static func lossAndGradient(logits: Tensor, target: Tensor) -> (loss: Float, gradient: Tensor) {
        precondition(logits.shape == target.shape && logits.shape.count == 2, "logits \(logits.shape) vs target \(target.shape)")
        let N = logits.shape[0], K = logits.shape[1]
        let grad = Tensor(uninitialized: logits.shape)
        var total = 0.0
        for n in 0..<N {
            let z = logits.pointer + n * K, t = target.pointer + n * K, g = grad.pointer + n * K
            var m = -Float.infinity
            for c in 0..<K { m = max(m, z[c]) }
            var s = 0.0
            for c in 0..<K { s += Double(kernelExp(z[c] - m)) }
            let logSum = Double(m) + log(s)
            var tSum = 0.0, loss = 0.0
            for c in 0..<K { loss -= Double(t[c]) * (Double(z[c]) - logSum); tSum += Double(t[c]) }
            total += loss
            for c in 0..<K {
                let p = exp(Double(z[c]) - logSum)
                g[c] = Float((p * tSum - Double(t[c])) / Double(N))
            }
        }
        return (Float(total / Double(N)), grad)
    }
}

/// Mean over the middle dimension: `(N, L, C)` → `(N, C)` (global average pooling of channels-last maps).
public enum GlobalAveragePool {
    /// The mean over the L positions of `(N, L, C)` data, shape `(N, C)`.
    public static func forward(_ x: Tensor, batch N: Int, channels C: Int) -> Tensor {
        let L = x.count / (N * C)
        let out = Tensor(zeros: [N, C])
        for n in 0..<N {
            let o = out.pointer + n * C
            var acc = [Double](repeating: 0, count: C)
            for l in 0..<L { let r = x.pointer + (n * L + l) * C; for c in 0..<C { acc[c] += Double(r[c]) } }
            for c in 0..<C { o[c] = Float(acc[c] / Double(L)) }
        }
        return out
    }

    /// Spreads each `(N, C)` gradient evenly (÷ L) over the L positions: shape `(N, L, C)`.
    public static func backward(_ gradOutput: Tensor, batch N: Int, positions L: Int, channels C: Int) -> Tensor {
        let dx = Tensor(uninitialized: [N, L, C])
        let inv = 1 / Float(L)
        for n in 0..<N {
            let g = gradOutput.pointer + n * C
            for l in 0..<L { let r = dx.pointer + (n * L + l) * C; for c in 0..<C { r[c] = g[c] * inv } }
        }
        return dx
    }
}

/// Layout changes between PyTorch's NCHW and the channels-last NHWC used inside the model.
public enum Layout {
    /// `(N, C, H, W)` to `(N, H, W, C)`.
    public static func nchwToNHWC(_ x: Tensor) -> Tensor {
        let (N, C, H, W) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let out = Tensor(uninitialized: [N, H, W, C])
        for n in 0..<N { for c in 0..<C { for p in 0..<(H * W) {
            out.pointer[(n * H * W + p) * C + c] = x.pointer[(n * C + c) * H * W + p]
        } } }
        return out
    }

    /// `(N, H, W, C)` to `(N, C, H, W)`.
    public static func nhwcToNCHW(_ x: Tensor) -> Tensor {
        let (N, H, W, C) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let out = Tensor(uninitialized: [N, C, H, W])
        for n in 0..<N { for c in 0..<C { for p in 0..<(H * W) {
            out.pointer[(n * C + c) * H * W + p] = x.pointer[(n * H * W + p) * C + c]
        } } }
        return out
    }
}
