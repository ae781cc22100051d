extension TinyViTConfiguration {
    /// Number of trainable parameters (timm's `sum(p.numel() for p in model.parameters())`).
    public var parameterCount: Int {
        let e = embedDims
        func convNorm(_ cin: Int, _ cout: Int, _ k: Int, depthwise: Bool = false) -> Int {
            (depthwise ? cout * k * k : cout * cin * k * k) + 2 * cout
        }
        var n = convNorm(inChannels, e[0] / 2, 3) + convNorm(e[0] / 2, e[0], 3)
        let hidden0 = Int(Float(e[0]) * mbconvExpandRatio)
        n += depths[0] * (convNorm(e[0], hidden0, 1) + convNorm(hidden0, hidden0, 3, depthwise: true) + convNorm(hidden0, e[0], 1))
        for s in 1..<depths.count {
            let c = e[s], h = Int(Float(c) * mlpRatio), w = windowSizes[s]
            n += convNorm(e[s - 1], c, 1) + convNorm(c, c, 3, depthwise: true) + convNorm(c, c, 1)
            let block = numHeads[s] * w * w + 2 * c + (3 * c * c + 3 * c) + (c * c + c) + 2 * c + (c * h + h) + (h * c + c)
                + convNorm(c, c, localConvSize, depthwise: true)
            n += depths[s] * block
        }
        return n + 2 * e.last! + e.last! * numClasses + numClasses
    }

    /// Multiply-accumulates of one forward pass at `height × width` (convolutions, linears and the
    /// two attention products over padded windows; normalisations and activations not counted).
    public func multiplyAccumulates(height: Int? = nil, width: Int? = nil) -> Int {
        var (h, w) = (height ?? imageSize, width ?? imageSize)
        let e = embedDims
        func down(_ x: Int) -> Int { (x - 1) / 2 + 1 }
        h = down(h); w = down(w)
        var macs = h * w * (e[0] / 2) * inChannels * 9
        h = down(h); w = down(w)
        macs += h * w * e[0] * (e[0] / 2) * 9
        let hidden0 = Int(Float(e[0]) * mbconvExpandRatio)
        macs += depths[0] * h * w * (e[0] * hidden0 * 2 + hidden0 * 9)
        for s in 1..<depths.count {
            let c = e[s]
            macs += h * w * e[s - 1] * c
            h = down(h); w = down(w)
            macs += h * w * (c * 9 + c * c)
            let ws = windowSizes[s]
            let padded = ((h + ws - 1) / ws) * ((w + ws - 1) / ws) * ws * ws
            let hid = Int(Float(c) * mlpRatio)
            let block = padded * (3 * c * c + 2 * ws * ws * c + c * c) + h * w * (c * localConvSize * localConvSize + 2 * c * hid)
            macs += depths[s] * block
        }
        return macs + e.last! * numClasses
    }
}
