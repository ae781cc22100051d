import CZlib

/// Whole-file reading through zlib's gz* API, which reads gzip and plain files alike (so
/// `digits.csv` and `digits.csv.gz` both work).
enum GzipFile {
    static func read(_ path: String, limit: Int = 1 << 31) throws -> [UInt8] {
        guard let file = gzopen(path, "rb") else {
            throw ImageStoreError(.io, "cannot open", file: path)
        }
        defer { gzclose(file) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if n < 0 {
                var code: Int32 = 0
                let text = gzerror(file, &code).map { String(cString: $0) } ?? "unknown zlib error"
                throw ImageStoreError(.badInput, "cannot decompress: \(text)", file: path)
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<Int(n)])
            guard out.count <= limit else { throw ImageStoreError(.badInput, "larger than \(limit) bytes uncompressed", file: path) }
        }
        return out
    }
}
