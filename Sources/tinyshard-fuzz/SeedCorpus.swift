import Foundation
import ImageStore
import Interchange

/// Small valid inputs for the targets whose seeds are not test vectors: an image store, `.npy` files,
/// safetensors files and official-layout inputs (in the fuzz target's packing). Written once into
/// Fuzz/corpus and kept in the tree.
enum SeedCorpus {
    static func write(to folder: String) throws {
        let manager = FileManager.default
        for target in ["imagestore", "npy", "safetensors", "official"] {
            try manager.createDirectory(atPath: folder + "/" + target, withIntermediateDirectories: true)
        }
        // Image store: three tiny images with labels and class names.
        let storePath = folder + "/imagestore/three.tsim"
        let writer = try ImageStoreWriter(path: storePath, classNames: ["cat", "dog"], classCount: 2)
        for (i, size) in [(1, 1), (2, 3), (4, 2)].enumerated() {
            let pixels = (0..<(size.0 * size.1 * 3)).map { UInt8(truncatingIfNeeded: $0 * 37 + i) }
            try pixels.withUnsafeBytes { try writer.append(key: "img\(i)", label: i % 2 == 0 ? i / 2 : -1, width: size.0, height: size.1, pixels: $0) }
        }
        _ = try writer.finish()
        // .npy: float32 2x3, int32 4, uint8 2x2x2x3.
        for (name, descr, shape, bytes) in [("f4", "<f4", [2, 3], 24), ("i4", "<i4", [4], 16), ("u1", "|u1", [2, 2, 2, 3], 24)] {
            let data = NpyHeader.encode(descr: descr, shape: shape) + (0..<bytes).map { UInt8(truncatingIfNeeded: $0 * 11) }
            Scratch.write(folder + "/npy/\(name).npy", data)
        }
        // safetensors: two entries and metadata, as the format's writers lay it out.
        let json = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I64","shape":[],"data_offsets":[8,16]}}"#
        var header = Array(json.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var st: [UInt8] = []
        st.put64Append(UInt64(header.count))
        Scratch.write(folder + "/safetensors/two.safetensors", st + header + [UInt8](repeating: 0x3F, count: 16))
        // Official layout, packed as the target reads it: K byte, keys length (u16), keys, values.
        for k in [1, 3] {
            let keys = Array("n001_1\nn001_2\n".utf8)
            var values: [UInt8] = []
            for record in 0..<2 {
                values.appendLE(record * 7 - 1, 4)
                for j in 0..<k { values.appendLE(j * 5 + record, 2) }
                for j in 0..<k { values.appendLE(Int(Float16(1.0 / Float(k + j + 1)).bitPattern), 2) }
            }
            var packed: [UInt8] = [UInt8(k - 1)]
            packed.appendLE(keys.count, 2)
            Scratch.write(folder + "/official/k\(k).bin", packed + keys + values)
        }
    }
}
