/// The order section's codec (Spec/FORMAT.md 3.5): a record's entry order relative to its sorted class
/// indices, as the rank of a permutation in the factorial number system. It costs ⌈log2 K!⌉ bits, the
/// least any code can (22 bits at K = 10, 66 bytes at K = 100, against K bytes for plain ranks).
enum OrderNumber {
    /// ⌊(2^64 − 1) / d⌋ + 1 for d = 2...12: for every x < 2^32, x / d is the high word of x · m
    /// (the rounding error is below x / 2^64 < 1/d). Entries 0 and 1 are unused.
    private static let reciprocals: [UInt64] = (0...12).map { $0 < 2 ? 0 : UInt64.max / UInt64($0) + 1 }


    /// L: bytes of one order number.
    static func byteLength(k: Int) -> Int {
        precondition(k >= 1 && k <= ShardSchema.maxK)
        // bitlength(K! - 1) = ceil(log2 K!) for K >= 2; computed exactly with the same bignum code.
        var factorial = BigUInt(1)
        for factor in 1...k { factorial.multiply(by: UInt32(factor), adding: 0) }
        let maximum = factorial.subtractingOne()
        return (maximum.bitLength + 7) / 8
    }

    /// Writes the order number of `ranks` (entry j's position among the sorted indices) as `output.count`
    /// little-endian bytes. `ranks` must be a permutation of 0..<K.
    ///
    /// O(K) digits (a popcount per entry over a 256-bit set, instead of comparing every later entry) and
    /// a bignum multiply per group of radices whose product fits 64 bits (about 9 at K = 100), not per
    /// digit: the writer's hot spot at large K was these two loops.
    static func encode(ranks: UnsafeBufferPointer<UInt8>, into output: UnsafeMutableRawBufferPointer) {
        let k = ranks.count
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(k, 1)) { digits in
            lehmerDigits(ranks, into: digits)
            if k <= 20 {  // 20! < 2^63: one machine word holds the number.
                var x: UInt64 = 0
                for j in 0..<k { x = x * UInt64(k - j) + UInt64(digits[j]) }
                for byte in 0..<output.count { output[byte] = UInt8(truncatingIfNeeded: x >> (8 * UInt64(byte))) }
            } else {
                encodeGrouped(digits: UnsafeBufferPointer(rebasing: digits[0..<k]), into: output)
            }
        }
    }

    /// d_j = #{m > j : r_m < r_j} for every j, in one backward pass: `seen` holds the ranks of the
    /// entries after j as a 256-bit set, and d_j is the number of its members below r_j.
    private static func lehmerDigits(_ ranks: UnsafeBufferPointer<UInt8>, into digits: UnsafeMutableBufferPointer<UInt8>) {
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 4) { seen in
            seen.initialize(repeating: 0)
            for j in stride(from: ranks.count - 1, through: 0, by: -1) {
                let rank = Int(ranks[j])
                let word = rank >> 6
                let bit = UInt64(1) << UInt64(rank & 63)
                var below = (seen[word] & (bit &- 1)).nonzeroBitCount
                for lower in 0..<word { below += seen[lower].nonzeroBitCount }
                digits[j] = UInt8(truncatingIfNeeded: below)
                seen[word] |= bit
            }
        }
    }

    /// X by Horner's rule in 64-bit limbs, one pass over the number per group of consecutive radices
    /// (their product and the group's own mixed-radix value both fit a word).
    private static func encodeGrouped(digits: UnsafeBufferPointer<UInt8>, into output: UnsafeMutableRawBufferPointer) {
        let k = digits.count
        // Every partial value is at most X < 256^L, so ⌈L / 8⌉ limbs hold it.
        let limbCapacity = (output.count + 7) / 8
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: max(limbCapacity, 1)) { limbs in
            var used = 0
            var j = 0
            while j < k {
                var product: UInt64 = 1
                var value: UInt64 = 0
                while j < k {
                    let radix = UInt64(k - j)
                    let (next, overflow) = product.multipliedReportingOverflow(by: radix)
                    if overflow { break }
                    product = next
                    value = value * radix + UInt64(digits[j])
                    j += 1
                }
                var carry = value
                for i in 0..<used {
                    let (high, low) = limbs[i].multipliedFullWidth(by: product)
                    let (sum, overflow) = low.addingReportingOverflow(carry)
                    limbs[i] = sum
                    carry = high &+ (overflow ? 1 : 0)
                }
                if carry != 0 {
                    limbs[used] = carry
                    used += 1
                }
            }
            for byte in 0..<output.count {
                let limb = byte / 8
                output[byte] = limb < used ? UInt8(truncatingIfNeeded: limbs[limb] >> (8 * UInt64(byte % 8))) : 0
            }
        }
    }

    /// Peels the digits off a multi-word order number. Instead of one pass over the number per digit, it
    /// divides by the product of as many consecutive radices as fit in 32 bits (about 4 at K = 100, 12 at
    /// the small end) and splits that remainder with single-word arithmetic: ~5x fewer passes.
    private static func decodeDigitsGrouped(_ input: UnsafeRawBufferPointer, k: Int,
                                            digits: UnsafeMutableBufferPointer<UInt8>) -> Bool {
        let limbCount = (input.count + 3) / 4
        return withUnsafeTemporaryAllocation(of: UInt32.self, capacity: limbCount) { limbs in
            for i in 0..<limbCount { limbs[i] = 0 }
            for (i, byte) in input.enumerated() { limbs[i / 4] |= UInt32(byte) << (8 * UInt32(i % 4)) }
            var used = limbCount
            while used > 0 && limbs[used - 1] == 0 { used -= 1 }
            var j = k - 1
            while j >= 0 {
                var product: UInt64 = 1
                var last = j  // digits j, j-1, ..., last+1 form this group
                while last >= 0 && product * UInt64(k - last) <= UInt64(UInt32.max) {
                    product *= UInt64(k - last)
                    last -= 1
                }
                var remainder: UInt64 = 0
                for i in stride(from: used - 1, through: 0, by: -1) {
                    let current = (remainder << 32) | UInt64(limbs[i])
                    limbs[i] = UInt32(truncatingIfNeeded: current / product)
                    remainder = current % product
                }
                while used > 0 && limbs[used - 1] == 0 { used -= 1 }
                var small = UInt32(truncatingIfNeeded: remainder)
                for digit in stride(from: j, to: last, by: -1) {
                    let radix = UInt32(k - digit)
                    digits[digit] = UInt8(truncatingIfNeeded: small % radix)
                    small /= radix
                }
                j = last
            }
            return used == 0
        }
    }

    /// Rebuilds the ranks from an order number; returns false when the number is not below K!.
    /// `digits` is scratch space of K bytes.
    static func decode(_ input: UnsafeRawBufferPointer, ranks: UnsafeMutableBufferPointer<UInt8>,
                       digits: UnsafeMutableBufferPointer<UInt8>) -> Bool {
        let k = ranks.count
        if k <= 12 {  // 12! < 2^32: divide by multiplying with a reciprocal (the hot path, K = 10).
            var x: UInt64 = 0
            for byte in 0..<input.count { x |= UInt64(input[byte]) << (8 * UInt64(byte)) }
            digits[k - 1] = 0
            for j in stride(from: k - 2, through: 0, by: -1) {
                let radix = UInt64(k - j)
                let quotient = x.multipliedFullWidth(by: reciprocals[k - j]).high
                digits[j] = UInt8(truncatingIfNeeded: x &- quotient &* radix)
                x = quotient
            }
            if x != 0 { return false }
        } else if k <= 20 {
            var x: UInt64 = 0
            for byte in 0..<input.count { x |= UInt64(input[byte]) << (8 * UInt64(byte)) }
            for j in stride(from: k - 1, through: 0, by: -1) {
                let radix = UInt64(k - j)
                digits[j] = UInt8(truncatingIfNeeded: x % radix)
                x /= radix
            }
            if x != 0 { return false }
        } else if !decodeDigitsGrouped(input, k: k, digits: digits) {
            return false
        }
        // r_j = rest.pop(d_j), with `rest` kept in `ranks` itself from position j on: the unused ranks in
        // ascending order, shifted right past each pick.
        for i in 0..<k { ranks[i] = UInt8(truncatingIfNeeded: i) }
        for j in 0..<k {
            let pick = j + Int(digits[j])
            let value = ranks[pick]
            var i = pick
            while i > j { ranks[i] = ranks[i - 1]; i -= 1 }
            ranks[j] = value
        }
        return true
    }
}

/// The few operations on unsigned integers of up to ~1,700 bits that sizing order numbers (K!) needs.
struct BigUInt {
    private var limbs: [UInt32]  // little-endian, no trailing zero limbs

    init(_ value: UInt32) { limbs = value == 0 ? [] : [value] }

    var isZero: Bool { limbs.isEmpty }

    var bitLength: Int {
        guard let top = limbs.last else { return 0 }
        return (limbs.count - 1) * 32 + (32 - top.leadingZeroBitCount)
    }

    private mutating func trim() { while limbs.last == 0 { limbs.removeLast() } }

    /// self = self * factor + addend
    mutating func multiply(by factor: UInt32, adding addend: UInt32) {
        var carry = UInt64(addend)
        for i in limbs.indices {
            let product = UInt64(limbs[i]) * UInt64(factor) + carry
            limbs[i] = UInt32(truncatingIfNeeded: product)
            carry = product >> 32
        }
        if carry != 0 { limbs.append(UInt32(carry)) }
        trim()
    }

    func subtractingOne() -> BigUInt {
        precondition(!isZero)
        var copy = self
        var i = 0
        while copy.limbs[i] == 0 { copy.limbs[i] = UInt32.max; i += 1 }
        copy.limbs[i] -= 1
        copy.trim()
        return copy
    }

    /// Writes the value little-endian into `output`, zero-filled past the value (`output` must be long enough).
    func write(into output: UnsafeMutableRawBufferPointer) {
        precondition(output.count * 8 >= bitLength)
        for i in 0..<output.count {
            let limb = i / 4 < limbs.count ? limbs[i / 4] : 0
            output[i] = UInt8(truncatingIfNeeded: limb >> UInt32(8 * (i % 4)))
        }
    }
}
