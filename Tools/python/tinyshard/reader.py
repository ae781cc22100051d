"""ShardReader: random access to a complete shard through a read-only memory map.

Opening checks the preamble, header, footer and index (everything needed to locate records).
A block's frame, checksums and sections are checked when it is first needed and its inflated
sections kept in an LRU cache. A record read by ordinal is then decoded and checked alone (a
training loader reads records one at a time in random order, and decoding a whole block for one
record would waste the rest); once a block has served enough single reads that decoding it
whole would have cost less, or when records are iterated, the whole block is decoded, checked
and kept in a second, smaller LRU cache.
"""

import os
from collections import OrderedDict, namedtuple

import numpy as np

from .codec import decode_block, decode_records, record_bytes
from .errors import ShardError
from .layout import parse_layout, read_block, shard_sample_ids

Record = namedtuple("Record", "sample_id aug indices values")
Record.__doc__ = """One record in stored order: sample id (int), augmentation code (bytes),
class indices (int64 array of K), values (float16 array of K)."""

# Decoding a block whole costs about as much as decoding one record alone per this many records
# in it (numpy's fixed cost per call dominates a single record; measured for K = 10), so a block
# is decoded whole after n / 64 single reads.
ROWS_PER_SINGLE_DECODE = 64


class _LRU:
    """A small least-recently-used cache."""

    def __init__(self, capacity):
        self.capacity = max(1, capacity)
        self.items = OrderedDict()

    def get(self, key):
        value = self.items.get(key)
        if value is not None:
            self.items.move_to_end(key)
        return value

    def put(self, key, value):
        self.items[key] = value
        if len(self.items) > self.capacity:
            self.items.popitem(last=False)
        return value


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
    """Read a shard. Raises ShardError with the spec's code: at open for the preamble, header,
    footer and index; on first use of a block for its frame, checksums and sections; when a
    record is read for that record's content; in find() for duplicate sample ids."""

    def __init__(self, path, cache_blocks=8, raw_cache_blocks=64):
        self.path = os.fspath(path)
        self._buf = map_file(self.path)
        try:
            self.layout = parse_layout(self._buf)
        except ShardError as exc:
            raise exc.located(file=self.path) from None
        self.header = self.layout.header
        self._raw = _LRU(raw_cache_blocks)         # b -> [RawBlock, single reads so far]
        self._decoded = _LRU(cache_blocks)         # b -> DecodedBlock
        self._sorted_ids = None                    # lookup table, built by find() on first use

    def __len__(self):
        return self.layout.records

    def close(self):
        self._buf = None
        self._raw.items.clear()
        self._decoded.items.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- blocks -----------------------------------------------------------------------------

    def raw_block(self, b):
        """Block b's inflated sections after checking its frame and checksums (cached)."""
        return self._raw_entry(b)[0]

    def _raw_entry(self, b):
        entry = self._raw.get(b)
        if entry is None:
            try:
                entry = self._raw.put(b, [read_block(self._buf, self.layout, b), 0])
            except ShardError as exc:
                raise exc.located(file=self.path) from None
        return entry

    def _checked_row(self, b, decoded, row):
        """(decoded, row), unless that record breaks a content rule: then its ShardError.
        Only the record asked for is judged, so the answer never depends on which other
        records happened to be decoded with it."""
        for code, bad_row, message in decoded.problems:
            if bad_row == row:
                raise ShardError(code, message, file=self.path, block=b,
                                 record=decoded.first + row)
        return decoded, row

    def _block(self, b):
        """Block b decoded, with the content problems of its records (cached)."""
        decoded = self._decoded.get(b)
        if decoded is None:
            raw = self.raw_block(b)
            decoded = self._decoded.put(
                b, decode_block(self.header, raw.first, raw.n, raw.sections))
        return decoded

    # ---- records ----------------------------------------------------------------------------

    def _locate(self, ordinal):
        ordinal = int(ordinal)
        if not 0 <= ordinal < len(self):
            raise IndexError(f"record {ordinal} outside [0, {len(self)})")
        return divmod(ordinal, self.header.records_per_block)

    def _row(self, b, row):
        """(decoded block, row in it) holding record `row` of block b, decoding that record
        alone until the block has been read often enough to be worth decoding whole."""
        decoded = self._decoded.get(b)
        if decoded is None:
            entry = self._raw_entry(b)
            raw = entry[0]
            entry[1] += 1
            if entry[1] * ROWS_PER_SINGLE_DECODE < raw.n:
                records = record_bytes(self.header, raw.n, raw.sections).take([row])
                single = decode_records(self.header, raw.first + row, records)
                return self._checked_row(b, single, 0)
            decoded = self._block(b)
        return self._checked_row(b, decoded, row)

    def record(self, ordinal):
        """Record `ordinal` (0-based) in stored order; O(1): block ordinal // R."""
        block, row = self._row(*self._locate(ordinal))
        return Record(int(block.ids[row]), block.aug[row].tobytes(), block.indices[row],
                      block.values[row])

    def __iter__(self):
        for b in range(self.layout.blocks):
            decoded = self._block(b)
            for row in range(len(decoded.ids)):
                block, row = self._checked_row(b, decoded, row)
                yield Record(int(block.ids[row]), block.aug[row].tobytes(), block.indices[row],
                             block.values[row])

    def sample_ids(self):
        """All sample ids in ordinal order, from the sample-id sections only (FORMAT.md 1.3: each block's
        frame, payload checksum and sample-id section are checked; its other sections when a record of it
        is read, as the Swift reader does)."""
        try:
            return shard_sample_ids(self._buf, self.layout)
        except ShardError as exc:
            raise exc.located(file=self.path) from None

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

    def _require_probability(self):
        if self.header.value_kind != "probability":
            raise ShardError("not-probability", "dense labels need a probability shard",
                             file=self.path)

    def dense(self, ordinals):
        """float32 [n, C] soft labels of the given ordinals (section 7)."""
        self._require_probability()
        rows = [self.dense_row(i) for i in np.atleast_1d(ordinals)]
        return np.stack(rows) if rows else np.zeros((0, self.header.classes), np.float32)

    def dense_row(self, ordinal):
        """float32 [C] soft label of one record: stored values in place, every other class
        max(0, 1 - sum) / (C - K) computed in float64 and rounded to float32 once."""
        self._require_probability()
        block, row = self._row(*self._locate(ordinal))
        return dense_row(self.header.classes, block.indices[row], block.values[row])


def dense_row(classes, indices, values):
    """Section 7 for one record. The float64 sum of float16 values in [0, 1] is exact (they are
    multiples of 2^-24 and K <= 256), so the summation order cannot change it."""
    k = len(indices)
    residual = 0.0
    if k < classes:
        residual = max(0.0, 1.0 - float(values.sum(dtype=np.float64))) / (classes - k)
    row = np.full(classes, residual, dtype=np.float32)      # one float64 -> float32 rounding
    row[indices] = values
    return row
