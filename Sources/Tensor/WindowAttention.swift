import CTensorKernels

/// Window partitioning exactly as timm's `TinyVitBlock`: channels-last `(B, H, W, C)` maps to
/// `(B·nH·nW, w·w, C)` windows, zero-padding the bottom/right so H and W become multiples of w.
/// Padded tokens are plain zeros (they go through the attention LayerNorm and are not masked).
/// The model's ``WindowAttention`` gathers windows itself (and skips padded queries); this explicit
/// form is timm's `F.pad` + `view/transpose`, kept as the reference and for tools.
public enum WindowPartition {
    /// The number of windows along each axis for an `h × w` map.
    public static func windowCounts(height: Int, width: Int, window: Int) -> (Int, Int) {
        ((height + window - 1) / window, (width + window - 1) / window)
    }

    /// `(B, H, W, C)` → `(B·nH·nW, w·w, C)`, zero-padded. Also the adjoint of `reverse`.
    public static func partition(_ x: Tensor, batch B: Int, height H: Int, width W: Int, channels C: Int,
                                 window ws: Int) -> Tensor {
        let (nH, nW) = windowCounts(height: H, width: W, window: ws)
        let out = Tensor(uninitialized: [B * nH * nW, ws * ws, C])
        let src = x.pointer, dst = out.pointer
        Parallel.forRanges(B * nH * nW, grain: 4) { windows in
            for win in windows {
                let b = win / (nH * nW), wy = (win / nW) % nH, wx = win % nW
                for ty in 0..<ws {
                    let y = wy * ws + ty
                    for tx in 0..<ws {
                        let xpos = wx * ws + tx
                        let d = dst + ((win * ws + ty) * ws + tx) * C
                        if y < H && xpos < W {
                            d.update(from: src + ((b * H + y) * W + xpos) * C, count: C)
                        } else {
                            d.update(repeating: 0, count: C)
                        }
                    }
                }
            }
        }
        return out
    }

    /// `(B·nH·nW, w·w, C)` → `(B, H, W, C)`, dropping padded tokens. Also the adjoint of `partition`.
    public static func reverse(_ windows: Tensor, batch B: Int, height H: Int, width W: Int, channels C: Int,
                               window ws: Int) -> Tensor {
        let (nH, nW) = windowCounts(height: H, width: W, window: ws)
        let out = Tensor(uninitialized: [B, H, W, C])
        let src = windows.pointer, dst = out.pointer
        Parallel.forRanges(B * H, grain: 4) { rows in
            for r in rows {
                let b = r / H, y = r % H
                let wy = y / ws, ty = y % ws
                for xpos in 0..<W {
                    let win = (b * nH + wy) * nW + xpos / ws
                    (dst + (r * W + xpos) * C).update(from: src + ((win * ws + ty) * ws + xpos % ws) * C, count: C)
                }
            }
        }
        return out
    }
}

/// Multi-head self-attention inside `w × w` windows of a `(B, H, W)` token map, with LeViT-style
/// attention biases: `softmax(scale · Q·Kᵀ + B[h, idx(i, j)]) · V`, `idx(i, j) = |Δy|·w + |Δx|`
/// indexing a `(heads, w²)` table — timm's `TinyVitBlock` attention, window partition included.
///
/// Input is timm's packed `qkv` projection of the *real* tokens, `(B·H·W, heads·3·d)` (per head:
/// q, k, v), plus, when H or W is not a multiple of w, `padRow`: the projection of a padded
/// token. timm pads the map with zero tokens before the attention LayerNorm, so every padded
/// token has the same projection (`qkv(LayerNorm(0))`), takes part as a key and value (it is not
/// masked), and its own output is cropped. Windows are therefore gathered here — real tokens first,
/// then copies of `padRow` — and only real queries are computed; the output `(B·H·W, heads·d)` is in
/// token order, so no partition/reverse copies are needed. The per-window products run on
/// oneDNN's GEMM, windows are split across workers.
public enum WindowAttention {
    /// Geometry of one windowed attention call.
    public struct Geometry: Sendable {
        /// The input `(batch, height, width, heads·keyDim)` in tokens, heads, key size per head and window side.
        public var batch, height, width, heads, keyDim, window: Int
        /// A geometry with every dimension given.
        public init(batch: Int, height: Int, width: Int, heads: Int, keyDim: Int, window: Int) {
            (self.batch, self.height, self.width, self.heads, self.keyDim, self.window) = (batch, height, width, heads, keyDim, window)
        }
        var rowsY: Int { (height + window - 1) / window }
        var rowsX: Int { (width + window - 1) / window }
        /// Windows over the batch, after padding to whole windows.
        public var windowCount: Int { batch * rowsY * rowsX }
        /// Tokens per window: window².
        public var tokensPerWindow: Int { window * window }
        /// Whether any window holds padded tokens.
        public var isPadded: Bool { height % window != 0 || width % window != 0 }
        var packedWidth: Int { heads * 3 * keyDim }

        /// For window `win`: the token index of each real position, and the window position of each
        /// gathered row (real positions first, in raster order, then padded ones).
        func layout(_ win: Int, tokens: inout [Int], positions: inout [Int]) {
            tokens.removeAll(keepingCapacity: true)
            positions.removeAll(keepingCapacity: true)
            let b = win / (rowsY * rowsX), wy = (win / rowsX) % rowsY, wx = win % rowsX
            let vh = min(window, height - wy * window), vw = min(window, width - wx * window)
            for ty in 0..<vh { for tx in 0..<vw {
                tokens.append((b * height + wy * window + ty) * width + wx * window + tx)
                positions.append(ty * window + tx)
            } }
            for ty in 0..<window { for tx in 0..<window where ty >= vh || tx >= vw { positions.append(ty * window + tx) } }
        }
    }

    /// The `N×N` (N = w²) table-index map for a `w × w` window, as timm's `attention_bias_idxs`.
    public static func biasIndices(window w: Int) -> [Int32] {
        let N = w * w
        var idx = [Int32](repeating: 0, count: N * N)
        for i in 0..<N { for j in 0..<N {
            idx[i * N + j] = Int32(abs(i / w - j / w) * w + abs(i % w - j % w))
        } }
        return idx
    }

    /// Copies window `win`'s packed rows (real tokens, then `padRow` copies) into `dst` `(N, packedWidth)`.
    static func gather(_ qkv: UnsafeMutablePointer<Float>, padRow: UnsafeMutablePointer<Float>?, tokens: [Int], rows N: Int,
                       width L: Int, into dst: UnsafeMutablePointer<Float>) {
        for (r, t) in tokens.enumerated() { (dst + r * L).update(from: qkv + t * L, count: L) }
        if tokens.count < N, let padRow { for r in tokens.count..<N { (dst + r * L).update(from: padRow, count: L) } }
    }

    /// Forward; returns the output `(B·H·W, heads·d)` and the attention probabilities
    /// `(windows, heads, N, N)` (rows of real queries filled) for the backward.
    public static func forward(qkv: Tensor, padRow: Tensor?, geometry g: Geometry,
                               biasTable: Tensor, indices: [Int32]) -> (output: Tensor, probabilities: Tensor) {
        let (N, d, heads, L) = (g.tokensPerWindow, g.keyDim, g.heads, g.packedWidth)
        let od = heads * d, T = biasTable.count / heads
        precondition(qkv.count == g.batch * g.height * g.width * L, "attention qkv \(qkv.shape) vs \(g)")
        precondition(!g.isPadded || padRow != nil, "padded windows need the padded token's projection")
        let out = Tensor(uninitialized: [g.batch * g.height * g.width, od])
        let probs = Tensor(uninitialized: [g.windowCount, heads, N, N])
        let scale = 1 / Float(d).squareRoot()
        let q0 = qkv.pointer, o0 = out.pointer, p0 = probs.pointer, table = biasTable.pointer, pad = padRow?.pointer
        indices.withUnsafeBufferPointer { ip in
            let idx = ip.baseAddress!
            Parallel.forRanges(g.windowCount, grain: 1) { windows in
                let xw = UnsafeMutablePointer<Float>.allocate(capacity: N * L), ow = UnsafeMutablePointer<Float>.allocate(capacity: N * od)
                defer { xw.deallocate(); ow.deallocate() }
                var tokens: [Int] = [], positions: [Int] = []
                for win in windows {
                    g.layout(win, tokens: &tokens, positions: &positions)
                    let n = tokens.count
                    gather(q0, padRow: pad, tokens: tokens, rows: N, width: L, into: xw)
                    for h in 0..<heads {
                        let q = xw + h * 3 * d, p = p0 + (win * heads + h) * N * N
                        Gemm.run(transB: true, m: n, n: N, k: d, alpha: scale, a: q, lda: L, b: q + d, ldb: L, c: p, ldc: N)
                        for r in 0..<n {
                            let row = p + r * N, ir = idx + positions[r] * N, th = table + h * T
                            for j in 0..<N { row[j] += th[Int(ir[positions[j]])] }
                            softmaxRow(row, count: N)
                        }
                        Gemm.run(m: n, n: d, k: N, a: p, lda: N, b: q + 2 * d, ldb: L, c: ow + h * d, ldc: od)
                    }
                    for (r, t) in tokens.enumerated() { (o0 + t * od).update(from: ow + r * od, count: od) }
                }
            }
        }
        return (out, probs)
    }

    /// Backward; returns the gradient of `qkv` (real tokens) and of `padRow` (summed over every
    /// padded position; `nil` when nothing is padded), and writes (overwrites) `gradBiasTable`.
    public static func backward(_ gradOutput: Tensor, qkv: Tensor, padRow: Tensor?, probabilities: Tensor, geometry g: Geometry,
                                indices: [Int32], gradBiasTable: Tensor) -> (qkv: Tensor, padRow: Tensor?) {
        let (N, d, heads, L) = (g.tokensPerWindow, g.keyDim, g.heads, g.packedWidth)
        let od = heads * d, T = gradBiasTable.count / heads
        let dqkv = Tensor(uninitialized: qkv.shape)
        let scale = 1 / Float(d).squareRoot()
        let workers = Parallel.workerCount
        var dTable = [Double](repeating: 0, count: workers * heads * T)
        var dPad = [Double](repeating: 0, count: workers * L)
        let q0 = qkv.pointer, g0 = gradOutput.pointer, p0 = probabilities.pointer, dq0 = dqkv.pointer, pad = padRow?.pointer
        indices.withUnsafeBufferPointer { ip in dTable.withUnsafeMutableBufferPointer { tp in dPad.withUnsafeMutableBufferPointer { pp in
            let idx = ip.baseAddress!, dTableAll = tp.baseAddress!, dPadAll = pp.baseAddress!
            Parallel.forWorkers(g.windowCount, grain: 1) { worker, windows in
                let xw = UnsafeMutablePointer<Float>.allocate(capacity: N * L), dxw = UnsafeMutablePointer<Float>.allocate(capacity: N * L)
                let gw = UnsafeMutablePointer<Float>.allocate(capacity: N * od), ds = UnsafeMutablePointer<Float>.allocate(capacity: N * N)
                let biasAcc = UnsafeMutablePointer<Float>.allocate(capacity: heads * T)
                defer { xw.deallocate(); dxw.deallocate(); gw.deallocate(); ds.deallocate(); biasAcc.deallocate() }
                biasAcc.initialize(repeating: 0, count: heads * T)
                var tokens: [Int] = [], positions: [Int] = []
                for win in windows {
                    g.layout(win, tokens: &tokens, positions: &positions)
                    let n = tokens.count
                    gather(q0, padRow: pad, tokens: tokens, rows: N, width: L, into: xw)
                    for (r, t) in tokens.enumerated() { (gw + r * od).update(from: g0 + t * od, count: od) }
                    for h in 0..<heads {
                        let q = xw + h * 3 * d, dq = dxw + h * 3 * d, p = p0 + (win * heads + h) * N * N, go = gw + h * d
                        // dP = dO·Vᵀ ; dV = Pᵀ·dO (all N rows)
                        Gemm.run(transB: true, m: n, n: N, k: d, a: go, lda: od, b: q + 2 * d, ldb: L, c: ds, ldc: N)
                        Gemm.run(transA: true, m: N, n: d, k: n, a: p, lda: N, b: go, ldb: od, c: dq + 2 * d, ldc: L)
                        let th = biasAcc + h * T
                        for r in 0..<n {
                            softmaxBackwardRow(ds + r * N, probabilities: p + r * N, count: N)
                            let row = ds + r * N, ir = idx + positions[r] * N
                            for j in 0..<N { th[Int(ir[positions[j]])] += row[j] }
                        }
                        // dQ = scale·dS·K (real rows) ; dK = scale·dSᵀ·Q (all N rows)
                        Gemm.run(m: n, n: d, k: N, alpha: scale, a: ds, lda: N, b: q + d, ldb: L, c: dq, ldc: L)
                        Gemm.run(transA: true, m: N, n: d, k: n, alpha: scale, a: ds, lda: N, b: q, ldb: L, c: dq + d, ldc: L)
                    }
                    for (r, t) in tokens.enumerated() { (dq0 + t * L).update(from: dxw + r * L, count: L) }
                    if n < N {
                        // padded rows: q rows got no gradient (their outputs are cropped)
                        let acc = dPadAll + worker * L
                        for r in n..<N { let row = dxw + r * L; for c in 0..<L where c % (3 * d) >= d { acc[c] += Double(row[c]) } }
                    }
                }
                let dst = dTableAll + worker * heads * T
                for i in 0..<(heads * T) { dst[i] += Double(biasAcc[i]) }
            }
        } } }
        for i in 0..<(heads * T) {
            var s = 0.0
            for w in 0..<workers { s += dTable[w * heads * T + i] }
            gradBiasTable.pointer[i] = Float(s)
        }
        var gradPad: Tensor?
        if padRow != nil {
            let t = Tensor(zeros: [1, L])
            for c in 0..<L { var s = 0.0; for w in 0..<workers { s += dPad[w * L + c] }; t.pointer[c] = Float(s) }
            gradPad = t
        }
        return (dqkv, gradPad)
    }

    /// In place: `row = softmax(row)` (CTensorKernels).
    @inline(__always)
    static func softmaxRow(_ row: UnsafeMutablePointer<Float>, count n: Int) { tinyshard_softmax_row(row, n) }

    /// In place: `g = p ⊙ (g − Σ_j g·p)` (gradient of the softmax input from that of its output).
    @inline(__always)
    static func softmaxBackwardRow(_ g: UnsafeMutablePointer<Float>, probabilities p: UnsafePointer<Float>, count n: Int) {
        tinyshard_softmax_backward_row(g, p, n)
    }
}
