"""Vectorised work on many keys held in one byte buffer: byte-order comparison, equality, hashing and
matching a list of keys against a table, with numpy only and no Python object per key.

A key is a byte range of a uint8 buffer that is followed by at least PAD bytes of padding: words are
read 8 bytes at a time from any offset (an unaligned big-endian view) and masked to the key, so a key is
compared or hashed in ⌈length / 8⌉ array operations whatever the keys look like. Work that would grow
with a hostile key's length (a page may hold one key of 32 MiB) is capped: hashing reads at most
HASH_BYTES of a key, and comparisons finish the few long ties left with plain bytes.

Passes over millions of keys go CHUNK keys at a time: every temporary is then a few MiB, which the
allocator reuses and the cache holds, where whole-array temporaries of 100+ MiB would each be mapped,
zeroed by the kernel and unmapped again (measured: half the time of a 14 M-key lookup went there).
"""

import sys
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

PAD = 8
CHUNK = 1 << 19          # keys per step of a pass (8-byte temporaries of 4 MiB)
PROBE = 1 << 16          # queries per step of a probe: the table keys it reads at random stay in cache
SCAN = 1 << 24           # bytes per step of a scan over a buffer
HASH_BYTES = 64          # keys that agree on their first 64 bytes and length share a hash: equality decides
_FEW = 64                # below this many unresolved pairs, compare with plain bytes
_LONG_TIE = 32           # ties expected to run this many bytes further: plain bytes compare faster
_SWAP = sys.byteorder == "little"
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_ODD = np.uint64(0x9E3779B97F4A7C15)
# _MASKS[v] keeps the first v bytes of a big-endian word (v = 0..8).
_MASKS = np.array([0] + [((1 << (8 * v)) - 1) << (64 - 8 * v) for v in range(1, 9)], dtype=np.uint64)
# _NATIVE_MASKS[v] keeps the first v bytes of a word read in the machine's byte order.
_NATIVE_MASKS = _MASKS.byteswap() if _SWAP else _MASKS


def _steps(count, step=CHUNK):
    """Slices [lo, hi) covering range(count) in steps."""
    return (slice(lo, min(count, lo + step)) for lo in range(0, count, step))


class KeyBuffer:
    """Keys as (start, length) ranges of one padded uint8 buffer."""

    def __init__(self, data, starts, lengths, terminated=False):
        self.data = data                                   # uint8, PAD bytes past the last key
        self.starts = np.asarray(starts, np.int64)
        self.lengths = np.asarray(lengths, np.int64)
        # Every key is followed by a newline and holds none (keys split at newlines): equal() then
        # compares a key with its newline, which decides the length too.
        self.terminated = terminated
        # Native byte order: numpy gathers unaligned native words about twice as fast as big-endian ones,
        # and a byteswap of the gathered words (contiguous, vectorised) costs next to nothing.
        self._view = np.ndarray(shape=(max(0, len(data) - 7),), dtype=np.uint64, buffer=data, strides=(1,))

    def __len__(self):
        return len(self.starts)

    def raw(self, i):
        """Key i as bytes."""
        start = int(self.starts[i])
        return self.data[start:start + int(self.lengths[i])].tobytes()

    def word(self, rows, j):
        """Bytes [8j, 8j + 8) of the keys `rows` (an index array or a slice) as big-endian integers, zero
        past each key's end."""
        return self.word_at(self.starts[rows], self.lengths[rows], j)

    def word_at(self, starts, lengths, j):
        """word() of the keys with these starts and lengths (gathered once by callers that read several
        words of the same keys)."""
        out = self._view[np.minimum(starts + 8 * j, len(self._view) - 1)]
        if _SWAP:
            out.byteswap(inplace=True)                             # big-endian value: byte order compares
        if len(lengths) and int(lengths.min()) < 8 * (j + 1):     # a key ends before this word does
            out &= _MASKS[np.clip(lengths - 8 * j, 0, 8)]
        return out


def padded(data):
    """A uint8 array of `data` (bytes-like) followed by PAD zero bytes."""
    out = np.zeros(len(data) + PAD, np.uint8)
    out[:len(data)] = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data
    return out


def positions(data, size, test):
    """Positions in data[:size] of the bytes for which `test` (a function of a uint8 array, giving a
    boolean array) holds, found a step at a time."""
    found = [np.flatnonzero(test(data[part])) + part.start for part in _steps(size, SCAN)]
    return np.concatenate(found) if found else np.zeros(0, np.int64)


def newlines(chunk):
    return chunk == 10


def split_lines(data, size):
    """KeyBuffer of the newline-ended keys in data[:size] (data padded); bytes after the last newline
    are not a key."""
    ends = positions(data, size, newlines)
    starts = np.empty(len(ends), np.int64)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    return KeyBuffer(data, starts, ends - starts, terminated=True)


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
    which pairs are still open), then word rounds over the few longer pairs, then plain bytes. Words are
    compared in native byte order (equality needs no order), masked once to the length of a's key
    (pairs of unequal length are already unequal)."""
    if a.terminated and b.terminated and len(rows_b):
        spans = b.lengths[rows_b] + 1                           # b's keys with their newlines
        if int(spans.max()) <= HASH_BYTES:
            return _equal_terminated(a, a.starts[rows_a], b.starts[rows_b], b, spans)
    starts_a, lengths = a.starts[rows_a], a.lengths[rows_a]
    starts_b = b.starts[rows_b]
    same = lengths == b.lengths[rows_b]
    longest = int(lengths.max()) if len(rows_a) else 0
    shortest = int(lengths.min()) if len(rows_a) else 0
    last_a, last_b = len(a._view) - 1, len(b._view) - 1
    for j in range(-(-min(longest, HASH_BYTES) // 8)):
        differ = a._view[np.minimum(starts_a + 8 * j, last_a)]
        differ ^= b._view[np.minimum(starts_b + 8 * j, last_b)]
        if shortest < 8 * (j + 1):                               # a key ends before this word does
            differ &= _NATIVE_MASKS[np.clip(lengths - 8 * j, 0, 8)]
        same &= differ == 0
    pending = np.flatnonzero(same & (lengths > HASH_BYTES))
    ra, rb = rows_a[pending], rows_b[pending]
    j = HASH_BYTES // 8
    while len(pending) > _FEW:
        differ = a.word(ra, j) != b.word(rb, j)
        same[pending[differ]] = False
        keep = np.flatnonzero(~differ & (a.lengths[ra] > 8 * (j + 1)))
        pending, ra, rb = pending[keep], ra[keep], rb[keep]
        j += 1
    for i, x, y in zip(pending.tolist(), ra.tolist(), rb.tolist()):
        same[i] = a.raw(x) == b.raw(y)
    return same


def _equal_terminated(a, starts_a, starts_b, b, spans):
    """equal() of newline-terminated keys whose newline-ended spans (b's) fit HASH_BYTES: a's key equals
    b's exactly when the bytes of b's key and its newline are a's first bytes (a's key holds no newline,
    so its own newline must be there), with no gather of a's lengths."""
    same = np.ones(len(starts_a), bool)
    shortest = int(spans.min())
    last_a, last_b = len(a._view) - 1, len(b._view) - 1
    for j in range(-(-int(spans.max()) // 8)):
        differ = a._view[np.minimum(starts_a + 8 * j, last_a)]
        differ ^= b._view[np.minimum(starts_b + 8 * j, last_b)]
        if shortest < 8 * (j + 1):                               # a span ends before this word does
            differ &= _NATIVE_MASKS[np.clip(spans - 8 * j, 0, 8)]
        same &= differ == 0
    return same


def ascending(keys):
    """Boolean array: key k sorts strictly after key k - 1 (False for k = 0). Neighbours are compared
    word by word, a chunk of keys at a time; pairs still tied after HASH_BYTES bytes by compare()."""
    n = len(keys)
    after = np.zeros(n, bool)
    lengths = keys.lengths
    for part in _steps(n - 1 if n else 0):
        window = slice(part.start, part.stop + 1)          # keys lo .. hi: the pairs (k, k + 1) of the part
        tied = np.ones(part.stop - part.start, bool)
        found = np.zeros(part.stop - part.start, bool)
        for j in range(-(-min(int(lengths[window].max()), HASH_BYTES) // 8)):
            words = keys.word(window, j)
            earlier, later = words[:-1], words[1:]
            found |= tied & (later > earlier)
            tied &= later == earlier
        after[part.start + 1:part.stop + 1] = found
        # Tied through every word read: equal up to the shorter's end (padding is 0), so the longer is
        # after; keys longer than HASH_BYTES that are still tied need their remaining bytes.
        le, ll = lengths[part], lengths[part.start + 1:part.stop + 1]
        after[part.start + 1:part.stop + 1] |= tied & (ll > le) & (le <= HASH_BYTES)
        open_pairs = np.flatnonzero(tied & (le > HASH_BYTES) & (ll > HASH_BYTES)) + part.start + 1
        after[open_pairs] = compare(keys, open_pairs - 1, keys, open_pairs) < 0
    return after


def _mix(h):
    """splitmix64's finaliser (wrapping uint64 arithmetic), in place."""
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


def hashes(keys, salt):
    """uint64 hash of each key's length and first HASH_BYTES bytes: a round per word that holds bytes of
    the key (so the hash of a key never depends on the other keys). The salt is drawn per call, so a
    hostile table cannot be built to collide: collisions only cost extra equality rounds."""
    out = np.empty(len(keys), np.uint64)
    for part in _steps(len(keys)):
        lengths = keys.lengths[part]
        h = lengths.astype(np.uint64)
        h *= _ODD
        h += np.uint64(salt)             # the final mix spreads the length and the salt over every bit
        for j in range(-(-min(int(lengths.max()), HASH_BYTES) // 8)):
            h ^= keys.word(part, j)                          # 0 for keys that end before word j
            np.multiply(h, _ODD, out=h, where=lengths > 8 * j)
        out[part] = _mix(h)
    return out


def _home(hashes_, bits):
    """Home slots: the top `bits` bits of each hash (the best mixed)."""
    return (hashes_ >> np.uint64(64 - bits)).astype(np.int64)


def _insert(slots, packed, bits):
    """Put the packed values into an open-addressing table of 2^bits uint64 slots (all ones: empty) by
    linear probing, in rounds: each pending value is written to its current slot if that slot is empty,
    one writer per slot wins, and the others move one slot on. A value only moves past occupied slots, so
    a probe from its home slot meets no empty slot before it (the invariant lookups rely on)."""
    mask = (1 << bits) - 1
    pending, at = packed, _home(packed, bits)
    while len(pending):
        free = np.flatnonzero(slots[at] == _ALL)
        slots[at[free]] = pending[free]
        moving = np.ones(len(pending), bool)
        moving[free] = slots[at[free]] != pending[free]
        pending, at = pending[moving], (at[moving] + 1) & mask
    return slots


def _table_slots(table, salt, bits, high, slots=None, table_hashes=None):
    """The open-addressing table of `table`'s keys: each hash's high bits with its row in the low bits
    (into `slots`, all ones, when given; from the keys' hashes `table_hashes` when given)."""
    if slots is None:
        slots = np.full(1 << bits, _ALL, np.uint64)
    for part in _steps(len(table)):
        packed = hashes(_rows(table, part), salt) if table_hashes is None else table_hashes[part]
        packed &= high
        packed |= np.arange(part.start, part.stop, dtype=np.uint64)
        _insert(slots, packed, bits)
    return slots


def _rows(keys, part):
    """The keys of a slice of rows, as a KeyBuffer over the same bytes."""
    return KeyBuffer(keys.data, keys.starts[part], keys.lengths[part], keys.terminated)


def match(table, queries):
    """For each query key, the row of the equal table key, or -1. Table keys must be distinct.

    Each table key's hash, its row in the low bits, goes into an open-addressing table (no sort: about
    one random write per key); each query probes from its home slot until an empty slot (absent) or a
    slot whose hash bits are its own and whose key is equal to it (confirmed word by word). Two threads
    share the work (numpy releases the GIL): the table is built in one while the queries are hashed in
    the other, and each probes half the queries.

    `table` may be a concurrent.futures.Future of the table's KeyBuffer, still being read: the queries
    are hashed meanwhile, then both threads hash half the table. (The slots are sized from the keys
    read, never from a count a file claims.)"""
    found = np.full(len(queries), -1, np.int64)
    if not len(queries):
        if isinstance(table, Future):
            table.result()                        # its errors are the caller's
        return found
    salt = int(np.random.default_rng().integers(0, 1 << 63))
    query_hashes = None
    if isinstance(table, Future):
        query_hashes = hashes(queries, salt)
        table = table.result()
    if not len(table):
        return found
    bits = max(1, (2 * len(table) - 1).bit_length())          # at most half the slots filled
    row_bits = len(table).bit_length()                         # rows < 2^row_bits - 1: never all ones
    low = np.uint64((1 << row_bits) - 1)
    high = _ALL ^ low
    with ThreadPoolExecutor(max_workers=1) as pool:
        if query_hashes is not None:
            half = len(table) // 2
            first = pool.submit(hashes, _rows(table, slice(0, half)), salt)
            slots = np.full(1 << bits, _ALL, np.uint64)
            table_hashes = np.empty(len(table), np.uint64)
            table_hashes[half:] = hashes(_rows(table, slice(half, len(table))), salt)
            table_hashes[:half] = first.result()
            _table_slots(table, salt, bits, high, slots, table_hashes)
        else:
            building = pool.submit(_table_slots, table, salt, bits, high)
            query_hashes = hashes(queries, salt)
            slots = building.result()
        query_hashes &= high

        def probe(part):
            found[part] = _probe(table, slots, bits, low, _rows(queries, part), query_hashes[part])

        # Two threads probe alternate steps (numpy's gathers release the GIL).
        parts = list(_steps(len(queries), PROBE))
        other = pool.submit(lambda: [probe(part) for part in parts[1::2]])
        for part in parts[::2]:
            probe(part)
        other.result()
    return found


def _probe(table, slots, bits, low, queries, query_hashes):
    """The table rows of the queries (-1: absent) by probing the slots from each one's home."""
    found = np.full(len(queries), -1, np.int64)
    high = _ALL ^ low
    mask = (1 << bits) - 1
    pending = np.arange(len(queries))
    at = _home(query_hashes, bits)
    wanted = query_hashes
    while len(pending):
        slot = slots[at]
        occupied = slot != _ALL                                 # an empty slot: the query is absent
        same_hash = np.flatnonzero(((slot & high) == wanted) & occupied)
        rows = (slot[same_hash] & low).astype(np.int64)
        equal_ = equal(table, rows, queries, pending[same_hash])
        found[pending[same_hash[equal_]]] = rows[equal_]
        occupied[same_hash[equal_]] = False
        pending, at = pending[occupied], (at[occupied] + 1) & mask
        wanted = query_hashes[pending]
    return found
