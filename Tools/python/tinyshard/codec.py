"""The five section transforms of FORMAT.md section 3, for many records at a time (numpy), and
the per-record content rules of section 2.

Encoding takes a block's records as arrays. Decoding takes RecordBytes — a block's inflated sections
reshaped into byte planes, or rows taken from several blocks — and returns the same arrays plus the
list of records that break a content rule, so that the reader can raise the first one and the verifier
can report them all. Every step is vectorised over the records, order numbers included (any K up to
256: a float64 matrix product and K carry steps, then K uint8 insertion steps).
"""

import functools
import math
import zlib
from dataclasses import dataclass

import numpy as np

from . import format as F
from .augment import params_problems

U64_FACTORIAL_LIMIT = 20          # 20! < 2**64 <= 21!: order numbers fit a uint64 up to K = 20
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


# --------------------------------------------------------------------------------------------
# Values (3.3)


def encode_values(bits):
    """(n, K) float16 bit patterns -> t_0 = b_0, t_j = b_{j-1} - b_j (mod 65536); the n first
    values as 2 byte planes, then the n(K-1) differences (record-major) as 2 byte planes."""
    bits = np.asarray(bits, dtype=np.uint16)
    t = bits.copy()
    t[:, 1:] = bits[:, :-1] - bits[:, 1:]          # uint16 arithmetic wraps mod 65536
    return np.concatenate([to_planes(t[:, 0], 2), to_planes(t[:, 1:], 2)])


def values_of(first, rest):
    """b_0 = t_0, b_j = b_{j-1} - t_j (mod 65536) from the byte planes of t_0 (2, n) and of t_1..
    (2, n, K-1)."""
    n, k = first.shape[1], rest.shape[2] + 1
    t = np.empty((n, k), dtype=np.uint16)        # uint16 arithmetic wraps mod 65536: 2 bytes/entry
    t[:, 0] = from_byte_planes(first, np.uint16)
    t[:, 1:] = from_byte_planes(rest, np.uint16)
    np.negative(t[:, 1:], out=t[:, 1:])
    # Summed in uint32 (numpy's uint16 cumsum is 2.5x slower); the low 16 bits are the sums mod 65536.
    return np.cumsum(t, axis=1, dtype=np.uint32).astype(np.uint16)


def from_byte_planes(planes, dtype):
    """(w, ...) byte planes, least significant first -> (...) unsigned integers of `dtype`."""
    out = planes[0].astype(dtype)
    for p in range(1, len(planes)):
        out |= planes[p].astype(dtype) << dtype(8 * p)
    return out


# --------------------------------------------------------------------------------------------
# Indices (3.4) and order numbers (3.5)


def encode_indices(sorted_indices, width):
    """Ascending (n, K) indices -> gaps g_0 = s_0, g_j = s_j - s_{j-1} - 1, as width planes."""
    gaps = sorted_indices.copy()
    gaps[:, 1:] = sorted_indices[:, 1:] - sorted_indices[:, :-1] - 1
    return to_planes(gaps, width)


def sorted_indices_of(gaps):
    """s_j = g_0 + ... + g_j + j from the gap byte planes (w, n, K), int64 (no wrap for damaged gaps)."""
    s = np.cumsum(from_byte_planes(gaps, np.uint32), axis=1, dtype=np.int64)
    s += np.arange(gaps.shape[2])
    return s


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


# Below this many rows a block's order numbers are decoded one Python integer at a time: numpy's
# K sequential carry steps cost more than K divmods and pops per row.
VECTOR_MIN_ROWS = 16
LIMB_BITS = 32
GEMM_STEP = 1 << 17       # K x limbs x columns per matrix product: below OpenBLAS's threading threshold


@functools.lru_cache(maxsize=None)
def _limb_digits(k, limbs):
    """(K, limbs) float64: column i holds the factorial-base digits d_0..d_{K-1} (d_j < K - j) of
    2^(32 i), for the limbs whose weight is below K! (the others can only be 0 in a valid number)."""
    table = np.zeros((k, limbs), dtype=np.float64)
    limit = math.factorial(k)
    for i in range(limbs):
        x = 1 << (LIMB_BITS * i)
        if x >= limit:
            break
        for j in range(k - 1, -1, -1):
            x, table[j, i] = divmod(x, k - j)
    table.setflags(write=False)
    return table


def order_digits(raw, k):
    """(K, n) uint8 Lehmer digits d_j of n order numbers given as (n, L) little-endian bytes, every
    row already known to be < K!.

    X = sum_i x_i 2^(32 i) over its 32-bit limbs x_i; with F_i the factorial-base digits of 2^(32 i),
    the sums S_j = sum_i x_i F_ij are X's digits before carrying, for all rows at once as one float64
    matrix product (exact: every product is below 2^40 and every sum below 2^53 for K <= 256). The
    carries then run from the radix-1 digit up, K steps over the rows: v = S_j + carry,
    d_j = v mod (K - j), carry = floor(v / (K - j)) (exact in float64: v < 2^48)."""
    n, length = raw.shape
    digits = np.zeros((k, n), dtype=np.uint8)
    if k == 1 or n == 0:
        return digits
    limbs = -(-length // 4)
    padded = np.zeros((n, 4 * limbs), dtype=np.uint8)
    padded[:, :length] = raw
    table = _limb_digits(k, limbs)
    x = padded.view("<u4").T.astype(np.float64)                                    # (limbs, n)
    sums = np.empty((k, n))
    # In steps of columns small enough that BLAS runs them in the calling thread: a product this small
    # handed to OpenBLAS's threads costs 10-100x more when the cores are busy (DataLoader workers, a
    # build), and the threads then spin on every core.
    step = max(1, GEMM_STEP // (k * limbs))
    for start in range(0, n, step):
        np.matmul(table, x[:, start:start + step], out=sums[:, start:start + step])
    carry, quotient = np.zeros(n), np.empty(n)
    for j in range(k - 1, -1, -1):
        radix = float(k - j)
        value = sums[j]
        value += carry
        np.floor(np.divide(value, radix, out=quotient), out=quotient)
        value -= quotient * radix
        digits[j] = value
        carry, quotient = quotient, carry
    return digits


def ranks_of_digits(digits):
    """(K, n) uint8 ranks r_j from (K, n) Lehmer digits: r_j = rest.pop(d_j) of section 3.5, computed
    from the last entry back: the entries after j, ranked among themselves, move up by one where
    they rank at or above d_j, and entry j takes rank d_j (K^2/2 uint8 comparisons per row)."""
    k, n = digits.shape
    ranks = np.zeros((k, n), dtype=np.uint8)
    above = np.empty((k, n), dtype=bool)
    for j in range(k - 2, -1, -1):
        tail = ranks[j + 1:]
        step = above[:k - 1 - j]
        np.greater_equal(tail, digits[j], out=step)
        np.add(tail, step.view(np.uint8), out=tail)
        ranks[j] = digits[j]
    return ranks


def decode_order(data, n, k):
    """L-byte order numbers -> ((n, K) ranks r (uint8 or int64), bool mask of rows with X >= K!).

    Rows with an invalid X get the identity order so the block stays usable for reporting. Few rows
    are decoded as Python integers, more with numpy (order_digits, ranks_of_digits)."""
    length = F.order_bytes(k)
    raw = np.asarray(data, dtype=np.uint8).reshape(n, length)
    bad = order_out_of_range(raw, n, k)
    if n < VECTOR_MIN_ROWS:
        numbers = [0 if bad[row] else int.from_bytes(raw[row].tobytes(), "little") for row in range(n)]
        return np.array([_ranks_of(x, k) for x in numbers], dtype=np.int64).reshape(n, k), bad
    if bad.any():
        raw = raw.copy()
        raw[bad] = 0
    return ranks_of_digits(order_digits(raw, k)).T, bad


def _ranks_of(x, k):
    """One order number -> ranks: d_{K-1} has radix 1, ..., d_0 radix K; r_j = rest.pop(d_j)."""
    digits = []
    for radix in range(1, k + 1):
        x, digit = divmod(x, radix)
        digits.append(digit)
    rest = list(range(k))
    return [rest.pop(digit) for digit in reversed(digits)]


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
    sums: np.ndarray = None  # (n,) float64 exact sums of the values (probability shards), else None


@dataclass(frozen=True)
class RecordBytes:
    """The encoded bytes of n records as uint8 arrays in the sections' byte-plane layout: a block's
    sections reshaped (no copy), or rows taken from one or several blocks. ids (4, n) planes,
    aug (n, A), first (2, n) planes of t_0, rest (2, n, K-1) planes of t_1..t_{K-1}, gaps (w, n, K)
    planes, order (n, L)."""

    ids: np.ndarray
    aug: np.ndarray
    first: np.ndarray
    rest: np.ndarray
    gaps: np.ndarray
    order: np.ndarray

    ROW_AXIS = (1, 0, 1, 1, 1, 0)          # the axis that numbers the records, per part

    def __len__(self):
        return self.aug.shape[0]

    def parts(self):
        return (self.ids, self.aug, self.first, self.rest, self.gaps, self.order)

    def take(self, rows):
        """A copy of the given rows (an index array)."""
        return RecordBytes(*(np.take(part, rows, axis=axis) for part, axis in zip(self.parts(), self.ROW_AXIS)))

    @staticmethod
    def concatenate(many):
        """The records of several RecordBytes, in order (one copy)."""
        return RecordBytes(*(np.concatenate(parts, axis=axis)
                             for parts, axis in zip(zip(*(m.parts() for m in many)), RecordBytes.ROW_AXIS)))

    @staticmethod
    def empty(header, n):
        """Zeroed RecordBytes for n records of a header's shape (a buffer to store rows into)."""
        k, width = header.k, header.index_width
        return RecordBytes(np.zeros((4, n), np.uint8), np.zeros((n, header.aug_bytes), np.uint8),
                           np.zeros((2, n), np.uint8), np.zeros((2, n, k - 1), np.uint8),
                           np.zeros((width, n, k), np.uint8), np.zeros((n, header.order_bytes), np.uint8))

    def store(self, start, records):
        """Write `records` into rows [start, start + len(records))."""
        rows = slice(start, start + len(records))
        for part, axis, source in zip(self.parts(), self.ROW_AXIS, records.parts()):
            (part[:, rows] if axis else part[rows])[...] = source


def record_bytes(header, n, sections):
    """The five decoded sections of a block of n records as RecordBytes (reshaped, no copy)."""
    k, width = header.k, header.index_width
    ids, aug, values, indices, order = (np.asarray(s, dtype=np.uint8) for s in sections)
    return RecordBytes(ids=ids.reshape(4, n), aug=aug.reshape(n, header.aug_bytes),
                       first=values[:2 * n].reshape(2, n), rest=values[2 * n:].reshape(2, n, k - 1),
                       gaps=indices.reshape(width, n, k), order=order.reshape(n, header.order_bytes))


def record_bytes_width(header):
    """Encoded bytes per record (all five sections)."""
    k = header.k
    return 4 + header.aug_bytes + 2 * k + header.index_width * k + header.order_bytes


def decode_ids(raw_block):
    """Only the sample ids of a block: enough for lookup tables, without decoding the rest."""
    return from_planes(raw_block.sections[0], 4, raw_block.n)


VALUE_ROWS_PER_STEP = 4096    # rows checked at once: bounds the temporaries of a block


@functools.lru_cache(maxsize=None)
def _probability_units():
    """int32 table over float16 bit patterns: the value times 2^24 (an integer: float16 values in [0, 1]
    are multiples of 2^-24) for every value in [0, 1] (-0 counts 0), 0 elsewhere."""
    values = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float64)
    units = np.zeros(1 << 16, dtype=np.int32)
    with np.errstate(invalid="ignore"):
        in_range = (values >= 0) & (values <= 1)
    units[in_range] = values[in_range] * 2.0 ** 24
    units.setflags(write=False)
    return units


def _rows_with(mask):
    """Rows of an (n, m) bool array holding a True (the whole array is tested first: problems are rare,
    and numpy's any over short rows is 15x slower than over the array)."""
    return mask.any(axis=1) if mask.any() else np.zeros(len(mask), dtype=bool)


def value_problems(header, values):
    """[(code, row, message)] for rows of (n, K) float16 values that break section 2's value
    rules or the `sorted` flag. Shared by the writer (one row) and the reader (a block)."""
    return value_checks(header, values)[0]


def value_checks(header, values):
    """(value_problems, sums): for a probability shard also each row's exact float64 sum of its values
    (meaningful for rows of values in [0, 1]), else None. Judged on the float16 bit patterns: finite is
    an exponent below 31; [0, 1] is a pattern <= 0x3C00 or -0; the sum adds the values' multiples of 2^-24
    as integers; order compares patterns mapped to integers that order as the values do."""
    if len(values) > VALUE_ROWS_PER_STEP:
        found, sums = [], []
        for start in range(0, len(values), VALUE_ROWS_PER_STEP):
            problems, part = value_checks(header, values[start:start + VALUE_ROWS_PER_STEP])
            found += [(code, start + row, message) for code, row, message in problems]
            sums.append(part)
        return found, (np.concatenate(sums) if sums[0] is not None else None)
    bits = values.view(np.uint16)
    finite = ~_rows_with((bits & 0x7C00) == 0x7C00)
    rules = [(~finite, "value is NaN or infinite")]
    sums = None
    probability = header.value_kind == "probability"
    if probability:
        in_range = ~_rows_with((bits > 0x3C00) & (bits != 0x8000))
        sums = _probability_units().take(bits).sum(axis=1, dtype=np.int64) * 2.0 ** -24   # exact
        rules.append((finite & ~in_range, "probability outside [0, 1]"))
        rules.append((finite & in_range & ~(sums <= F.probability_sum_bound(header.k)),
                      "probabilities sum above 1 + 2^-11 + K*2^-25"))
    problems = [("bad-value", row, message)
                for bad, message in rules for row in np.flatnonzero(bad).tolist()]
    if header.sorted:
        key = np.where(bits == 0x8000, np.uint16(0), bits)            # -0 is 0
        if not probability:
            # Values order as these integers: positive patterns above negative ones, negative reversed.
            key = np.where(key & 0x8000, ~key, key | 0x8000)
        # (In a probability shard a row with a value outside [0, 1] already has a bad-value problem, which
        # is reported first; among values in [0, 1] the patterns order as the values.)
        increasing = _rows_with(key[:, 1:] > key[:, :-1])
        problems += [("not-sorted", row, "values increase in a sorted shard")
                     for row in np.flatnonzero(finite & increasing).tolist()]
    return problems, sums


SECTION_RANK = {"bad-augmentation": 0, "bad-value": 1, "not-sorted": 1,
                "index-out-of-range": 2, "bad-order": 3}


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
    return decode_records(header, first, record_bytes(header, n, sections), check_only)


def decode_records(header, first, records, check_only=False):
    """decode_block for RecordBytes: a whole block's, or rows taken from one or several blocks (then
    `first` only names them: problems are reported by position in `records`)."""
    k, n = header.k, len(records)
    aug = records.aug
    values = values_of(records.first, records.rest).view(np.float16)
    if check_only:
        largest = from_byte_planes(records.gaps, np.uint32).sum(axis=1, dtype=np.int64) + (k - 1)
        sorted_indices = largest.reshape(n, 1)
        bad_order = order_out_of_range(records.order, n, k)
        indices = None
    else:
        sorted_indices = sorted_indices_of(records.gaps)
        ranks, bad_order = decode_order(records.order, n, k)
        # s[i, r_ij] as one flat gather (intp positions: numpy gathers int64 with int32 ones 7x slower;
        # "clip" skips a bounds check that cannot fail, every rank being < K).
        flat = np.asarray(ranks).astype(np.intp, order="C")
        flat += (np.arange(n, dtype=np.intp) * k)[:, None]
        indices = sorted_indices.reshape(-1).take(flat, mode="clip")

    problems = []
    if header.augmentation_kind == "params":
        problems += [("bad-augmentation", row, message)
                     for row, message in params_problems(aug, header.output_size)]
    found, sums = value_checks(header, values)
    problems += found
    problems += [("index-out-of-range", row, f"class index {sorted_indices[row, -1]} >= C")
                 for row in np.flatnonzero(sorted_indices[:, -1] >= header.classes).tolist()]
    problems += [("bad-order", row, "order number >= K!")
                 for row in np.flatnonzero(bad_order).tolist()]
    # A record's first problem only, in section order (FORMAT.md 1.4): bad-augmentation, bad-value
    # (every value rule before not-sorted), index-out-of-range, bad-order.
    problems.sort(key=lambda p: (p[1], SECTION_RANK[p[0]], p[0] != "bad-value"))
    problems = [p for i, p in enumerate(problems) if i == 0 or problems[i - 1][1] != p[1]]
    return DecodedBlock(first=first, ids=from_byte_planes(records.ids, np.uint32), aug=aug,
                        indices=indices, values=values, problems=problems, sums=sums)
