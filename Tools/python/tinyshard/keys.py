"""The key table `keys.tsk` (FORMAT.md section 5): the dataset's sample keys, stored once.

A sample's id is its key's position; keys are strictly ascending in byte order, so lookup by key
is a binary search. (Python compares str by code point, which for valid UTF-8 is the same order
as comparing the encoded bytes.)
"""

import struct
import zlib
from collections.abc import Sequence

import numpy as np

from . import format as F
from .errors import ShardError
from .files import write_atomically

KEYS_HEAD = struct.Struct("<4sIIIII")      # magic, version, M, S, D, CRC of stored bytes
KEYS_VERSION = 1
_FORBIDDEN = ("\n", "\r", "\0")


def check_keys(keys):
    """Raise ShardError('bad-keys') unless keys are non-empty, free of newline/CR/NUL and
    strictly ascending."""
    previous = None
    for position, key in enumerate(keys):
        if not isinstance(key, str) or not key or any(c in key for c in _FORBIDDEN):
            raise ShardError("bad-keys", f"key {position} ({key!r}) is empty, not a string or "
                             "holds a newline, CR or NUL", record=position)
        if previous is not None and not previous < key:
            raise ShardError("bad-keys", f"key {position} ({key!r}) is not above the one "
                             "before it", record=position)
        previous = key


def encode_keys(keys):
    """The bytes of a key table holding `keys` (checked first)."""
    keys = list(keys)
    check_keys(keys)
    decoded = "".join(key + "\n" for key in keys).encode("utf-8")
    stored = zlib.compress(decoded, 9)
    if len(decoded) > MAX_RATIO * len(stored) + RATIO_SLACK:
        raise ShardError("bad-keys", f"the keys compress more than {MAX_RATIO}:1, which readers "
                         "refuse (FORMAT.md 5)")
    return KEYS_HEAD.pack(F.KEYS_MAGIC, KEYS_VERSION, len(keys), len(stored), len(decoded),
                          F.crc32(stored)) + stored


def write_keys(path, keys):
    """Write a key table atomically."""
    write_atomically(path, encode_keys(keys))


MAX_RATIO = 32            # FORMAT.md 5: D <= 32 * S + 65536 bounds the work a small file can ask for
RATIO_SLACK = 65536
CHUNK = 1 << 23           # decoded bytes checked per step: memory stays bounded whatever D says
_FEW = 64                 # below this many unresolved pairs, compare with plain bytes
_LONG_TIE = 32            # ties expected to run this many bytes further: plain bytes compare faster


def _head(data):
    """(M, stored bytes, D) after the checks of the 24-byte head, in the spec's order."""
    head = bytes(data[:4])
    if not head or head != F.KEYS_MAGIC[:len(head)]:
        raise ShardError("bad-magic", "not a TinyShard key table")
    if len(data) < KEYS_HEAD.size:
        raise ShardError("bad-keys", "key table shorter than its 24-byte head")
    _, version, count, stored_len, decoded_len, crc = KEYS_HEAD.unpack_from(data)
    if version != KEYS_VERSION:
        raise ShardError("unsupported-version", f"key table version {version} is not 1")
    if len(data) != KEYS_HEAD.size + stored_len:
        raise ShardError("bad-keys", f"key table is {len(data)} bytes, head says "
                         f"{KEYS_HEAD.size + stored_len}")
    stored = memoryview(data)[KEYS_HEAD.size:]
    if F.crc32(stored) != crc:
        raise ShardError("bad-keys", "key table checksum mismatch")
    if decoded_len > MAX_RATIO * stored_len + RATIO_SLACK:
        raise ShardError("bad-keys", f"decoded length {decoded_len} is more than {MAX_RATIO} x the "
                         f"{stored_len} stored bytes + {RATIO_SLACK}")
    if (count == 0) != (decoded_len == 0):
        raise ShardError("bad-keys", f"{count} keys in {decoded_len} decoded bytes")
    return count, stored, decoded_len


def _descending_pairs(arr, starts, ends):
    """Positions i (into starts) where key i does not sort strictly after key i-1, by bytes. Keys
    hold no NUL, so comparing zero-padded 8-byte big-endian windows is byte order with shorter keys
    first; each round looks 8 bytes further into the pairs still tied (linear in the common prefixes),
    until few pairs are left or the ties look long: those are compared as plain bytes."""
    padded = np.concatenate([arr, np.zeros(8, np.uint8)])
    pending = np.arange(1, len(starts))
    offset = 0
    weights = (np.uint64(1) << (np.uint64(8) * np.arange(7, -1, -1, dtype=np.uint64)))
    bad = []
    while len(pending) > _FEW:
        def window(rows):
            index = starts[rows, None] + offset + np.arange(8)
            inside = index < ends[rows, None]
            return (padded[np.where(inside, index, len(arr))].astype(np.uint64) * weights).sum(axis=1)
        a, b = window(pending - 1), window(pending)
        bad.append(pending[a > b])
        tied = (a == b)
        # Tied through this window: if the later key ends here it is equal to or a prefix of the
        # earlier one (bad); if only the earlier one ends, the later is longer (good); else go on.
        later_ends = ends[pending] - starts[pending] <= offset + 8
        earlier_ends = ends[pending - 1] - starts[pending - 1] <= offset + 8
        bad.append(pending[tied & later_ends])
        pending = pending[tied & ~later_ends & ~earlier_ends]
        offset += 8
        # Keys sharing long prefixes (as ImageNet's n01440764_... do, or a hostile table of 250-byte keys
        # alike in all but the last bytes) would take a round per 8 bytes; one memcmp per pair is ~10x
        # cheaper there, and stays linear in the bytes.
        if len(pending) > _FEW:
            shorter = np.minimum(ends[pending] - starts[pending], ends[pending - 1] - starts[pending - 1])
            if shorter.mean() - offset > _LONG_TIE:
                break
    if len(pending):
        data, first, last = arr.tobytes(), starts.tolist(), ends.tolist()   # lists: no numpy scalar per index
        bad.append(np.array([i for i in pending.tolist()
                             if not data[first[i - 1]:last[i - 1]] < data[first[i]:last[i]]], np.int64))
    out = np.concatenate(bad) if bad else np.zeros(0, np.int64)
    return np.sort(out)


class _KeyRules:
    """FORMAT.md 5's key rules over decoded bytes fed in chunks: each key non-empty, no CR or NUL,
    UTF-8, strictly ascending by bytes, ended by a newline."""

    def __init__(self):
        self.count = 0
        self.previous = None
        self.partial = []

    def feed(self, chunk):
        arr = np.frombuffer(chunk, np.uint8)
        newlines = np.flatnonzero(arr == 10)
        if not len(newlines):
            self.partial.append(chunk)
            return
        if self.partial:
            first = b"".join(self.partial) + chunk[:newlines[0]]
            self.partial = []
            self._keys(np.frombuffer(first + b"\n", np.uint8), np.array([len(first)]))
            self._keys(arr[newlines[0] + 1:newlines[-1] + 1], newlines[1:] - newlines[0] - 1)
        else:
            self._keys(arr[:newlines[-1] + 1], newlines)
        if newlines[-1] + 1 < len(chunk):
            self.partial.append(chunk[newlines[-1] + 1:])

    def _keys(self, arr, ends):
        """Complete keys: `arr` holds them, each followed by a newline at `ends`."""
        if not len(ends):
            return
        starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
        ends = ends.astype(np.int64)
        base = self.count
        empty = np.flatnonzero(ends == starts)
        forbidden = np.flatnonzero((arr == 13) | (arr == 0))
        if len(empty) or len(forbidden):
            at = min([int(empty[0])] if len(empty) else [] +
                     ([int(np.searchsorted(ends, forbidden[0]))] if len(forbidden) else []))
            raise ShardError("bad-keys", f"key {base + at} is empty or holds a CR or NUL byte",
                             record=base + at)
        try:
            arr.tobytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            at = int(np.searchsorted(ends, exc.start))
            raise ShardError("bad-keys", f"key {base + at} is not valid UTF-8", record=base + at) from None
        if self.previous is not None and not self.previous < arr[starts[0]:ends[0]].tobytes():
            raise ShardError("bad-keys", f"key {base} does not sort after key {base - 1}", record=base)
        descending = _descending_pairs(arr, starts, ends)
        if len(descending):
            at = base + int(descending[0])
            raise ShardError("bad-keys", f"key {at} does not sort after key {at - 1}", record=at)
        self.previous = arr[starts[-1]:ends[-1]].tobytes()
        self.count += len(ends)

    def finish(self):
        if self.partial:
            raise ShardError("bad-keys", "the last key lacks its newline")


def scan_keys(data, on_chunk=None):
    """Check every rule of a key table's bytes while inflating CHUNK bytes at a time (memory: a
    chunk and the longest key, whatever the file claims); return M. `on_chunk` sees each decoded
    chunk in order."""
    count, stored, decoded_len = _head(data)
    inflater = zlib.decompressobj()
    rules = _KeyRules()
    pending, total = bytes(stored), 0
    while True:
        try:
            chunk = inflater.decompress(pending, CHUNK)
        except zlib.error as exc:
            raise ShardError("bad-keys", f"key table zlib stream is invalid: {exc}") from None
        pending = inflater.unconsumed_tail
        total += len(chunk)
        if total > decoded_len:
            raise ShardError("bad-keys", "key table inflates to more than D bytes")
        if chunk:
            if on_chunk is not None:
                on_chunk(chunk)
            rules.feed(chunk)
        if inflater.eof or (not chunk and not pending):
            break
    if total != decoded_len or not inflater.eof or inflater.unused_data:
        raise ShardError("bad-keys", "key table does not inflate to exactly D bytes using exactly S bytes")
    rules.finish()
    if rules.count != count:
        raise ShardError("bad-keys", f"key table holds {rules.count} keys, head says {count}")
    return count


class KeySequence(Sequence):
    """The keys of a table held as one bytes blob and 32-bit offsets (D + 4(M+1) bytes of memory,
    not a Python string per key); key i is decoded when asked for."""

    def __init__(self, blob, starts):
        self._blob = blob
        self._starts = starts            # uint32, M + 1 entries: key i is blob[s[i]:s[i+1]-1]

    def __len__(self):
        return len(self._starts) - 1

    def raw(self, i):
        return self._blob[int(self._starts[i]):int(self._starts[i + 1]) - 1]

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.raw(i).decode("utf-8")

    def __eq__(self, other):
        return list(self) == list(other) if isinstance(other, (list, tuple, KeySequence)) else NotImplemented

    def index_of(self, key):
        """Position of `key` (str), or None: a binary search on the UTF-8 bytes."""
        wanted = key.encode("utf-8")
        low, high = 0, len(self)
        while low < high:
            middle = (low + high) // 2
            if self.raw(middle) < wanted:
                low = middle + 1
            else:
                high = middle
        return low if low < len(self) and self.raw(low) == wanted else None


def decode_keys(data):
    """Parse a key table's bytes, checking every rule of section 5, into a KeySequence."""
    parts = []
    scan_keys(data, parts.append)
    blob = b"".join(parts)
    newlines = np.flatnonzero(np.frombuffer(blob, np.uint8) == 10)
    starts = np.concatenate([[0], newlines + 1]).astype(np.uint32)
    return KeySequence(blob, starts)


def read_keys(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ShardError("io", f"cannot read key table: {exc}", file=str(path)) from None
    try:
        return decode_keys(data)
    except ShardError as exc:
        raise exc.located(file=str(path)) from None


class KeyTable:
    """Keys of a dataset with key -> sample id by binary search (on the UTF-8 bytes)."""

    def __init__(self, keys):
        self.keys = keys if isinstance(keys, KeySequence) else decode_keys(encode_keys(keys))

    @classmethod
    def read(cls, path):
        return cls(read_keys(path))

    def __len__(self):
        return len(self.keys)

    def __getitem__(self, sample_id):
        return self.keys[sample_id]

    def sample_id(self, key):
        """The id of `key`, or None when the dataset does not hold it."""
        return self.keys.index_of(key)
