extension OrderNumber {
    /// L for every K in 0...maxK (entry 0 unused), computed once: readers ask for it per block and per record.
    static let byteLengths: [Int] = [0] + (1...ShardSchema.maxK).map { byteLength(k: $0) }

    /// K! − 1, the largest valid order number, as L little-endian bytes.
    static func largest(k: Int) -> [UInt8] {
        var factorial = BigUInt(1)
        for factor in 1...k { factorial.multiply(by: UInt32(factor), adding: 0) }
        var bytes = [UInt8](repeating: 0, count: byteLength(k: k))
        bytes.withUnsafeMutableBytes { factorial.subtractingOne().write(into: $0) }
        return bytes
    }

    /// Whether an L-byte little-endian number is below K!, given `largest(k:)`: one comparison from the
    /// most significant byte down, so a block's numbers are checked without decoding their permutations
    /// (a reader decodes only those of the records it returns).
    static func isValid(_ number: UnsafeRawBufferPointer, largest: UnsafeBufferPointer<UInt8>) -> Bool {
        var byte = number.count
        while byte > 0 {
            byte -= 1
            if number[byte] != largest[byte] { return number[byte] < largest[byte] }
        }
        return true
    }
}
