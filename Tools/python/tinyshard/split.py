"""The held-out split by key hash of Spec/IMAGESTORE.md section 7 (Sources/ImageStore/HeldOutSplit.swift):
image i is held out when u(key_i) < fraction, u = FNV-1a-64 of the key's UTF-8 bytes, xored with a salt,
through the SplitMix64 finaliser, top 53 bits / 2^53. Membership depends on the key alone, so every run
(teacher pass, student, baseline; Swift or Python) evaluates on the same images."""

from .sampler import MASK64, mix64


def unit_hash(key, salt=0):
    """The key's position in [0, 1)."""
    h = 0xCBF29CE484222325
    for byte in key.encode("utf-8"):
        h = ((h ^ byte) * 0x100000001B3) & MASK64
    return (mix64(h ^ (salt & MASK64)) >> 11) * 2.0 ** -53


def held_out_split(keys, fraction, salt=0):
    """(train indices, held-out indices), ascending, of a key list."""
    train, held_out = [], []
    for index, key in enumerate(keys):
        (held_out if unit_hash(key, salt) < fraction else train).append(index)
    return train, held_out
