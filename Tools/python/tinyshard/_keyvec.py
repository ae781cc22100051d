"""Vectorised work on many keys held in one byte buffer: byte-order comparison, equality, hashing and
matching a list of keys against a table, with numpy only and no Python object per key.

A key is a byte range of a uint8 buffer that is followed by at least PAD bytes of padding: words are
read 8 bytes at a time from any offset (an unaligned big-endian view) and masked to the key, so a key is
compared or hashed in ⌈length / 8⌉ array operations whatever the keys look like. Work that would grow
with a hostile key's length (a page may hold one key of 32 MiB) is capped: hashing reads at most
HASH_BYTES of a key, and comparisons finish the few long ties left with plain bytes.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

PAD = 8
HASH_BYTES = 64          # keys that agree on their first 64 bytes and length share a hash: equality decides
_CACHED_WORDS = HASH_BYTES // 8
_FEW = 64                # below this many unresolved pairs, compare with plain bytes
_LONG_TIE = 32           # ties expected to run this many bytes further: plain bytes compare faster
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_ODD = np.uint64(0x9E3779B97F4A7C15)
# _MASKS[v] keeps the first v bytes of a big-endian word (v = 0..8).
_MASKS = np.array([0] + [((1 << (8 * v)) - 1) << (64 - 8 * v) for v in range(1, 9)], dtype=np.uint64)


def _count(rows, total):
    return len(range(*rows.indices(total))) if isinstance(rows, slice) else len(rows)


class KeyBuffer:
    """Keys as (start, length) ranges of one padded uint8 buffer. Word j (bytes [8j, 8j + 8)) of every
    key is computed once per buffer when a request covers most keys (a column of M uint64), since a bulk
    lookup reads each word several times (checking order, hashing, confirming equality)."""

    def __init__(self, data, starts, lengths):
        self.data = data                                   # uint8, PAD bytes past the last key
        self.starts = np.asarray(starts, np.int64)
        self.lengths = np.asarray(lengths, np.int64)
        self._view = np.ndarray(shape=(max(0, len(data) - 7),), dtype=">u8", buffer=data, strides=(1,))
        self._columns = {}
        self._min_length = None

    def __len__(self):
        return len(self.starts)

    def raw(self, i):
        """Key i as bytes."""
        start = int(self.starts[i])
        return self.data[start:start + int(self.lengths[i])].tobytes()

    def word(self, rows, j):
        """Bytes [8j, 8j + 8) of the keys `rows` (an index array or a slice) as big-endian integers, zero
        past each key's end."""
        column = self._columns.get(j)
        if column is None and j < _CACHED_WORDS and 2 * _count(rows, len(self)) >= len(self):
            column = self._columns[j] = self._gather(slice(None), j)
        return column[rows] if column is not None else self._gather(rows, j)

    def _gather(self, rows, j):
        out = self._view[np.minimum(self.starts[rows] + 8 * j, len(self._view) - 1)].astype(np.uint64)
        if self._shortest() < 8 * (j + 1):          # some key ends before this word does: mask past ends
            out &= _MASKS[np.minimum(np.maximum(self.lengths[rows] - 8 * j, 0), 8)]
        return out

    def _shortest(self):
        if self._min_length is None:
            self._min_length = int(self.lengths.min()) if len(self) else 0
        return self._min_length


def padded(data):
    """A uint8 array of `data` (bytes-like) followed by PAD zero bytes."""
    out = np.zeros(len(data) + PAD, np.uint8)
    out[:len(data)] = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data
    return out


def split_lines(data, size):
    """KeyBuffer of the newline-ended keys in data[:size] (data padded); bytes after the last newline
    are not a key."""
    ends = np.flatnonzero(data[:size] == 10)
    starts = np.empty(len(ends), np.int64)
    if len(ends):
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    return KeyBuffer(data, starts, ends - starts)


def compare(a, rows_a, b, rows_b):
    """Sign (-1, 0, 1; int8) of key a[rows_a[i]] against key b[rows_b[i]] (index arrays) in byte order
    (memcmp, a proper prefix first). Zero padding past a key's end is byte order only because keys hold
    no NUL; where a tie runs to the end of one key, the shorter is a prefix of the longer, which the
    lengths decide, so the answer is byte order whatever the bytes hold."""
    out = np.zeros(len(rows_a), np.int8)
    pending, ra, rb = np.arange(len(rows_a)), rows_a, rows_b
    j = 0
    while len(pending) > _FEW:
        wa, wb = a.word(ra, j), b.word(rb, j)
        out[pending[wa < wb]] = -1
        out[pending[wa > wb]] = 1
        tied = wa == wb
        la, lb = a.lengths[ra], b.lengths[rb]
        ended = tied & ((la <= 8 * (j + 1)) | (lb <= 8 * (j + 1)))
        out[pending[ended]] = np.sign(la[ended] - lb[ended])
        keep = np.flatnonzero(tied & ~ended)
        pending, ra, rb = pending[keep], ra[keep], rb[keep]
        j += 1
        # Keys sharing long prefixes (a hostile table of 250-byte keys alike in all but the last bytes)
        # would take a round per 8 bytes; one memcmp per pair is ~10x cheaper there, and stays linear.
        if len(pending) > _FEW and np.minimum(la[keep], lb[keep]).mean() - 8 * j > _LONG_TIE:
            break
    for i, x, y in zip(pending.tolist(), ra.tolist(), rb.tolist()):
        x, y = a.raw(x), b.raw(y)
        out[i] = (x > y) - (x < y)
    return out


def equal(a, rows_a, b, rows_b):
    """Boolean array: key a[rows_a[i]] == key b[rows_b[i]] (index arrays). Keys of equal length are
    equal when every word is: whole-array rounds over the first HASH_BYTES bytes (no bookkeeping of
    which pairs are still open), then word rounds over the few longer pairs, then plain bytes."""
    lengths = a.lengths[rows_a]
    same = lengths == b.lengths[rows_b]
    longest = int(lengths.max()) if len(rows_a) else 0
    for j in range(-(-min(longest, HASH_BYTES) // 8)):
        same &= a.word(rows_a, j) == b.word(rows_b, j)     # past both ends: 0 == 0
    pending = np.flatnonzero(same & (lengths > HASH_BYTES))
    ra, rb = rows_a[pending], rows_b[pending]
    j = _CACHED_WORDS
    while len(pending) > _FEW:
        differ = a.word(ra, j) != b.word(rb, j)
        same[pending[differ]] = False
        keep = np.flatnonzero(~differ & (a.lengths[ra] > 8 * (j + 1)))
        pending, ra, rb = pending[keep], ra[keep], rb[keep]
        j += 1
    for i, x, y in zip(pending.tolist(), ra.tolist(), rb.tolist()):
        same[i] = a.raw(x) == b.raw(y)
    return same


def ascending(keys):
    """Boolean array: key k sorts strictly after key k - 1 (False for k = 0). Neighbours are compared
    word by word on whole columns (slices, no gathers), pairs still tied after HASH_BYTES bytes by
    compare()."""
    n = len(keys)
    after = np.zeros(n, bool)
    if n < 2:
        return after
    tied = np.ones(n - 1, bool)
    longest = int(keys.lengths.max())
    for j in range(-(-min(longest, HASH_BYTES) // 8)):
        column = keys.word(slice(None), j)
        earlier, later = column[:-1], column[1:]
        after[1:] |= tied & (later > earlier)
        tied &= later == earlier
    # Tied through every word read: equal up to the shorter's end (padding is 0), so the longer is after;
    # keys longer than HASH_BYTES that are still tied need their remaining bytes.
    lengths = keys.lengths
    after[1:] |= tied & (lengths[1:] > lengths[:-1]) & (lengths[:-1] <= HASH_BYTES)
    open_pairs = np.flatnonzero(tied & (lengths[:-1] > HASH_BYTES) & (lengths[1:] > HASH_BYTES)) + 1
    after[open_pairs] = compare(keys, open_pairs - 1, keys, open_pairs) < 0
    return after


def _mix(h):
    """splitmix64's finaliser (wrapping uint64 arithmetic)."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def hashes(keys, salt):
    """uint64 hash of each key's length and first HASH_BYTES bytes: a round per word that holds bytes of
    the key (so the hash of a key never depends on the other keys). The salt is drawn per call, so a
    hostile table cannot be built to collide: collisions only cost extra equality rounds."""
    h = _mix(keys.lengths.astype(np.uint64) ^ np.uint64(salt))
    longest = int(keys.lengths.max()) if len(keys) else 0
    for j in range(-(-min(longest, HASH_BYTES) // 8)):
        holding = keys.lengths > 8 * j
        if 2 * np.count_nonzero(holding) >= len(keys):
            h ^= keys.word(slice(None), j)                       # 0 for keys that end before word j
            np.multiply(h, _ODD, out=h, where=holding)
        else:
            rows = np.flatnonzero(holding)
            h[rows] = (h[rows] ^ keys.word(rows, j)) * _ODD
    return _mix(h)


def _home(hashes_, bits):
    """Home slots: the top `bits` bits of each hash (the best mixed)."""
    return (hashes_ >> np.uint64(64 - bits)).astype(np.int64)


def _insert(packed, bits):
    """An open-addressing table of 2^bits uint64 slots (all ones: empty) holding every packed value
    (linear probing), filled in rounds: each pending value is written to its current slot if that slot is
    empty, one writer per slot wins, and the others move one slot on. A value only moves past occupied
    slots, so a probe from its home slot meets no empty slot before it (the invariant lookups rely on)."""
    slots = np.full(1 << bits, _ALL, np.uint64)
    mask = (1 << bits) - 1
    at = _home(packed, bits)
    slots[at] = packed                              # round 1: every slot is empty
    moving = slots[at] != packed
    pending, at = packed[moving], (at[moving] + 1) & mask
    while len(pending):
        free = np.flatnonzero(slots[at] == _ALL)
        slots[at[free]] = pending[free]
        moving = np.ones(len(pending), bool)
        moving[free] = slots[at[free]] != pending[free]
        pending, at = pending[moving], (at[moving] + 1) & mask
    return slots


def _table_slots(table, salt, bits, high):
    """The open-addressing table of `table`'s keys: each hash's high bits with its row in the low bits."""
    return _insert((hashes(table, salt) & high) | np.arange(len(table), dtype=np.uint64), bits)


def match(table, queries):
    """For each query key, the row of the equal table key, or -1. Table keys must be distinct.

    Each table key's hash, its row in the low bits, goes into an open-addressing table (no sort: about
    one random write per key); each query probes from its home slot until an empty slot (absent) or a
    slot whose hash bits are its own and whose key is equal to it (confirmed word by word). Queries keep
    their order, so only the slots and the table's rows are read at random. The table is built in a
    second thread while the queries are hashed (numpy releases the GIL)."""
    found = np.full(len(queries), -1, np.int64)
    if not len(table) or not len(queries):
        return found
    salt = int(np.random.default_rng().integers(0, 1 << 63))
    bits = max(1, (2 * len(table) - 1).bit_length())          # at most half the slots filled
    row_bits = len(table).bit_length()                         # rows < 2^row_bits - 1: never all ones
    low = np.uint64((1 << row_bits) - 1)
    high = _ALL ^ low
    with ThreadPoolExecutor(max_workers=1) as pool:
        building = pool.submit(_table_slots, table, salt, bits, high)
        query_hashes = hashes(queries, salt) & high
        slots = building.result()
    mask = (1 << bits) - 1
    pending = np.arange(len(queries))
    at = _home(query_hashes, bits)
    while len(pending):
        slot = slots[at]
        occupied = slot != _ALL                                 # an empty slot: the query is absent
        pending, at, slot = pending[occupied], at[occupied], slot[occupied]
        same_hash = np.flatnonzero((slot & high) == query_hashes[pending])
        rows = (slot[same_hash] & low).astype(np.int64)
        hit = equal(table, rows, queries, pending[same_hash])
        found[pending[same_hash[hit]]] = rows[hit]
        going_on = np.ones(len(pending), bool)
        going_on[same_hash[hit]] = False
        pending, at = pending[going_on], (at[going_on] + 1) & mask
    return found
