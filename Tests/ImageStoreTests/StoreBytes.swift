import CTurboJPEG
@testable import ImageStore
import TinyShardBase

/// Store bytes built by hand from the tables of Spec/IMAGESTORE.md — independently of
/// ``ImageStoreWriter`` — with a knob for every field, so a test or vector can break exactly one rule and
/// keep every checksum right (or break a checksum alone).
struct StoreBytes {
    struct Image {
        var key: String
        var label: Int32
        var width: Int
        var height: Int
        var data: [UInt8]
        /// Overrides for the index entry (nil: what the spec says).
        var crc: UInt32? = nil
        var word28: UInt32? = nil
        var channels: UInt16 = 3
    }

    var major: UInt16 = 1
    var minor: UInt16 = 0
    /// Header offset 36: nil means 0 for major 1, 1 (JPEG) for major 2.
    var word36: UInt32? = nil
    var reserved40 = [UInt8](repeating: 0, count: 20)
    var classCount: UInt32 = 0
    var classNames: [String] = []
    var images: [Image] = []
    /// Overrides: nil means the right value.
    var headerCRC: UInt32? = nil
    var metadataCRC: UInt32? = nil
    var trailing: [UInt8] = []
    /// Applied to the finished bytes (for damage no field expresses).
    var finalPatch: ((inout [UInt8]) -> Void)? = nil

    func bytes() -> [UInt8] {
        var data: [UInt8] = []
        var entries: [UInt8] = []
        var keys: [UInt8] = []
        for image in images {
            let offset = UInt64(64 + data.count)
            data += image.data
            entries.appendLE(offset)
            entries.appendLE(UInt16(image.width))
            entries.appendLE(UInt16(image.height))
            entries.appendLE(UInt32(bitPattern: image.label))
            entries.appendLE(UInt32(keys.count))
            entries.appendLE(UInt16(image.key.utf8.count))
            entries.appendLE(image.channels)
            entries.appendLE(image.crc ?? CRC32.checksum(image.data))
            entries.appendLE(image.word28 ?? (major == 2 ? UInt32(image.data.count) : 0))
            keys += Array(image.key.utf8)
        }
        let names: [UInt8] = classNames.flatMap { Array($0.utf8) + [UInt8(0x0A)] }
        let metadata = entries + keys + names
        var header = Array("TSIM".utf8)
        header.appendLE(major)
        header.appendLE(minor)
        header.appendLE(UInt32(images.count))
        header.appendLE(classCount)
        header.appendLE(UInt64(64 + data.count))
        header.appendLE(UInt32(keys.count))
        header.appendLE(UInt32(names.count))
        header.appendLE(metadataCRC ?? CRC32.checksum(metadata))
        header.appendLE(word36 ?? (major == 2 ? 1 : 0))
        header += reserved40
        header.appendLE(headerCRC ?? CRC32.checksum(header))
        var bytes = header + data + metadata + trailing
        finalPatch?(&bytes)
        return bytes
    }
}

/// Test JPEGs the writer would refuse to make: grey, CMYK, progressive (libturbojpeg, accurate DCT).
enum TestJPEG {
    static func encode(_ pixels: [UInt8], width: Int, height: Int, format: TJPF, subsampling: TJSAMP, quality: Int = 90,
                       progressive: Bool = false) -> [UInt8] {
        let handle = tjInitCompress()!
        defer { tjDestroy(handle) }
        var buffer: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        let flags = Int32(TJFLAG_ACCURATEDCT) | (progressive ? Int32(TJFLAG_PROGRESSIVE) : 0)
        let status = pixels.withUnsafeBufferPointer {
            tjCompress2(handle, $0.baseAddress, Int32(width), 0, Int32(height), Int32(format.rawValue), &buffer, &size,
                        Int32(subsampling.rawValue), Int32(quality), flags)
        }
        precondition(status == 0 && buffer != nil, "test JPEG encoding failed")
        defer { tjFree(buffer) }
        return Array(UnsafeBufferPointer(start: buffer, count: Int(size)))
    }

    /// A smooth colour image (gradients compress like photos, unlike noise).
    static func smooth(width: Int, height: Int, seed: Int) -> [UInt8] {
        var pixels: [UInt8] = []
        for y in 0..<height {
            for x in 0..<width {
                let r = x * 200 / max(width - 1, 1), g = y * 200 / max(height - 1, 1), b = (x + y) * 200 / max(width + height - 2, 1)
                pixels += [UInt8(r / 2 + seed * 9 % 50), UInt8(g / 2 + 60 + seed * 7 % 50), UInt8(200 - b / 2 - seed * 5 % 50)]
            }
        }
        return pixels
    }
}
