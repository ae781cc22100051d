"""ShardReader: random access to a complete shard through a read-only memory map.

Opening checks the preamble, header, footer and index (everything needed to locate records).
A block is checked (frame, checksums, sections, every record's content) the first time one of its
records is read, and kept decoded in a small LRU cache, so that a training loader's random
one-record-at-a-time access costs one block decode per cache miss.
"""

import os
from collections import OrderedDict, namedtuple

import numpy as np

from .codec import decode_block, decode_ids
from .errors import ShardError
from .layout import parse_layout, read_block

Record = namedtuple("Record", "sample_id aug indices values")
Record.__doc__ = """One record in stored order: sample id (int), augmentation code (bytes),
class indices (int64 array of K), values (float16 array of K)."""


def map_file(path):
    """The whole file as a read-only uint8 array (a memmap; an empty array for an empty file,
    which numpy cannot map). Raises ShardError('io')."""
    try:
        if os.path.getsize(path) == 0:
            return np.zeros(0, dtype=np.uint8)
        return np.memmap(path, dtype=np.uint8, mode="r")
    except (OSError, ValueError) as exc:
        raise ShardError("io", f"cannot read file: {exc}", file=os.fspath(path)) from None


class ShardReader:
    """Read a shard. Raises ShardError (with the spec's code) for any rule the file breaks."""

    def __init__(self, path, cache_blocks=8):
        self.path = os.fspath(path)
        self._buf = map_file(self.path)
        try:
            self.layout = parse_layout(self._buf)
        except ShardError as exc:
            raise exc.located(file=self.path) from None
        self.header = self.layout.header
        self._cache = OrderedDict()
        self._cache_blocks = max(1, cache_blocks)
        self._sorted_ids = None          # lookup table, built by find() on first use

    def __len__(self):
        return self.layout.records

    def close(self):
        self._buf = None
        self._cache.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- blocks -----------------------------------------------------------------------------

    def raw_block(self, b):
        """Block b's sections after checking its frame and checksums."""
        try:
            return read_block(self._buf, self.layout, b)
        except ShardError as exc:
            raise exc.located(file=self.path) from None

    def block(self, b):
        """Block b decoded and fully checked (cached)."""
        cached = self._cache.get(b)
        if cached is not None:
            self._cache.move_to_end(b)
            return cached
        decoded = decode_block(self.header, self.raw_block(b))
        if decoded.problems:
            code, row, message = decoded.problems[0]
            raise ShardError(code, message, file=self.path, block=b, record=decoded.first + row)
        self._cache[b] = decoded
        if len(self._cache) > self._cache_blocks:
            self._cache.popitem(last=False)
        return decoded

    # ---- records ----------------------------------------------------------------------------

    def _locate(self, ordinal):
        ordinal = int(ordinal)
        if not 0 <= ordinal < len(self):
            raise IndexError(f"record {ordinal} outside [0, {len(self)})")
        return divmod(ordinal, self.header.records_per_block)

    def record(self, ordinal):
        """Record `ordinal` (0-based) in stored order; O(1): block ordinal // R."""
        b, row = self._locate(ordinal)
        block = self.block(b)
        return Record(int(block.ids[row]), block.aug[row].tobytes(), block.indices[row],
                      block.values[row])

    def __iter__(self):
        for b in range(self.layout.blocks):
            block = self.block(b)
            for row in range(len(block.ids)):
                yield Record(int(block.ids[row]), block.aug[row].tobytes(), block.indices[row],
                             block.values[row])

    def sample_ids(self):
        """All sample ids in ordinal order, from the sample-id sections only (each block's
        checksums are still verified)."""
        if len(self) == 0:
            return np.zeros(0, dtype=np.uint32)
        return np.concatenate([decode_ids(self.raw_block(b)) for b in range(self.layout.blocks)])

    def find(self, sample_id):
        """Ordinal of `sample_id` in this shard, or None. The table (ids sorted, with their
        ordinals) is built on first use; a repeated id raises ShardError('duplicate-sample')."""
        if self._sorted_ids is None:
            self._sorted_ids = self._build_table()
        ids, ordinals = self._sorted_ids
        at = int(np.searchsorted(ids, sample_id))
        if at < len(ids) and ids[at] == sample_id:
            return int(ordinals[at])
        return None

    def _build_table(self):
        ids = self.sample_ids()
        ordinals = np.argsort(ids, kind="stable").astype(np.uint32)
        ids = ids[ordinals]
        repeated = np.flatnonzero(ids[1:] == ids[:-1])
        if len(repeated):
            at = repeated[0] + 1
            raise ShardError("duplicate-sample", f"sample id {ids[at]} appears twice",
                             file=self.path, record=int(ordinals[at]))
        return ids, ordinals

    # ---- dense labels (section 7) -----------------------------------------------------------

    def dense(self, ordinals):
        """float32 [n, C] soft labels: stored values in place, every other class
        max(0, 1 - sum) / (C - K) computed in float64 and rounded to float32 once."""
        if self.header.value_kind != "probability":
            raise ShardError("not-probability", "dense labels need a probability shard",
                             file=self.path)
        records = [self.record(i) for i in np.atleast_1d(ordinals)]
        return dense_rows(self.header.classes,
                          np.array([r.indices for r in records]).reshape(-1, self.header.k),
                          np.array([r.values for r in records]).reshape(-1, self.header.k))


def dense_rows(classes, indices, values):
    """Section 7 for (n, K) indices and float16 values."""
    n, k = indices.shape
    out = np.empty((n, classes), dtype=np.float32)
    if k < classes:
        total = values.astype(np.float64).sum(axis=1)
        out[:] = (np.maximum(0.0, 1.0 - total) / (classes - k)).astype(np.float32)[:, None]
    out[np.arange(n)[:, None], indices] = values.astype(np.float32)
    return out
