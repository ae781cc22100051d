import Foundation
import Interchange

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

    /// An empty file: no tensors, no metadata.
    public init() {}

    /// Reads and validates a file; throws ``TensorError`` naming the file and entry on any problem.
    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw TensorError.invalidFile("\(url.path): cannot read (\(error.localizedDescription))")
        }
        try self.init(data: data, name: url.path)
    }

    /// Parses safetensors bytes; `name` is used in error messages. The header is parsed and checked by
    /// Interchange's `SafeTensorsHeader` (the project's one safetensors parser, strict JSON).
    public init(data: Data, name: String = "<memory>") throws {
        let header: SafeTensorsHeader
        do {
            header = try data.withUnsafeBytes { try SafeTensorsHeader(file: $0) }
        } catch let error as SafeTensorsFormatError {
            throw TensorError.invalidFile("\(name): \(error.message)")
        }
        metadata = header.metadata
        for entry in header.entries {
            let count = entry.count
            try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                // The header checked every entry against the bytes present, so the file has a base address.
                let p = raw.baseAddress! + header.dataOffset + entry.begin
                switch entry.dtype {
                case "F32":
                    let t = Tensor(uninitialized: entry.shape)
                    for i in 0..<count { t.pointer[i] = Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
                    tensors[entry.name] = t
                case "F64":
                    let t = Tensor(uninitialized: entry.shape)
                    for i in 0..<count { t.pointer[i] = Float(Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
                    tensors[entry.name] = t
                case "U8":  // e.g. uint8 HWC photos (../shared/fixtures/augment)
                    integers[entry.name] = (entry.shape, (0..<count).map { Int64(p.load(fromByteOffset: $0, as: UInt8.self)) })
                case "I64":
                    integers[entry.name] = (entry.shape, (0..<count).map { Int64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) })
                default:
                    throw TensorError.unsupported("\(name): entry '\(entry.name)' has dtype \(entry.dtype) (F32, F64, I64, U8 supported)")
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

/// NumPy `.npy` reading and writing for float32/float64 C-order arrays; the header goes through
/// Interchange's `NpyHeader`, the project's one `.npy` parser.
public enum NPY {
    /// Reads a float32 or float64 `.npy` file as float32; throws ``TensorError`` naming the file (`unsupported` for
    /// another dtype, `invalidFile` for a damaged header or a wrong data size).
    public static func read(_ url: URL) throws -> Tensor {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw TensorError.invalidFile("\(url.path): cannot read") }
        let header: NpyHeader
        do {
            header = try data.withUnsafeBytes { try NpyHeader(bytes: $0) }
        } catch let error as NpyFormatError {
            throw TensorError.invalidFile("\(url.path): \(error.message)")
        }
        guard header.descr == "<f4" || header.descr == "<f8" else {
            throw TensorError.unsupported("\(url.path): dtype \(header.descr) (need <f4 or <f8)")
        }
        let isF8 = header.descr == "<f8"
        let count = header.count
        guard data.count - header.dataOffset == count * (isF8 ? 8 : 4) else {
            throw TensorError.invalidFile("\(url.path): the data holds \(data.count - header.dataOffset) bytes, shape \(header.shape) needs \(count * (isF8 ? 8 : 4))")
        }
        let t = Tensor(uninitialized: header.shape)
        data.withUnsafeBytes { raw in
            guard count > 0, let base = raw.baseAddress else { return }
            let p = base + header.dataOffset
            for i in 0..<count {
                t.pointer[i] = isF8 ? Float(Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
                    : Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            }
        }
        return t
    }

    /// Writes `t` as a float32 `.npy` with its shape.
    public static func write(_ t: Tensor, to url: URL) throws {
        var d = Data(NpyHeader.encode(descr: "<f4", shape: t.shape))
        d.append(Data(bytes: t.pointer, count: t.count * 4))
        do { try d.write(to: url, options: .atomic) } catch { throw TensorError.invalidFile("\(url.path): cannot write") }
    }
}
