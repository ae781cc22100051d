import TinyShardBase

/// A deterministic train / held-out split, so every run (teacher, student, hard-label baseline) and every
/// restart evaluates on the same images.
///
/// `byKeyHash`: an image is held out when `u(key) < fraction`, where u is FNV-1a-64 of the key's UTF-8
/// bytes, xored with `salt`, passed through the SplitMix64 finaliser, top 53 bits / 2^53. Membership
/// depends only on the key (adding images never moves others between the sides).
/// `byIndex`: every `period`-th image starting at `offset` is held out (exact counts).
public struct HeldOutSplit: Sendable, Equatable {
    /// Image indices, ascending.
    public var train: [Int]
    /// Image indices held out for evaluation, ascending.
    public var heldOut: [Int]

    /// Holds out the images whose key hashes (with `salt`) below `heldOutFraction` in [0, 1): about that fraction, and
    /// an image's side depends on its key alone.
    public static func byKeyHash(_ keys: [String], heldOutFraction: Double, salt: UInt64 = 0) -> HeldOutSplit {
        var split = HeldOutSplit(train: [], heldOut: [])
        for (index, key) in keys.enumerated() {
            if unitHash(key, salt: salt) < heldOutFraction { split.heldOut.append(index) } else { split.train.append(index) }
        }
        return split
    }

    /// Holds out every `period`-th of `count` images starting at `offset` (a period below 1 counts as 1; the offset is
    /// taken modulo the period).
    public static func byIndex(count: Int, period: Int, offset: Int = 0) -> HeldOutSplit {
        var split = HeldOutSplit(train: [], heldOut: [])
        let p = max(period, 1)
        for index in 0..<max(count, 0) {
            if index % p == ((offset % p) + p) % p { split.heldOut.append(index) } else { split.train.append(index) }
        }
        return split
    }

    /// The key's position in [0, 1).
    public static func unitHash(_ key: String, salt: UInt64 = 0) -> Double {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return Double(Mix64.mix(hash ^ salt) >> 11) * 0x1p-53
    }
}

extension ImageStore {
    /// The store's split by key hash (see ``HeldOutSplit``).
    public func split(heldOutFraction: Double, salt: UInt64 = 0) -> HeldOutSplit {
        HeldOutSplit.byKeyHash(keys(), heldOutFraction: heldOutFraction, salt: salt)
    }
}
