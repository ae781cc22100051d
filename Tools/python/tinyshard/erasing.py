"""Random erasing's per-pixel noise (Spec/FORMAT.md section 4, "Erase noise"), vectorised.

Value k of a box of height h and width w, in (channel, row, column) order k = c*h*w + y*w + x, is
Box-Muller of the pair p = k // 2 drawn from the seed with SplitMix64's mixer:

    key = mix64(seed ^ 0x4552415345534545)
    u1  = (mix64(key + (2p + 1) G) >> 11) 2^-53,   u2 = (mix64(key + (2p + 2) G) >> 11) 2^-53
    z_k = sqrt(-2 ln(1 - u1)) * (cos(2 pi u2) if k even else sin(2 pi u2)), float64 rounded to float32

numpy's uint64 arithmetic wraps, as the spec's does. The uint8 mapping and the normalised fill match
Sources/Augment/ErasingNoise.swift.
"""

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
ERASE_SALT = 0x4552415345534545
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def mix64(z):
    """SplitMix64's output function on a uint64 array (wrapping arithmetic)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _mix64_in_place(z):
    """mix64 of a uint64 array, written over it (the noise's counters need no temporaries of their
    own: integer operations, so equal to mix64 bit for bit)."""
    shifted = np.empty_like(z)
    with np.errstate(over="ignore"):
        for shift, factor in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
            np.right_shift(z, np.uint64(shift), out=shifted)
            z ^= shifted
            z *= np.uint64(factor)
    np.right_shift(z, np.uint64(31), out=shifted)
    z ^= shifted
    return z


def noise(seed, count):
    """The first `count` float32 values of an erase seed's sequence."""
    pairs = (count + 1) // 2
    key = mix64(np.uint64(int(seed) ^ ERASE_SALT))
    # Row 0 holds the counters 2p + 1 (u1), row 1 the counters 2p + 2 (u2).
    z = np.arange(1, 2 * pairs + 1, dtype=np.uint64).reshape(pairs, 2).T.copy()
    with np.errstate(over="ignore"):
        z *= GOLDEN
        z += key
    z = _mix64_in_place(z)
    z >>= np.uint64(11)
    u1, u2 = z.astype(np.float64) * 2.0 ** -53
    # The transcendental functions get fresh contiguous arrays, as numpy's SIMD and scalar loops may
    # differ in the last bit of a float64.
    radius = np.sqrt(-2.0 * np.log1p(-u1))
    angle = 2.0 * np.pi * u2
    values = np.empty(2 * pairs, dtype=np.float32)
    np.multiply(radius, np.cos(angle), out=values[0::2])
    np.multiply(radius, np.sin(angle), out=values[1::2])
    return values[:count]


def _round_half_away(x):
    """Swift's `rounded()` (half away from zero) for float32 values, exactly. Overwrites x (callers
    pass a temporary: a view's worth of float32 is worth not copying)."""
    whole = np.floor(x)
    x -= whole
    whole += x >= 0.5
    return whole


def erase_uint8(image, box, seed, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Write the noise into `box` (x, y, w, h) of a uint8 (H, W, 3) array in place: channel c gets
    round((z * std_c + mean_c) * 255) clamped to 0..255, in float32 as the Swift replay computes it."""
    x0, y0, w, h = (int(v) for v in box)
    z = noise(seed, 3 * w * h).reshape(3, h, w)
    mean = np.asarray(mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(std, dtype=np.float32).reshape(3, 1, 1)
    v = _round_half_away((z * std + mean) * np.float32(255))
    image[y0:y0 + h, x0:x0 + w, :] = np.clip(v, 0, 255, out=v).astype(np.uint8).transpose(1, 2, 0)
    return image


def erase_normalized(chw, box, seed):
    """Write the noise into `box` of a normalised float32 (3, H, W) array in place (timm's values)."""
    x0, y0, w, h = (int(v) for v in box)
    chw[:, y0:y0 + h, x0:x0 + w] = noise(seed, 3 * w * h).reshape(3, h, w)
    return chw
