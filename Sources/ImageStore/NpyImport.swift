import TinyShardBase

/// `.npy` arrays: images uint8 `[N, H, W, 3]` (RGB) or `[N, H, W]` (grey → RGB), C order, and optionally
/// labels `[N]` of any integer dtype (class indices ≥ 0, or −1 for none). Keys are
/// `<prefix>_<index>` zero-padded to a common width (at least 5 digits) so that byte order is index
/// order and image i of the store is row i of the array.
public enum NpyImport {
    /// Imports the uint8 `.npy` array `images` (`[N, H, W, 3]` or `[N, H, W]`), with labels from `labels` when given,
    /// into a new store at `storePath`; `progress` gets (done, total). Throws ``ImageStoreError`` `bad-input` naming
    /// the file for a wrong dtype, shape or label count.
    @discardableResult
    public static func importStore(images imagesPath: String, labels labelsPath: String? = nil, to storePath: String,
                                   keyPrefix: String = "npy", classNames: [String] = [],
                                   options: ImportOptions = ImportOptions(),
                                   progress: ((Int, Int) -> Void)? = nil) throws -> ImportSummary {
        try options.validate(store: storePath)
        let imageFile = try MappedFile.images(path: imagesPath)
        let array = try NpyArray(imageFile.bytes, path: imagesPath)
        func fail(_ message: String) -> ImageStoreError { ImageStoreError(.badInput, message, file: imagesPath) }
        guard array.descr == "|u1" || array.descr == "<u1" else {
            throw fail("images must be uint8 ('|u1'), got '\(array.descr)'")
        }
        guard array.shape.count == 4 && array.shape[3] == 3 || array.shape.count == 3 else {
            throw fail("images must have shape [N, H, W, 3] or [N, H, W], got \(array.shape)")
        }
        let (n, height, width) = (array.shape[0], array.shape[1], array.shape[2])
        let grey = array.shape.count == 3
        guard n >= 1, (1...65535).contains(width), (1...65535).contains(height) else {
            throw fail("shape \(array.shape): need at least one image and sides 1...65535")
        }
        guard array.dataOffset + array.count == imageFile.bytes.count else {
            throw fail("the data holds \(imageFile.bytes.count - array.dataOffset) bytes, the shape \(array.shape) needs \(array.count)")
        }
        let labels = try labelsPath.map { try readLabels($0, count: n) } ?? [Int](repeating: -1, count: n)
        let classCount = classNames.isEmpty ? (labels.max().map { $0 + 1 } ?? 0) : classNames.count
        if let bad = labels.firstIndex(where: { $0 >= classCount }) {
            throw ImageStoreError(.badInput, "label \(labels[bad]) of image \(bad) is not below the \(classCount) class names",
                                  file: labelsPath, image: bad)
        }
        let writer = try ImageStoreWriter(path: storePath, classNames: classNames, classCount: classCount, encoding: options.encoding)
        let digits = max(5, String(n - 1).count)
        let plane = width * height
        // Without resizing or encoding, pixels go from the map to the file with no copy.
        let passThrough = options.maxSide == nil && options.encoding == .raw
        var rgb = [UInt8](repeating: 0, count: plane * 3)
        var resized = 0
        for i in 0..<n {
            let key = "\(keyPrefix)_\(zeroPadded(i, width: digits))"
            if grey {
                let start = array.dataOffset + i * plane
                for p in 0..<plane {
                    let v = imageFile.bytes[start + p]
                    rgb[p * 3] = v
                    rgb[p * 3 + 1] = v
                    rgb[p * 3 + 2] = v
                }
            } else if passThrough {
                let start = array.dataOffset + i * plane * 3
                let pixels = UnsafeRawBufferPointer(rebasing: imageFile.bytes[start..<(start + plane * 3)])
                try writer.append(key: key, label: labels[i], width: width, height: height, pixels: pixels)
                progress?(i + 1, n)
                continue
            } else {
                let start = array.dataOffset + i * plane * 3
                rgb = [UInt8](UnsafeRawBufferPointer(rebasing: imageFile.bytes[start..<(start + plane * 3)]))
            }
            if passThrough {
                try rgb.withUnsafeBytes { try writer.append(key: key, label: labels[i], width: width, height: height, pixels: $0) }
            } else {
                let prepared = try options.prepare(try RGBImage(width: width, height: height, pixels: rgb))
                try writer.append(key: key, label: labels[i], encoded: prepared.image)
                if prepared.resized { resized += 1 }
            }
            progress?(i + 1, n)
        }
        let bytes = try writer.finish()
        return ImportSummary(labels: labels, classNames: classNames, classCount: classCount, bytes: bytes,
                             encoding: options.encoding, resized: resized)
    }

    /// Labels `[N]` of an integer dtype, each −1 or 0...2^31−1.
    static func readLabels(_ path: String, count: Int) throws -> [Int] {
        let file = try MappedFile.images(path: path)
        let array = try NpyArray(file.bytes, path: path)
        func fail(_ message: String) -> ImageStoreError { ImageStoreError(.badInput, message, file: path) }
        guard let size = array.integerWidth else { throw fail("labels must be integers, got '\(array.descr)'") }
        guard array.shape == [count] else { throw fail("labels must have shape [\(count)], got \(array.shape)") }
        guard array.dataOffset + count * size == file.bytes.count else {
            throw fail("the data holds \(file.bytes.count - array.dataOffset) bytes, \(count) labels need \(count * size)")
        }
        let bytes = file.bytes
        var labels: [Int] = []
        labels.reserveCapacity(count)
        for i in 0..<count {
            let at = array.dataOffset + i * size
            let value: Int
            switch (size, array.isSigned) {
            case (1, false): value = Int(bytes[at])
            case (1, true): value = Int(Int8(bitPattern: bytes[at]))
            case (2, false): value = Int(bytes.le(at, as: UInt16.self))
            case (2, true): value = Int(bytes.le(at, as: Int16.self))
            case (4, false): value = Int(bytes.le(at, as: UInt32.self))
            case (4, true): value = Int(bytes.le(at, as: Int32.self))
            case (_, false): value = bytes.le(at, as: UInt64.self) > UInt64(Int.max) ? Int.max : Int(bytes.le(at, as: UInt64.self))
            default: value = Int(bytes.le(at, as: Int64.self))
            }
            guard value == -1 || (0...Int(Int32.max)).contains(value) else {
                throw ImageStoreError(.badInput, "label \(value) must be -1 or a class index 0...2^31-1", file: path, image: i)
            }
            labels.append(value)
        }
        return labels
    }
}
