/// The per-channel lookup-table ops of PIL's `ImageOps`, as timm calls them (autocontrast with cutoff 0,
/// equalize without mask, invert, posterize, solarize) plus timm's own `solarize_add`. Each builds one
/// 256-entry table per channel exactly as PIL does and maps the pixels through it, so results are
/// bit-exact with PIL.
enum PointOps {
    static func autoContrast(_ image: RGBImage) -> RGBImage {
        let histograms = histogram(image)
        var tables: [[UInt8]] = []
        for h in histograms {
            guard let lo = h.firstIndex(where: { $0 > 0 }), let hi = h.lastIndex(where: { $0 > 0 }), hi > lo else {
                tables.append(identity)
                continue
            }
            let scale = 255.0 / Double(hi - lo)
            let offset = -Double(lo) * scale
            tables.append((0..<256).map { UInt8(clamping: Int((Double($0) * scale + offset).rounded(.towardZero))) })
        }
        return map(image, tables)
    }

    /// PIL's equalize: step = (pixels − count of the last used level) // 255; level i maps to
    /// (step // 2 + pixels below i) // step, clipped to 255. (Pillow divides by 255 since it fixed the
    /// old `// 256`, which the reference fixtures' Pillow 13 confirms bit for bit.)
    static func equalize(_ image: RGBImage) -> RGBImage {
        var tables: [[UInt8]] = []
        for h in histogram(image) {
            let used = h.filter { $0 > 0 }
            guard used.count > 1 else { tables.append(identity); continue }
            let step = (used.reduce(0, +) - used[used.count - 1]) / 255
            guard step > 0 else { tables.append(identity); continue }
            var n = step / 2
            var table = [UInt8](repeating: 0, count: 256)
            for i in 0..<256 {
                table[i] = UInt8(clamping: n / step)
                n += h[i]
            }
            tables.append(table)
        }
        return map(image, tables)
    }

    static func invert(_ image: RGBImage) -> RGBImage {
        let table = (0..<256).map { UInt8(255 - $0) }
        return map(image, [table, table, table])
    }

    static func posterize(_ image: RGBImage, bits: Int) -> RGBImage {
        if bits >= 8 { return image }  // timm returns the image unchanged
        let mask = UInt8(truncatingIfNeeded: ~((1 << (8 - max(bits, 0))) - 1))
        let table = (0..<256).map { UInt8($0) & mask }
        return map(image, [table, table, table])
    }

    static func solarize(_ image: RGBImage, threshold: Int) -> RGBImage {
        let table = (0..<256).map { UInt8($0 < threshold ? $0 : 255 - $0) }
        return map(image, [table, table, table])
    }

    static func solarizeAdd(_ image: RGBImage, add: Int, threshold: Int) -> RGBImage {
        let table = (0..<256).map { UInt8($0 < threshold ? min(255, max(0, $0 + add)) : $0) }
        return map(image, [table, table, table])
    }

    // MARK: Helpers

    static let identity: [UInt8] = (0..<256).map { UInt8($0) }

    /// Per-channel histograms (R, G, B), 256 bins each.
    static func histogram(_ image: RGBImage) -> [[Int]] {
        var counts = [Int](repeating: 0, count: 768)
        image.pixels.withUnsafeBufferPointer { p in
            counts.withUnsafeMutableBufferPointer { c in
                var i = 0
                while i < p.count {
                    c[Int(p[i])] += 1
                    c[256 + Int(p[i + 1])] += 1
                    c[512 + Int(p[i + 2])] += 1
                    i += 3
                }
            }
        }
        return [Array(counts[0..<256]), Array(counts[256..<512]), Array(counts[512..<768])]
    }

    static func map(_ image: RGBImage, _ tables: [[UInt8]]) -> RGBImage {
        var out = image
        let flat = tables[0] + tables[1] + tables[2]
        flat.withUnsafeBufferPointer { t in
            out.pixels.withUnsafeMutableBufferPointer { p in
                var i = 0
                while i < p.count {
                    p[i] = t[Int(p[i])]
                    p[i + 1] = t[256 + Int(p[i + 1])]
                    p[i + 2] = t[512 + Int(p[i + 2])]
                    i += 3
                }
            }
        }
        return out
    }
}
