import TinyShardBase

/// The reading rules of Spec/IMAGESTORE.md section 5, in the order the spec lists them, each failure
/// naming the file and (for index problems) the image.
enum StoreValidation {
    static func header(_ bytes: UnsafeRawBufferPointer, path: String) throws -> StoreLayout.Header {
        func fail(_ code: ImageStoreErrorCode, _ message: String) -> ImageStoreError {
            ImageStoreError(code, message, file: path)
        }
        guard bytes.count >= StoreLayout.headerSize else {
            // What an unfinished writer leaves (zeros, or a header cut short) is incomplete; anything else is
            // not a store.
            let start = Array(bytes.prefix(4))
            let unfinished = bytes.allSatisfy { $0 == 0 } || start == Array(StoreLayout.magic.prefix(start.count))
            throw fail(unfinished ? .incomplete : .badMagic, "the file has \(bytes.count) bytes, fewer than the 64-byte header")
        }
        if bytes.prefix(StoreLayout.headerSize).allSatisfy({ $0 == 0 }) {
            throw fail(.incomplete, "the header is all zero: the writer did not finish")
        }
        guard Array(bytes.prefix(4)) == StoreLayout.magic else { throw fail(.badMagic, "not an image store (no TSIM magic)") }
        let major = bytes.le(4, as: UInt16.self)
        guard major == StoreLayout.rawMajorVersion || major == StoreLayout.jpegMajorVersion else {
            throw fail(.unsupportedVersion, "major version \(major) is not supported (this reader knows 1 and 2)")
        }
        let stored = bytes.le(60, as: UInt32.self)
        guard CRC32.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<60])) == stored else {
            throw fail(.headerCRC, "header checksum mismatch")
        }
        let kind: StoreKind = major == StoreLayout.rawMajorVersion ? .raw : .jpeg
        let minor = bytes.le(6, as: UInt16.self)
        let word36 = bytes.le(36, as: UInt32.self)
        if kind == .jpeg, word36 != StoreLayout.jpegEncodingCode {
            throw fail(.unsupportedVersion, "encoding \(word36) is not supported (this reader knows 1, JPEG)")
        }
        // Minor versions may give the flags and reserved bytes a meaning; version x.0 requires zeros.
        if minor == 0 {
            guard kind == .jpeg || word36 == 0, bytes[40..<60].allSatisfy({ $0 == 0 }) else {
                throw fail(.badHeader, kind == .raw ? "flags and reserved header bytes 36-59 must be 0" : "reserved header bytes 40-59 must be 0")
            }
        }
        let header = StoreLayout.Header(kind: kind, count: bytes.le(8), classCount: bytes.le(12), indexOffset: bytes.le(16),
                                        keyBytes: bytes.le(24), classNameBytes: bytes.le(28), metadataCRC: bytes.le(32))
        guard header.classCount <= UInt32(Int32.max) else { throw fail(.badHeader, "class count \(header.classCount) exceeds 2^31 - 1") }
        guard header.indexOffset >= UInt64(StoreLayout.headerSize), header.indexOffset <= UInt64(bytes.count) else {
            throw fail(.sizeMismatch, "index offset \(header.indexOffset) is outside the \(bytes.count)-byte file")
        }
        let expected = UInt64(header.indexOffset) + UInt64(header.metadataSize)
        guard expected == UInt64(bytes.count) else {
            throw fail(.sizeMismatch, "the header describes a \(expected)-byte file, the file has \(bytes.count) bytes (truncated or padded)")
        }
        return header
    }

    /// Checks the metadata region (index, keys, class names) and returns the class names.
    static func metadata(_ bytes: UnsafeRawBufferPointer, header: StoreLayout.Header, path: String) throws -> [String] {
        let indexOffset = Int(header.indexOffset)
        let metadata = UnsafeRawBufferPointer(rebasing: bytes[indexOffset...])
        guard CRC32.checksum(metadata) == header.metadataCRC else {
            throw ImageStoreError(.metadataCRC, "checksum of the index, keys and class names does not match", file: path)
        }
        let count = Int(header.count)
        let keysOffset = indexOffset + count * StoreLayout.entrySize
        let keyBytes = Int(header.keyBytes)
        var expectedDataOffset = StoreLayout.headerSize
        var expectedKeyOffset = 0
        var previousKey: UnsafeRawBufferPointer?
        for index in 0..<count {
            let e = UnsafeRawBufferPointer(rebasing: bytes[(indexOffset + index * StoreLayout.entrySize)...].prefix(StoreLayout.entrySize))
            let keyOffset = Int(e.le(16, as: UInt32.self)), keyLength = Int(e.le(20, as: UInt16.self))
            // The key first, so later errors can name it.
            guard keyOffset == expectedKeyOffset, keyLength >= 1, keyOffset + keyLength <= keyBytes else {
                throw ImageStoreError(.badIndex, "key offset \(keyOffset) length \(keyLength): keys must be packed in order (expected offset \(expectedKeyOffset)) inside the \(keyBytes) key bytes", file: path, image: index)
            }
            let key = UnsafeRawBufferPointer(rebasing: bytes[(keysOffset + keyOffset)..<(keysOffset + keyOffset + keyLength)])
            func fail(_ code: ImageStoreErrorCode, _ message: String) -> ImageStoreError {
                ImageStoreError(code, message, file: path, image: index, key: String(decoding: key, as: UTF8.self))
            }
            if let problem = StoreLayout.keyProblem(key) { throw fail(.badKeys, problem) }
            if let previousKey, !StoreLayout.precedes(previousKey, key) {
                throw fail(.badKeys, "keys must be strictly ascending in byte order; this key does not follow \"\(String(decoding: previousKey, as: UTF8.self))\"")
            }
            let dataOffset = e.le(0, as: UInt64.self)
            let width = Int(e.le(8, as: UInt16.self)), height = Int(e.le(10, as: UInt16.self))
            guard e.le(22, as: UInt16.self) == StoreLayout.channels else {
                throw fail(.badIndex, "channels \(e.le(22, as: UInt16.self)) must be 3")
            }
            let word28 = Int(e.le(28, as: UInt32.self))
            if header.kind == .raw {
                guard word28 == 0 else { throw fail(.badIndex, "reserved entry bytes 28-31 must be 0") }
            } else {
                guard word28 >= 1 else { throw fail(.badIndex, "the JPEG length must be at least 1") }
            }
            guard width >= 1, height >= 1 else { throw fail(.badIndex, "image size \(width)x\(height) must be at least 1x1") }
            let length: Int
            if header.kind == .raw {
                length = width * height * 3
            } else {
                // The bounds that keep a hostile index from making a reader allocate or decode more than the
                // bytes present justify (Spec/IMAGESTORE.md 3.2).
                guard width * height <= ImageLimits.maxPixels else {
                    throw fail(.badIndex, "image size \(width)x\(height) is over the limit of \(ImageLimits.maxPixels) pixels")
                }
                guard width * height <= ImageLimits.maxPixelsPerStoredByte * word28 else {
                    throw fail(.badIndex, "a \(width)x\(height) image cannot be a \(word28)-byte JPEG (at most \(ImageLimits.maxPixelsPerStoredByte) pixels per byte)")
                }
                length = word28
            }
            guard dataOffset == UInt64(expectedDataOffset) else {
                throw fail(.badIndex, "data offset \(dataOffset) must be \(expectedDataOffset) (images are packed in order after the header)")
            }
            expectedDataOffset += length
            guard expectedDataOffset <= indexOffset else {
                throw fail(.badIndex, "image data ends at \(expectedDataOffset), past the index at \(indexOffset)")
            }
            let label = Int(e.le(12, as: Int32.self))
            guard label == -1 || (0..<Int(header.classCount)).contains(label) else {
                throw fail(.badLabel, "label \(label) is not -1 or in 0..<\(header.classCount)")
            }
            expectedKeyOffset += keyLength
            previousKey = key
        }
        guard expectedDataOffset == indexOffset else {
            throw ImageStoreError(.badIndex, "the images' data ends at \(expectedDataOffset) but the index starts at \(indexOffset)", file: path)
        }
        guard expectedKeyOffset == keyBytes else {
            throw ImageStoreError(.badIndex, "the keys use \(expectedKeyOffset) of the \(keyBytes) key bytes", file: path)
        }
        return try classNames(UnsafeRawBufferPointer(rebasing: bytes[(keysOffset + keyBytes)...]),
                              classCount: Int(header.classCount), path: path)
    }

    private static func classNames(_ bytes: UnsafeRawBufferPointer, classCount: Int, path: String) throws -> [String] {
        guard !bytes.isEmpty else { return [] }
        func fail(_ message: String) -> ImageStoreError { ImageStoreError(.badClasses, message, file: path) }
        guard bytes.last == 0x0A else { throw fail("class names must each end in \\n") }
        let parts = bytes.dropLast().split(separator: 0x0A, omittingEmptySubsequences: false)
        guard parts.count == classCount else { throw fail("\(parts.count) class names for \(classCount) classes") }
        var names: [String] = []
        for (number, part) in parts.enumerated() {
            let raw = UnsafeRawBufferPointer(rebasing: part)
            if let problem = StoreLayout.keyProblem(raw, what: "class name") { throw fail("class \(number): \(problem)") }
            names.append(String(decoding: raw, as: UTF8.self))
        }
        guard Set(names).count == names.count else { throw fail("class names must be unique") }
        return names
    }
}
