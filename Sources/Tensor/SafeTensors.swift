import Foundation

/// A safetensors file in memory: 8-byte little-endian header length, a JSON header mapping each
/// name to `{dtype, shape, data_offsets}`, then the raw little-endian data.
///
/// Reading accepts F32 and F64 (converted to float32) and I64 (kept as integers, e.g. BatchNorm's
/// `num_batches_tracked`); anything else is reported as an error naming the entry and the file.
public struct SafeTensors {
    /// Float tensors by name.
    public var tensors: [String: Tensor] = [:]
    /// Integer (I64, U8) entries by name, with their shapes.
    public var integers: [String: (shape: [Int], values: [Int64])] = [:]
    /// The optional `__metadata__` string map.
    public var metadata: [String: String] = [:]

    public init() {}

    /// Reads and validates a file; throws ``TensorError`` naming the file and entry on any problem.
    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw TensorError.invalidFile("\(url.path): cannot read (\(error.localizedDescription))")
        }
        try self.init(data: data, name: url.path)
    }

    /// Parses safetensors bytes; `name` is used in error messages.
    public init(data: Data, name: String = "<memory>") throws {
        func fail(_ why: String) -> TensorError { .invalidFile("\(name): \(why)") }
        guard data.count >= 8 else { throw fail("shorter than the 8-byte header length") }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(data.count - 8) else { throw fail("header length \(headerLength) exceeds file size \(data.count)") }
        let base = 8 + Int(headerLength)
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<base)) } catch {
            throw fail("header is not valid JSON")
        }
        guard let header = json as? [String: Any] else { throw fail("header is not a JSON object") }
        let payload = data.count - base
        for (key, value) in header {
            if key == "__metadata__" {
                metadata = (value as? [String: String]) ?? [:]
                continue
            }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shapeAny = entry["shape"] as? [Any], let offsetsAny = entry["data_offsets"] as? [Any],
                  offsetsAny.count == 2 else { throw fail("entry '\(key)' lacks dtype/shape/data_offsets") }
            let shape = try shapeAny.map { v -> Int in
                guard let n = (v as? NSNumber)?.intValue, n >= 0 else { throw fail("entry '\(key)' has a bad shape") }
                return n
            }
            guard let start = (offsetsAny[0] as? NSNumber)?.intValue, let end = (offsetsAny[1] as? NSNumber)?.intValue,
                  0 <= start, start <= end, end <= payload else { throw fail("entry '\(key)' has data_offsets outside the file") }
            let count = shape.reduce(1, *)
            let width: Int
            switch dtype {
            case "F32": width = 4
            case "F64", "I64": width = 8
            case "U8": width = 1
            default: throw TensorError.unsupported("\(name): entry '\(key)' has dtype \(dtype) (F32, F64, I64, U8 supported)")
            }
            guard end - start == count * width else {
                throw fail("entry '\(key)' holds \(end - start) bytes, shape \(shape) of \(dtype) needs \(count * width)")
            }
            data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                let p = raw.baseAddress! + base + start
                switch dtype {
                case "F32":
                    let t = Tensor(uninitialized: shape)
                    for i in 0..<count { t.pointer[i] = Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
                    tensors[key] = t
                case "F64":
                    let t = Tensor(uninitialized: shape)
                    for i in 0..<count { t.pointer[i] = Float(Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
                    tensors[key] = t
                case "U8":  // e.g. uint8 HWC photos (../shared/fixtures/augment)
                    integers[key] = (shape, (0..<count).map { Int64(p.load(fromByteOffset: $0, as: UInt8.self)) })
                default:
                    integers[key] = (shape, (0..<count).map { Int64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) })
                }
            }
        }
    }

    /// A named float tensor, or ``TensorError/missingKey(_:)``.
    public func tensor(_ key: String) throws -> Tensor {
        guard let t = tensors[key] else { throw TensorError.missingKey(key) }
        return t
    }

    /// Serialises to safetensors bytes (float tensors as F32, integers as I64), entries sorted by name.
    public func serialized() -> Data {
        var entries: [(String, String, [Int], Data)] = []
        for (k, t) in tensors {
            var d = Data(count: t.count * 4)
            d.withUnsafeMutableBytes { raw in
                for i in 0..<t.count { raw.storeBytes(of: t.pointer[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
            }
            entries.append((k, "F32", t.shape, d))
        }
        for (k, v) in integers {
            var d = Data(count: v.values.count * 8)
            d.withUnsafeMutableBytes { raw in
                for (i, x) in v.values.enumerated() { raw.storeBytes(of: x.littleEndian, toByteOffset: 8 * i, as: Int64.self) }
            }
            entries.append((k, "I64", v.shape, d))
        }
        entries.sort { $0.0 < $1.0 }
        var parts: [String] = []
        if !metadata.isEmpty {
            let m = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            parts.append("\"__metadata__\":{\(m.joined(separator: ","))}")
        }
        var offset = 0
        for (k, dtype, shape, d) in entries {
            parts.append("\(jsonString(k)):{\"dtype\":\"\(dtype)\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + d.count)]}")
            offset += d.count
        }
        var header = Data("{\(parts.joined(separator: ","))}".utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var out = Data()
        var n = UInt64(header.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(header)
        for e in entries { out.append(e.3) }
        return out
    }

    /// Writes the file atomically.
    public func write(to url: URL) throws {
        do { try serialized().write(to: url, options: .atomic) } catch {
            throw TensorError.invalidFile("\(url.path): cannot write (\(error.localizedDescription))")
        }
    }
}

func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
        default: out.unicodeScalars.append(u)
        }
    }
    return out + "\""
}

/// Minimal NumPy `.npy` reader/writer for float32/float64 C-order arrays (version 1.0/2.0 headers).
public enum NPY {
    public static func read(_ url: URL) throws -> Tensor {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw TensorError.invalidFile("\(url.path): cannot read") }
        guard data.count > 10, data.prefix(6) == Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]) else {
            throw TensorError.invalidFile("\(url.path): not an .npy file")
        }
        let major = data[6]
        let headerStart = major == 1 ? 10 : 12
        let headerLength = major == 1 ? Int(data[8]) | Int(data[9]) << 8
            : Int(data[8]) | Int(data[9]) << 8 | Int(data[10]) << 16 | Int(data[11]) << 24
        guard data.count >= headerStart + headerLength,
              let header = String(data: data.subdata(in: headerStart..<headerStart + headerLength), encoding: .ascii) else {
            throw TensorError.invalidFile("\(url.path): truncated header")
        }
        guard !header.contains("'fortran_order': True") else { throw TensorError.unsupported("\(url.path): Fortran order") }
        let isF8 = header.contains("<f8"), isF4 = header.contains("<f4")
        guard isF8 || isF4 else { throw TensorError.unsupported("\(url.path): dtype in \(header)") }
        guard let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else {
            throw TensorError.invalidFile("\(url.path): no shape")
        }
        let shape = header[open.upperBound..<close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let count = shape.reduce(1, *)
        let base = headerStart + headerLength
        guard data.count - base >= count * (isF8 ? 8 : 4) else { throw TensorError.invalidFile("\(url.path): truncated data") }
        let t = Tensor(uninitialized: shape)
        data.withUnsafeBytes { raw in
            let p = raw.baseAddress! + base
            for i in 0..<count {
                t.pointer[i] = isF8 ? Float(Double(bitPattern: p.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))
                    : Float(bitPattern: p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
            }
        }
        return t
    }

    public static func write(_ t: Tensor, to url: URL) throws {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(t.shape.map { "\($0)," }.joined(separator: " "))), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var d = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
        d.append(Data(header.utf8))
        d.append(Data(bytes: t.pointer, count: t.count * 4))
        do { try d.write(to: url, options: .atomic) } catch { throw TensorError.invalidFile("\(url.path): cannot write") }
    }
}
