import TinyShardBase

/// The UCI / scikit-learn "digits" CSV (`../shared/data/digits.csv.gz`, CC BY 4.0, E. Alpaydin and
/// C. Kaynak): one row per image, 64 pixel values 0...16 (8x8, row-major) then the label 0...9.
///
/// Each image becomes RGB with R = G = B = round(v · 255 / 16) (so 0 → 0 and 16 → 255; ink is bright on
/// black, as in the CSV), optionally enlarged `upscale` times by pixel replication (the crop-and-resize
/// step smooths it later). Keys are `digits_00000`, `digits_00001`, … in row order, which is also byte
/// order, so image i of the store is row i.
public enum DigitsImport {
    /// The class names `0` ... `9`: label i is digit i.
    public static let classNames = (0...9).map(String.init)
    /// The CSV's images are 8 × 8 pixels (before upscaling).
    public static let side = 8

    /// One row of the CSV as an image.
    public struct Digit: Sendable, Equatable {
        /// `digits_NNNNN`, the row number zero-padded to 5 places.
        public var key: String
        /// The digit, 0...9.
        public var label: Int
        /// The image (grey in R = G = B), upscaled as asked.
        public var image: RGBImage
    }

    /// Parses the CSV (gzip or plain); errors name the file and line.
    public static func read(_ path: String, upscale: Int = 1) throws -> [Digit] {
        guard (1...1024).contains(upscale) else {
            throw ImageStoreError(.invalidArgument, "upscale factor \(upscale) must be 1...1024", file: path)
        }
        let text = try GzipFile.read(path)
        var digits: [Digit] = []
        var lineNumber = 0
        for line in text.split(separator: 0x0A, omittingEmptySubsequences: false) {
            lineNumber += 1
            var row = line[...]
            if row.last == 0x0D { row = row.dropLast() }
            if row.isEmpty { continue }
            func fail(_ message: String) -> ImageStoreError {
                ImageStoreError(.badInput, "line \(lineNumber): \(message)", file: path)
            }
            let fields = row.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
            guard fields.count == side * side + 1 else { throw fail("expected 65 comma-separated values, got \(fields.count)") }
            var values: [Int] = []
            values.reserveCapacity(65)
            for (column, field) in fields.enumerated() {
                guard let value = parseInteger(field) else {
                    throw fail("value \(column + 1) \"\(String(decoding: field, as: UTF8.self))\" is not a whole number")
                }
                values.append(value)
            }
            guard values[0..<64].allSatisfy({ (0...16).contains($0) }) else { throw fail("pixel values must be 0...16") }
            guard (0...9).contains(values[64]) else { throw fail("label \(values[64]) must be 0...9") }
            let key = "digits_" + zeroPadded(digits.count, width: 5)
            digits.append(Digit(key: key, label: values[64], image: try image(values[0..<64], upscale: upscale)))
        }
        guard digits.count <= 99_999 else { throw ImageStoreError(.badInput, "more than 99,999 rows", file: path) }
        return digits
    }

    /// Reads the CSV and writes an image store with class names "0"…"9" (resized and encoded as
    /// `options` say).
    @discardableResult
    public static func importStore(from csvPath: String, to storePath: String, upscale: Int = 1,
                                   options: ImportOptions = ImportOptions(),
                                   progress: ((Int, Int) -> Void)? = nil) throws -> ImportSummary {
        try options.validate(store: storePath)
        let digits = try read(csvPath, upscale: upscale)
        let writer = try ImageStoreWriter(path: storePath, classNames: classNames, encoding: options.encoding)
        var resized = 0
        for (done, digit) in digits.enumerated() {
            let prepared = try options.prepare(digit.image)
            try writer.append(key: digit.key, label: digit.label, encoded: prepared.image)
            if prepared.resized { resized += 1 }
            progress?(done + 1, digits.count)
        }
        let bytes = try writer.finish()
        return ImportSummary(labels: digits.map(\.label), classNames: classNames, classCount: 10, bytes: bytes,
                             encoding: options.encoding, resized: resized)
    }

    /// 0...16 → 0...255 (round half up: (v·255 + 8) / 16), grey → RGB, `upscale`× pixel replication.
    static func image(_ values: ArraySlice<Int>, upscale: Int) throws -> RGBImage {
        let size = side * upscale
        var pixels = [UInt8](repeating: 0, count: size * size * 3)
        for (i, v) in values.enumerated() {
            let grey = UInt8((v * 255 + 8) / 16)
            let (row, column) = (i / side, i % side)
            for dy in 0..<upscale {
                let base = ((row * upscale + dy) * size + column * upscale) * 3
                for dx in 0..<(upscale * 3) { pixels[base + dx] = grey }
            }
        }
        return try RGBImage(width: size, height: size, pixels: pixels)
    }

    private static func parseInteger(_ field: ArraySlice<UInt8>) -> Int? {
        var trimmed = field
        while trimmed.first == 0x20 { trimmed = trimmed.dropFirst() }
        while trimmed.last == 0x20 { trimmed = trimmed.dropLast() }
        // Accept "3" and "3.0" (CSV writers disagree), nothing else.
        var text = String(decoding: trimmed, as: UTF8.self)
        if text.hasSuffix(".0") { text.removeLast(2) }
        return Int(text)
    }
}

func zeroPadded(_ value: Int, width: Int) -> String {
    let digits = String(value)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}
