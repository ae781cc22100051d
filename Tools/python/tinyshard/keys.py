"""The key table `keys.tsk` (FORMAT.md section 5): the dataset's sample keys, stored once.

A sample's id is its key's position; keys are strictly ascending in UTF-8 byte order (Python orders str
by code point, which for valid UTF-8 is the same order as the encoded bytes).

Version 1 (5.1) is one zlib stream, which a reader inflates whole on first use. Version 2 (5.2) cuts the
keys into pages, each its own zlib stream behind a directory holding every page's first key (its fence):
KeyTable maps the file and checks only the head when it opens, the directory and fences before its first
lookup, and a page before it uses any key of it (_keypages). Bulk lookups (`sample_ids`) inflate every
page once and match all keys through a hash table built with numpy (_keyvec), with no Python object per
key.
"""

import operator
import struct
import zlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from . import _zlib
from . import format as F
from ._keypages import (DIRECTORY, HEAD as PAGED_HEAD, MAX_KEYS_PER_PAGE, MAX_PAGE_BYTES, PagedTable)
from ._keyvec import PAD, KeyBuffer, ascending, match, padded, positions, split_lines
from .errors import ShardError
from .files import write_atomically
from .reader import map_file

KEYS_HEAD = struct.Struct("<4sIIIII")      # version 1: magic, version, M, S, D, CRC of stored bytes
DEFAULT_VERSION = 2                        # what revision 1.2 writers write
DEFAULT_KEYS_PER_PAGE = 256                # a page of ImageNet-style keys inflates in microseconds
PAGE_LEVEL = 6                             # zlib level of version-2 pages (any level is valid)
MAX_KEY_BYTES = 65535                      # version 2: keeps a page of 256 keys within 2^25 bytes
MAX_RATIO = 32            # FORMAT.md 5.1: D <= 32 * S + 65536 bounds the work a small file can ask for
RATIO_SLACK = 65536
CHUNK = 1 << 23           # version 1: decoded bytes checked per step, whatever D says


class NotFound(KeyError):
    """A lookup miss: a key, an epoch or a record the dataset does not hold. Not damage (that is a
    ShardError); one line naming the file or folder. `args[0]` is what was looked for."""

    def __init__(self, message, wanted=None):
        super().__init__(wanted)
        self.message = message

    def __str__(self):
        return self.message


# ---- writing ---------------------------------------------------------------------------------------

def _refuse(position, key, why):
    return ShardError("bad-keys", f"key {position} ({key!r}) {why}", record=position)


def _first_key_with(keys, test):
    return next(i for i, key in enumerate(keys) if test(key))


def _cr_or_nul(chunk):
    return (chunk == 13) | (chunk == 0)


def _encode_all(keys):
    """(KeyBuffer of the keys UTF-8 encoded, each followed by a newline, None), or (None, (position, why))
    for the first key that is not a string, holds a newline or has no UTF-8 form (a lone surrogate)."""
    try:
        text = "\n".join(keys)          # a list is joined in place: copying it would touch every key again
    except TypeError:
        return None, (_first_key_with(keys, lambda key: not isinstance(key, str)), "is not a string")
    if keys and text.count("\n") != len(keys) - 1:
        return None, (_first_key_with(keys, lambda key: "\n" in key), "holds a newline")
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return None, (text.count("\n", 0, exc.start), "is not UTF-8 (it holds a lone surrogate)")
    del text
    size = len(encoded) + 1 if keys else 0          # every key followed by a newline
    data = np.zeros(size + PAD, np.uint8)
    data[:len(encoded)] = np.frombuffer(encoded, np.uint8)
    if keys:
        data[size - 1] = 10
    return split_lines(data, size), None


def check_keys(keys):
    """The keys UTF-8 encoded in one KeyBuffer (each followed by a newline) after checking the key rules
    (FORMAT.md 5): raise ShardError('bad-keys') naming the first key that is not a string, holds a
    newline or a lone surrogate, is empty, holds CR or NUL, or does not sort after the key before it."""
    keys = keys if isinstance(keys, list) else list(keys)
    buffer, refused = _encode_all(keys)
    if refused is not None:
        raise _refuse(refused[0], keys[refused[0]], refused[1])
    forbidden = positions(buffer.data, len(buffer.data) - PAD, _cr_or_nul)
    candidates = [(np.flatnonzero(buffer.lengths == 0), "is empty"),
                  (np.searchsorted(buffer.starts, forbidden, side="right") - 1, "holds a CR or NUL"),
                  (np.flatnonzero(~ascending(buffer)[1:]) + 1, "does not sort after the key before it")]
    firsts = [(int(where[0]), why) for where, why in candidates if len(where)]
    if firsts:
        at, why = min(firsts)
        raise _refuse(at, keys[at], why)
    return buffer


def encode_keys(keys, version=DEFAULT_VERSION, keys_per_page=DEFAULT_KEYS_PER_PAGE):
    """The bytes of a key table holding `keys` (str, checked first): version 2 (paged) unless asked for
    version 1, which every revision-1.1 reader reads."""
    buffer = check_keys(keys)
    if version == 1:
        return _encode_flat(buffer)
    if version == 2:
        return _encode_paged(buffer, keys_per_page)
    raise ValueError(f"key table version {version} is neither 1 nor 2")


def _encode_flat(buffer):
    decoded = buffer.data[:len(buffer.data) - PAD].tobytes()
    stored = zlib.compress(decoded, 9)
    if len(decoded) > MAX_RATIO * len(stored) + RATIO_SLACK:
        raise ShardError("bad-keys", f"the keys compress more than {MAX_RATIO}:1, which version-1 "
                         "readers refuse (FORMAT.md 5.1): write version 2")
    return KEYS_HEAD.pack(F.KEYS_MAGIC, 1, len(buffer), len(stored), len(decoded),
                          F.crc32(stored)) + stored


def _encode_paged(buffer, per_page):
    """FORMAT.md 5.2: head, directory, fences, their CRC, then one zlib stream per page."""
    count = len(buffer)
    if not 1 <= per_page <= MAX_KEYS_PER_PAGE:
        raise ValueError(f"keys per page must be in 1-{MAX_KEYS_PER_PAGE}, got {per_page}")
    if count > 0xFFFFFFFF:
        raise ValueError(f"{count} keys: a key table holds at most 2^32 - 1")
    too_long = np.flatnonzero(buffer.lengths > MAX_KEY_BYTES)
    if len(too_long):
        at = int(too_long[0])
        raise ShardError("bad-keys", f"key {at} is {int(buffer.lengths[at])} bytes, above the "
                         f"{MAX_KEY_BYTES} of a version-2 key table", record=at)
    firsts = np.arange(0, count, per_page)
    lasts = np.minimum(firsts + per_page, count) - 1
    begins = buffer.starts[firsts]
    ends = buffer.starts[lasts] + buffer.lengths[lasts] + 1          # each page ends with a newline
    big = np.flatnonzero(ends - begins > MAX_PAGE_BYTES)
    if len(big):
        g = int(big[0])
        raise ShardError("bad-keys", f"page {g} would decode to {int(ends[g] - begins[g])} bytes, above "
                         f"{MAX_PAGE_BYTES}: use fewer keys per page")
    view = memoryview(buffer.data)
    pages = [zlib.compress(view[b:e], PAGE_LEVEL) for b, e in zip(begins.tolist(), ends.tolist())]
    fence_lengths = buffer.lengths[firsts]
    fence_bytes = b"".join(view[b:b + n] for b, n in zip(begins.tolist(), fence_lengths.tolist()))
    if len(fence_bytes) > 0xFFFFFFFF:
        raise ValueError("the fences exceed 2^32 - 1 bytes: use more keys per page")
    directory = np.zeros(len(pages), DIRECTORY)
    stored = np.array([len(page) for page in pages], np.int64)
    body_len = 24 * len(pages) + len(fence_bytes)
    directory["offset"] = 32 + body_len + 4 + np.cumsum(stored) - stored
    directory["stored"] = stored
    directory["decoded"] = ends - begins
    directory["crc"] = [F.crc32(page) for page in pages]
    directory["fence_end"] = np.cumsum(fence_lengths)
    head = F.with_crc(PAGED_HEAD.pack(F.KEYS_MAGIC, 2, count, per_page, len(pages), len(fence_bytes), 0))
    body = F.with_crc(directory.tobytes() + fence_bytes)
    return b"".join([head, body] + pages)


def write_keys(path, keys, version=DEFAULT_VERSION, keys_per_page=DEFAULT_KEYS_PER_PAGE):
    """Write a key table atomically."""
    write_atomically(path, encode_keys(keys, version, keys_per_page))


# ---- version 1 ---------------------------------------------------------------------------------------

def _version(data):
    """Rules 1-2 of FORMAT.md 5, shared by both versions: the version (1 or 2)."""
    head = bytes(data[:4])
    if not head or head != F.KEYS_MAGIC[:len(head)]:
        raise ShardError("bad-magic", "not a TinyShard key table")
    if len(data) < KEYS_HEAD.size:
        raise ShardError("bad-keys", "key table shorter than its 24-byte head")
    version = struct.unpack_from("<I", data, 4)[0]
    if version not in (1, 2):
        raise ShardError("unsupported-version", f"key table version {version} is neither 1 nor 2")
    return version


def _flat_size(data):
    """Version 1, rule 3's first check (O(1), so a reader makes it when it opens): size = 24 + S.
    Returns (M, S, D, CRC)."""
    _, _, count, stored_len, decoded_len, crc = KEYS_HEAD.unpack_from(data)
    if len(data) != KEYS_HEAD.size + stored_len:
        raise ShardError("bad-keys", f"key table is {len(data)} bytes, head says "
                         f"{KEYS_HEAD.size + stored_len}")
    return count, stored_len, decoded_len, crc


def _head(data):
    """(M, stored bytes, D) of a version-1 table after every check of its head, in the spec's order."""
    if _version(data) != 1:
        raise ShardError("unsupported-version", "not a version-1 key table")
    count, stored_len, decoded_len, crc = _flat_size(data)
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
    """Positions i (into starts) where key i does not sort strictly after key i-1, by bytes."""
    keys = KeyBuffer(padded(arr), starts, np.asarray(ends) - np.asarray(starts))
    return np.flatnonzero(~ascending(keys)[1:]) + 1


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
    """Check every rule of a version-1 key table's bytes while inflating CHUNK bytes at a time (memory:
    a chunk and the longest key, whatever the file claims); return M. `on_chunk` sees each decoded
    chunk in order."""
    count, stored, decoded_len = _head(data)
    inflater = _zlib.decompressobj()
    rules = _KeyRules()
    pending, total = bytes(stored), 0
    while True:
        try:
            chunk = inflater.decompress(pending, CHUNK)
        except _zlib.error as exc:
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
    """Every key of a table as one buffer of newline-ended keys and their offsets (D + 4(M + 1) bytes,
    not a Python string per key); key i is decoded when asked for."""

    def __init__(self, data, starts):
        self._data = data                  # uint8 array, PAD bytes past the keys
        self._view = memoryview(data)
        self._starts = starts              # M + 1 offsets: key i is data[s[i]:s[i+1]-1]

    def __len__(self):
        return len(self._starts) - 1

    def raw(self, i):
        return bytes(self._view[int(self._starts[i]):int(self._starts[i + 1]) - 1])

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = operator.index(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.raw(i).decode("utf-8")

    def __eq__(self, other):
        return list(self) == list(other) if isinstance(other, (list, tuple, KeySequence)) else NotImplemented

    def buffer(self):
        """The keys as a KeyBuffer (for bulk matching)."""
        starts = self._starts.astype(np.int64)
        return KeyBuffer(self._data, starts[:-1], np.diff(starts) - 1, terminated=True)

    def find(self, wanted):
        """Position of `wanted` (bytes), or None: a binary search."""
        low, high = 0, len(self)
        while low < high:
            middle = (low + high) // 2
            if self.raw(middle) < wanted:
                low = middle + 1
            else:
                high = middle
        return low if low < len(self) and self.raw(low) == wanted else None

    def index_of(self, key):
        """Position of `key` (str), or None."""
        return self.find(key.encode("utf-8"))


def _sequence(data, key_ends):
    """A KeySequence over `data` whose keys end (at their newline) at `key_ends`; offsets are kept in the
    smallest unsigned type that holds them."""
    total = int(key_ends[-1]) + 1 if len(key_ends) else 0
    starts = np.empty(len(key_ends) + 1, np.uint32 if total < 1 << 32 else np.uint64)
    starts[0] = 0
    starts[1:] = key_ends + 1
    return KeySequence(data, starts)


class _FlatTable:
    """A version-1 table: the head and size at open; everything else, and every key, on first use."""

    def __init__(self, buf):
        self.buf = buf
        self.count = _flat_size(buf)[0]
        self._keys = None

    def keys(self):
        if self._keys is None:
            parts = []
            scan_keys(self.buf, parts.append)
            total = sum(map(len, parts))
            data = np.frombuffer(b"".join(parts + [bytes(PAD)]), np.uint8)
            self._keys = _sequence(data, np.flatnonzero(data[:total] == 10))
        return self._keys

    def prepare(self):
        self.keys()

    def key(self, i):
        return self.keys().raw(i)

    def find(self, key):
        return self.keys().find(key)

    def all_keys(self):
        return self.keys()

    def usable_keys(self):
        return self.keys().buffer(), None

    def problems(self):
        try:
            scan_keys(self.buf)
        except ShardError as error:
            yield error


class _PagedKeys(PagedTable):
    """A version-2 table with the whole-table reads KeyTable needs."""

    def prepare(self):
        self.directory()

    def all_keys(self):
        batch = self.batch()
        problem = batch.first_problem()
        if problem is not None:
            raise problem
        return _sequence(batch.data, batch.keys.starts + batch.keys.lengths)

    def usable_keys(self):
        """(KeyBuffer, sample ids) of every key of every page that passes rule 5 (the others answer no
        lookup: a miss is then resolved by the page its fence names, as a single lookup would)."""
        return self.batch().good_keys()


# A bulk lookup inflates the whole table; below this many keys per key of the table, lookups one by one
# (a page each: ~60 us at 14.2 M keys, measured) cost less than inflating, checking and hashing every key
# (~0.4 us per key of the table).
_BULK_FRACTION = 1 / 128


class KeyTable:
    """A dataset's key table, version 1 or 2, over a read-only map of its bytes (FORMAT.md 5).

    Opening checks the head only (O(1)). `len` is M from the head; `table[i]` is key i; `sample_id(key)`
    and `sample_ids(keys)` map keys to ids. Version 2 checks its directory before the first lookup and
    each page before using a key of it, so a damaged page is an error for exactly the lookups that land
    in it; version 1 is inflated and checked whole on first use. `expected_crc32` (a manifest's) is
    compared with the file's CRC-32 whenever the whole table is read: a dataset open does not read the
    whole file, so this is where a reader meets a key table that differs from its manifest (the
    verifier checks it always)."""

    def __init__(self, data, file=None, expected_crc32=None):
        self.file = file
        self._buf = data
        self._expected_crc32 = expected_crc32
        self._crc_checked = False
        try:
            self.version = _version(data)
            self._table = _FlatTable(data) if self.version == 1 else _PagedKeys(data)
        except ShardError as exc:
            raise exc.located(file=file) from None

    @classmethod
    def open(cls, path, expected_crc32=None):
        """Map the file at `path` and check its head."""
        return cls(map_file(path), file=str(path), expected_crc32=expected_crc32)

    read = open

    @classmethod
    def from_keys(cls, keys, version=DEFAULT_VERSION, keys_per_page=DEFAULT_KEYS_PER_PAGE):
        """A table over the bytes encode_keys writes for `keys`."""
        return cls(np.frombuffer(encode_keys(keys, version, keys_per_page), np.uint8))

    def _located(self, call, *args):
        try:
            return call(*args)
        except ShardError as exc:
            raise exc.located(file=self.file) from None

    def __len__(self):
        return self._table.count

    @property
    def keys_per_page(self):
        """P of a version-2 table, None for version 1."""
        return self._table.per_page if self.version == 2 else None

    def __getitem__(self, sample_id):
        i = operator.index(sample_id)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"sample id {sample_id} outside [0, {len(self)})")
        return self._located(self._table.key, i).decode("utf-8")

    def sample_id(self, key):
        """The id of `key` (str), or None when the table does not hold it. Every lookup needs the
        directory checked (version 1: the whole table), even one for a string no key can equal."""
        if not isinstance(key, str):
            raise TypeError(f"a key is a str, not {type(key).__name__}")
        self._located(self._table.prepare)
        try:
            wanted = key.encode("utf-8")
        except UnicodeEncodeError:               # a lone surrogate: no UTF-8 key can equal it
            return None
        return self._located(self._table.find, wanted)

    def sample_ids(self, keys):
        """int64 ids of many keys (str), in order. The first key that is not in the table (in the order
        given) raises NotFound, or ShardError when the page its lookup lands in is damaged: the same
        answer as asking `sample_id` for each key in turn. Many keys are matched in bulk (the whole table
        inflated once, both sides hashed and sorted), few one by one."""
        keys = keys if isinstance(keys, list) else list(keys)
        if len(keys) < max(256, len(self) * _BULK_FRACTION):
            return self._one_by_one(keys)
        return self._bulk(keys)

    def _not_found(self, key, position):
        return NotFound(f"{self.file or 'key table'}: no sample has the key {key!r} "
                        f"(key {position} of those asked for)", key)

    def _one_by_one(self, keys):
        ids = np.empty(len(keys), np.int64)
        for position, key in enumerate(keys):
            found = self.sample_id(key)
            if found is None:
                raise self._not_found(key, position)
            ids[position] = found
        return ids

    def _bulk(self, keys):
        self._check_crc()
        with ThreadPoolExecutor(max_workers=1) as pool:
            # Every page is inflated and checked in a second thread while the keys are encoded and hashed
            # here (zlib and numpy release the GIL).
            table_side = pool.submit(self._located, self._table.usable_keys)
            queries, refused = _encode_all(keys)
            rows = None
            if refused is None:
                table_keys = Future()
                table_side.add_done_callback(lambda done: table_keys.set_result(done.result()[0])
                                             if done.exception() is None else table_keys.set_exception(done.exception()))
                rows = match(table_keys, queries)
            table, ids = table_side.result()
        if refused is not None:
            # keys[at] is not a string, holds a newline or has no UTF-8 form, so it is no key: the first
            # miss is at or before it. Its own lookup still runs, as one by one.
            at = refused[0]
            if at:
                self._bulk(keys[:at])
            self.sample_id(keys[at])
            raise self._not_found(keys[at], at)
        missing = np.flatnonzero(rows < 0)
        if len(missing):
            at = int(missing[0])
            self.sample_id(keys[at])     # a damaged page this lookup lands in raises, as one by one
            raise self._not_found(keys[at], at)
        return rows if ids is None else ids[rows]

    def all_keys(self):
        """Every key (a KeySequence), checking the whole table; the first problem, pages in order, raises."""
        self._check_crc()
        return self._located(self._table.all_keys)

    @property
    def keys(self):
        """Every key, as all_keys() (kept for callers that iterate `table.keys`)."""
        return self.all_keys()

    def __iter__(self):
        return iter(self.all_keys())

    def check_directory(self):
        """Version 2: check the directory and fences (rule 4) now, once; raises ShardError. (Version 1
        has no directory: its rules are checked on first use.)"""
        if self.version == 2:
            self._located(self._table.directory)

    def problems(self):
        """Every problem of the table in the spec's order (the verifier's view): a head or directory
        problem alone, else each damaged page's first problem, pages in order. Memory: the directory and
        one batch of pages (version 1: one chunk of keys)."""
        return [exc.located(file=self.file) for exc in self._table.problems()]

    def _check_crc(self):
        if self._expected_crc32 is None or self._crc_checked:
            return
        crc = 0
        for start in range(0, len(self._buf), CHUNK):
            crc = _zlib.crc32(self._buf[start:start + CHUNK], crc)
        if f"{crc:08x}" != self._expected_crc32:
            raise ShardError("manifest-mismatch", f"key table CRC-32 is {crc:08x}, the manifest says "
                             f"{self._expected_crc32}", file=self.file)
        self._crc_checked = True


def decode_keys(data):
    """Every key of a key table's bytes (a KeySequence), after checking every rule of section 5."""
    return KeyTable(np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data).all_keys()


def read_keys(path):
    """Every key of the key table at `path`, after checking every rule of section 5."""
    return KeyTable.open(path).all_keys()
