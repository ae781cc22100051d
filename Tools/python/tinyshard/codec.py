"""The five section transforms of FORMAT.md section 3, for whole blocks at a time (numpy), and
the per-record content rules of section 2.

Encoding takes a block's records as arrays; decoding returns the same arrays plus the list of
records that break a content rule, so that the reader can raise the first one and the verifier
can report them all.
"""

import math
import zlib
from dataclasses import dataclass

import numpy as np

from . import format as F
from .augment import params_problems

U64_FACTORIAL_LIMIT = 20          # 20! < 2**64 <= 21!: order numbers fit a uint64 up to K = 20
VECTOR_MIN_ROWS = 64              # below this, numpy's 2K passes cost more than per-row Python
ZLIB_LEVEL = 6


# --------------------------------------------------------------------------------------------
# Byte planes


def to_planes(values, width):
    """Little-endian byte planes: byte 0 of every value, then byte 1, ... (width planes)."""
    as_bytes = np.ascontiguousarray(values, dtype="<u4").reshape(-1).view(np.uint8)
    return np.ascontiguousarray(as_bytes.reshape(-1, 4)[:, :width].T).reshape(-1)


def from_planes(data, width, count, dtype=np.uint32):
    """Inverse of to_planes: `count` unsigned values from `width` planes, each plane written
    straight into its byte of the little-endian result (no widened temporaries)."""
    planes = np.asarray(data, dtype=np.uint8).reshape(width, count)
    out = np.zeros(count, dtype=np.dtype(dtype).newbyteorder("<"))
    view = out.view(np.uint8).reshape(count, out.itemsize)
    for p in range(width):
        view[:, p] = planes[p]
    return out.astype(dtype, copy=False)


def sum_of_planes(data, width, n, k):
    """Per row of (n, K) plane-coded unsigned values, their sum (int64), without decoding them."""
    planes = np.asarray(data, dtype=np.uint8).reshape(width, n, k)
    return sum(planes[p].sum(axis=1, dtype=np.int64) << (8 * p) for p in range(width))


# --------------------------------------------------------------------------------------------
# Values (3.3)


def encode_values(bits):
    """(n, K) float16 bit patterns -> t_0 = b_0, t_j = b_{j-1} - b_j (mod 65536); the n first
    values as 2 byte planes, then the n(K-1) differences (record-major) as 2 byte planes."""
    bits = np.asarray(bits, dtype=np.uint16)
    t = bits.copy()
    t[:, 1:] = bits[:, :-1] - bits[:, 1:]          # uint16 arithmetic wraps mod 65536
    return np.concatenate([to_planes(t[:, 0], 2), to_planes(t[:, 1:], 2)])


def decode_values(data, n, k):
    """Inverse of encode_values: b_0 = t_0, b_j = b_{j-1} - t_j (mod 65536)."""
    data = np.asarray(data, dtype=np.uint8)
    t = np.empty((n, k), dtype=np.uint16)        # uint16 arithmetic wraps mod 65536: 2 bytes/entry
    t[:, 0] = from_planes(data[:2 * n], 2, n, np.uint16)
    t[:, 1:] = from_planes(data[2 * n:], 2, n * (k - 1), np.uint16).reshape(n, k - 1)
    np.negative(t[:, 1:], out=t[:, 1:])
    return np.cumsum(t, axis=1, dtype=np.uint16, out=t)


# --------------------------------------------------------------------------------------------
# Indices (3.4) and order numbers (3.5)


def encode_indices(sorted_indices, width):
    """Ascending (n, K) indices -> gaps g_0 = s_0, g_j = s_j - s_{j-1} - 1, as width planes."""
    gaps = sorted_indices.copy()
    gaps[:, 1:] = sorted_indices[:, 1:] - sorted_indices[:, :-1] - 1
    return to_planes(gaps, width)


def decode_indices(data, n, k, width):
    """Inverse of encode_indices: ascending (n, K) int64 indices (possibly >= C if damaged)."""
    gaps = from_planes(data, width, n * k).reshape(n, k).astype(np.int64)
    return np.cumsum(gaps + 1, axis=1) - 1


def lehmer_digits(ranks):
    """d_j = #{m > j : r_m < r_j} for each row of an (n, K) permutation array."""
    n, k = ranks.shape
    digits = np.zeros((n, k), dtype=np.int64)
    for j in range(k - 1):
        digits[:, j] = np.count_nonzero(ranks[:, j + 1:] < ranks[:, j:j + 1], axis=1)
    return digits


def encode_order(digits):
    """(n, K) Lehmer digits -> the order numbers X as L-byte little-endian integers."""
    n, k = digits.shape
    length = F.order_bytes(k)
    if k <= U64_FACTORIAL_LIMIT:
        x = np.zeros(n, dtype=np.uint64)
        for j in range(k):
            x = x * np.uint64(k - j) + digits[:, j].astype(np.uint64)
        return np.ascontiguousarray(x.astype("<u8").view(np.uint8).reshape(n, 8)[:, :length])
    out = bytearray()
    for row in digits.tolist():
        x = 0
        for j, d in enumerate(row):
            x = x * (k - j) + d
        out += x.to_bytes(length, "little")
    return np.frombuffer(bytes(out), dtype=np.uint8).reshape(n, length)


def decode_order(data, n, k):
    """L-byte order numbers -> ((n, K) ranks r, bool mask of rows with X >= K!).

    Up to K = 20, X fits a uint64 and many rows are decoded at once with numpy; otherwise each
    row is a Python integer (for large K, or few rows, K pops per row cost less than numpy's
    passes over the block). Rows with an invalid X get the identity order so the block stays
    usable for reporting."""
    length = F.order_bytes(k)
    raw = np.asarray(data, dtype=np.uint8).reshape(n, length)
    if k <= U64_FACTORIAL_LIMIT and n >= VECTOR_MIN_ROWS:
        padded = np.zeros((n, 8), dtype=np.uint8)
        padded[:, :length] = raw
        x = padded.view("<u8").reshape(n).astype(np.uint64)
        bad = x >= np.uint64(math.factorial(k))
        x[bad] = 0
        digits = np.zeros((n, k), dtype=np.int64)
        for j in range(k - 1, -1, -1):
            digits[:, j] = (x % np.uint64(k - j)).astype(np.int64)
            x //= np.uint64(k - j)
        return ranks_from_digits(digits), bad
    limit = math.factorial(k)
    numbers = [int.from_bytes(raw[row].tobytes(), "little") for row in range(n)]
    bad = np.array([x >= limit for x in numbers], dtype=bool).reshape(n)
    ranks = [_ranks_of(0 if x >= limit else x, k) for x in numbers]
    return np.array(ranks, dtype=np.int64).reshape(n, k), bad


def _ranks_of(x, k):
    """One order number -> ranks: d_{K-1} has radix 1, ..., d_0 radix K; r_j = rest.pop(d_j)."""
    digits = []
    for radix in range(1, k + 1):
        x, digit = divmod(x, radix)
        digits.append(digit)
    rest = list(range(k))
    return [rest.pop(digit) for digit in reversed(digits)]


def ranks_from_digits(digits):
    """r_j = rest.pop(d_j) with rest = [0..K-1], for all rows at once."""
    n, k = digits.shape
    available = np.ones((n, k), dtype=bool)
    ranks = np.empty((n, k), dtype=np.int64)
    rows = np.arange(n)
    for j in range(k):
        position = np.argmax(np.cumsum(available, axis=1) > digits[:, j:j + 1], axis=1)
        ranks[:, j] = position
        available[rows, position] = False
    return ranks


# --------------------------------------------------------------------------------------------
# Blocks


def _section(raw):
    """A section, zlib only when that is strictly smaller than the stored bytes (1.2)."""
    raw = bytes(raw)
    packed = zlib.compress(raw, ZLIB_LEVEL)
    if len(packed) < len(raw):
        return F.pack_section(F.CODEC_ZLIB, packed, len(raw))
    return F.pack_section(F.CODEC_STORED, raw, len(raw))


def encode_block(header, first, ids, aug, indices, bits):
    """One complete block (header + payload) for n records given as arrays:
    ids (n,) u32, aug (n, A) u8, indices (n, K) in stored order, bits (n, K) float16 patterns.
    Records must already be valid (the writer checks them as they arrive)."""
    indices = np.asarray(indices, dtype=np.int64)
    order = np.argsort(indices, axis=1, kind="stable")
    ranks = np.argsort(order, axis=1, kind="stable")
    sorted_indices = np.take_along_axis(indices, order, axis=1)
    payload = b"".join(_section(part) for part in (
        to_planes(ids, 4), aug, encode_values(bits),
        encode_indices(sorted_indices, header.index_width), encode_order(lehmer_digits(ranks))))
    return F.pack_block_header(len(ids), first, len(payload), F.crc32(payload)) + payload


@dataclass(frozen=True)
class DecodedBlock:
    """A block's records as arrays (stored order) and the content problems found in it:
    problems is a list of (code, row in block, message), by row then section order."""

    first: int
    ids: np.ndarray          # (n,) uint32
    aug: np.ndarray          # (n, A) uint8
    indices: np.ndarray      # (n, K) int64
    values: np.ndarray       # (n, K) float16
    problems: list


def decode_ids(raw_block):
    """Only the sample ids of a block: enough for lookup tables, without decoding the rest."""
    return from_planes(raw_block.sections[0], 4, raw_block.n)


VALUE_ROWS_PER_STEP = 4096    # rows checked at once: bounds the float32 temporaries of a block


def value_problems(header, values):
    """[(code, row, message)] for rows of (n, K) float16 values that break section 2's value
    rules or the `sorted` flag. Shared by the writer (one row) and the reader (a block)."""
    if len(values) > VALUE_ROWS_PER_STEP:
        found = []
        for start in range(0, len(values), VALUE_ROWS_PER_STEP):
            found += [(code, start + row, message) for code, row, message in
                      value_problems(header, values[start:start + VALUE_ROWS_PER_STEP])]
        return found
    v = values.astype(np.float32)                # exact for float16; half the memory of float64
    finite = np.isfinite(v).all(axis=1)
    rules = [(~finite, "value is NaN or infinite")]
    if header.value_kind == "probability":
        with np.errstate(invalid="ignore"):
            in_range = ((v >= 0) & (v <= 1)).all(axis=1)
            total = v.sum(axis=1, dtype=np.float64)   # exact: multiples of 2^-24, K <= 256
        rules.append((finite & ~in_range, "probability outside [0, 1]"))
        rules.append((finite & in_range & ~(total <= F.probability_sum_bound(header.k)),
                      "probabilities sum above 1 + 2^-11 + K*2^-25"))
    problems = [("bad-value", row, message)
                for bad, message in rules for row in np.flatnonzero(bad).tolist()]
    if header.sorted:
        with np.errstate(invalid="ignore"):
            increasing = (v[:, 1:] > v[:, :-1]).any(axis=1)
        problems += [("not-sorted", row, "values increase in a sorted shard")
                     for row in np.flatnonzero(finite & increasing).tolist()]
    return problems


SECTION_RANK = {"bad-augmentation": 0, "bad-value": 1, "not-sorted": 1,
                "index-out-of-range": 2, "bad-order": 3}


def row_sections(header, raw_block, row):
    """The five sections of a one-record block holding record `row` of `raw_block`: each
    record's bytes sit at fixed places in every byte plane, so no other record is decoded."""
    n, k = raw_block.n, header.k
    ids, aug, values, indices, order = raw_block.sections
    part = slice(row * k, (row + 1) * k)
    rest = slice(row * (k - 1), (row + 1) * (k - 1))
    firsts, differences = values[:2 * n].reshape(2, n), values[2 * n:].reshape(2, n * (k - 1))
    return (ids.reshape(4, n)[:, row].copy(), aug.reshape(n, -1)[row],
            np.concatenate([firsts[:, row], differences[:, rest].ravel()]),
            indices.reshape(header.index_width, n * k)[:, part].ravel(),
            order.reshape(n, -1)[row])


def order_out_of_range(data, n, k):
    """Bool mask of records whose order number X >= K!: the L-byte numbers compared with K! byte by
    byte from the most significant end, all rows at once (no permutation is built)."""
    length = F.order_bytes(k)
    if length == 0:
        return np.zeros(n, bool)
    numbers = np.asarray(data, dtype=np.uint8).reshape(n, length)[:, ::-1]
    limit = np.frombuffer(math.factorial(k).to_bytes(length + 1, "big"), np.uint8)
    if limit[0]:                                   # K! needs more than L bytes: every X fits
        return np.zeros(n, bool)
    limit = limit[1:]
    differs = numbers != limit
    first = differs.argmax(axis=1)
    larger = numbers[np.arange(n), first] > limit[first]
    return ~differs.any(axis=1) | (differs.any(axis=1) & larger)


def decode_block(header, first, n, sections, check_only=False):
    """Decode the sections of n records (first ordinal `first`) into arrays and check every
    record's content rules. `check_only` (the verifier) skips rebuilding each record's stored
    entry order, which no rule needs: `indices` is then None."""
    k = header.k
    id_bytes, aug_bytes, value_bytes, index_bytes, order_bytes = sections
    aug = np.asarray(aug_bytes, dtype=np.uint8).reshape(n, header.aug_bytes)
    values = decode_values(value_bytes, n, k).view(np.float16)
    if check_only:
        largest = sum_of_planes(index_bytes, header.index_width, n, k) + (k - 1)
        sorted_indices = largest.reshape(n, 1)
        bad_order = order_out_of_range(order_bytes, n, k)
        indices = None
    else:
        sorted_indices = decode_indices(index_bytes, n, k, header.index_width)
        ranks, bad_order = decode_order(order_bytes, n, k)
        indices = np.take_along_axis(sorted_indices, ranks, axis=1)

    problems = []
    if header.augmentation_kind == "params":
        problems += [("bad-augmentation", row, message)
                     for row, message in params_problems(aug, header.output_size)]
    problems += value_problems(header, values)
    problems += [("index-out-of-range", row, f"class index {sorted_indices[row, -1]} >= C")
                 for row in np.flatnonzero(sorted_indices[:, -1] >= header.classes).tolist()]
    problems += [("bad-order", row, "order number >= K!")
                 for row in np.flatnonzero(bad_order).tolist()]
    # A record's first problem only, in section order (FORMAT.md 1.4): bad-augmentation, bad-value
    # (every value rule before not-sorted), index-out-of-range, bad-order.
    problems.sort(key=lambda p: (p[1], SECTION_RANK[p[0]], p[0] != "bad-value"))
    problems = [p for i, p in enumerate(problems) if i == 0 or problems[i - 1][1] != p[1]]
    return DecodedBlock(first=first, ids=from_planes(id_bytes, 4, n), aug=aug,
                        indices=indices, values=values, problems=problems)
