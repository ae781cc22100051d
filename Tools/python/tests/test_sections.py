"""Section transforms (FORMAT.md section 3) on small hand-checked inputs, including the spec's
worked example of the order number."""

import math
import zlib

import numpy as np
import pytest

from tinyshard import format as F
from tinyshard.codec import (decode_order, encode_indices, encode_order, encode_values, from_planes,
                             lehmer_digits, ranks_of_digits, sorted_indices_of, to_planes, values_of)


def decode_values(data, n, k):
    """Section 3.3's inverse on a values section: (n, K) uint16 bit patterns."""
    return values_of(data[:2 * n].reshape(2, n), data[2 * n:].reshape(2, n, k - 1))


def decode_indices(data, n, k, width):
    """Section 3.4's inverse on an indices section: ascending (n, K) indices."""
    return sorted_indices_of(np.asarray(data, np.uint8).reshape(width, n, k))

from conftest import block_of, header


def order_bytes_of(stored_indices):
    indices = np.array([stored_indices])
    ranks = np.argsort(np.argsort(indices, axis=1), axis=1)
    return encode_order(lehmer_digits(ranks)).tobytes()


def test_spec_worked_example_order_number():
    # K = 3, stored indices [7, 2, 5]: s = [2, 5, 7], r = [2, 0, 1], d = [2, 0, 0], X = 4
    indices = np.array([[7, 2, 5]])
    ranks = np.argsort(np.argsort(indices, axis=1), axis=1)
    assert ranks.tolist() == [[2, 0, 1]]
    assert lehmer_digits(ranks).tolist() == [[2, 0, 0]]
    assert order_bytes_of([7, 2, 5]) == b"\x04"
    ranks, bad = decode_order(np.frombuffer(b"\x04", np.uint8), 1, 3)
    assert ranks.tolist() == [[2, 0, 1]] and not bad.any()
    assert ranks_of_digits(np.array([[2], [0], [0]], np.uint8)).T.tolist() == [[2, 0, 1]]


@pytest.mark.parametrize("k,length", [(1, 0), (2, 1), (3, 1), (5, 1), (6, 2), (8, 2), (9, 3),
                                      (10, 3), (20, 8), (21, 9), (256, 211)])
def test_order_number_width(k, length):
    assert F.order_bytes(k) == length == math.ceil((math.factorial(k) - 1).bit_length() / 8)


@pytest.mark.parametrize("k", [1, 2, 3, 7, 20, 21, 34, 256])
def test_order_numbers_round_trip_and_extremes(k):
    rng = np.random.default_rng(k)
    perms = np.array([np.arange(k), np.arange(k)[::-1]] + [rng.permutation(k) for _ in range(20)])
    encoded = encode_order(lehmer_digits(perms))
    x = [int.from_bytes(row.tobytes(), "little") for row in encoded]
    assert x[0] == 0 and x[1] == math.factorial(k) - 1          # identity and full reversal
    ranks, bad = decode_order(encoded, len(perms), k)
    assert not bad.any()
    assert (ranks == perms).all()


@pytest.mark.parametrize("k", [2, 3, 20, 21])
def test_order_number_at_k_factorial_is_bad(k):
    length = F.order_bytes(k)
    data = np.frombuffer(math.factorial(k).to_bytes(length, "little")
                         + (math.factorial(k) - 1).to_bytes(length, "little"), np.uint8)
    _, bad = decode_order(data, 2, k)
    assert bad.tolist() == [True, False]


def test_planes_layout():
    assert to_planes(np.array([0x04030201, 0x08070605]), 4).tolist() == [1, 5, 2, 6, 3, 7, 4, 8]
    assert to_planes(np.array([0x0201, 0x0403, 0x0605]), 2).tolist() == [1, 3, 5, 2, 4, 6]
    assert from_planes(np.array([1, 5, 2, 6, 3, 7], np.uint8), 3, 2).tolist() == [
        0x030201, 0x070605]


def test_values_transform_matches_spec_formula():
    bits = np.array([[0x3C00, 0x3800, 0x3A00], [0x0001, 0x0000, 0x7BFF]], dtype=np.uint16)
    data = encode_values(bits)
    firsts = [0x3C00, 0x0001]                                  # t_0 of every record
    differences = [0x0400, (0x3800 - 0x3A00) % 65536, 0x0001, (0 - 0x7BFF) % 65536]
    assert data.tolist() == ([v & 0xFF for v in firsts] + [v >> 8 for v in firsts]
                             + [v & 0xFF for v in differences] + [v >> 8 for v in differences])
    assert (decode_values(data, 2, 3) == bits).all()


@pytest.mark.parametrize("k", [1, 2, 5])
def test_values_round_trip(k):
    bits = np.random.default_rng(k).integers(0, 65536, (7, k)).astype(np.uint16)
    assert (decode_values(encode_values(bits), 7, k) == bits).all()


def test_index_gaps_match_spec_formula():
    s = np.array([[2, 5, 7], [0, 1, 65535]])
    data = encode_indices(s, 2)
    gaps = [2, 2, 1, 0, 0, 65533]
    assert data.tolist() == [g & 0xFF for g in gaps] + [g >> 8 for g in gaps]
    assert (decode_indices(data, 2, 3, 2) == s).all()


@pytest.mark.parametrize("classes,width", [(1, 1), (256, 1), (257, 2), (65536, 2), (65537, 3),
                                           (1 << 24, 3)])
def test_index_width(classes, width):
    assert F.index_width(classes) == width


def test_zlib_only_when_smaller():
    h = header(classes=1000, k=3, augmentation_kind="seed")
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (4, 4), dtype=np.uint8)       # incompressible seeds
    block = block_of(h, 0, [1, 2, 3, 4], [[1, 2, 3]] * 4, [[0.5, 0.25, 0.125]] * 4, aug=noisy)
    payload = memoryview(block)[32:]
    pos, codecs = 0, []
    for expected in (16, 16, 24, 24, 4):
        codec, _, stored_len, decoded_len = F.SECTION_HEADER.unpack_from(payload, pos)
        stored = bytes(payload[pos + 12:pos + 12 + stored_len])
        raw = zlib.decompress(stored) if codec == 1 else stored
        codecs.append(codec)
        assert decoded_len == expected == len(raw)
        assert (codec == 1) == (len(zlib.compress(raw, 6)) < len(raw))
        pos += 12 + stored_len
    assert codecs[1] == 0                                       # random bytes stay stored
    assert pos == len(payload)
