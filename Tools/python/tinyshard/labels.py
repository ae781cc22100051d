"""SoftLabels: a training loop's targets by (epoch, sample), dense or sparse, a batch at a time; and
RecordOrderReader: the same targets served in record order (Spec/RECORD-ORDER.md), the fast order.

A student needs, for each sample of a batch, the record of its (epoch, sample id): the augmentation code
to replay and the soft label. Both answer a whole batch with a few numpy operations. A block met for the
first time is checked whole before anything is returned from it (frame, both CRCs, all five sections
inflated, the payload filled exactly: FORMAT.md 1.4); then

- in record order (RecordOrderReader, `at`), where every record of a block is read soon, the block is
  decoded whole into a slot of the slab (_Slab: fixed-size block slots, R rows each, a few blocks per
  numpy call);
- for random requests by sample id (_RandomRows), where one or two records of a block are read while it is
  cached, the block's five inflated sections are only copied, laid end to end, into a byte slot; the rows a
  request asks for that are not decoded yet are gathered from their slots (one numpy take, whichever
  blocks they come from) and decoded in one vectorised call into a small ring of decoded rows (indices
  int32, values float16, the section-7 residual float32, sample id, augmentation code, a bad-record flag),
  where later requests for them (sparse after dense, codes then dense) find them. Byte slots cost half a
  decoded slot, so the same budget (cache_bytes) keeps twice the blocks.

A request is then one fancy index into decoded rows; the dense batch is one fill with each row's residual
and one scatter of the K stored values. The slab's slots are reused least recently used first, the byte
slots and ring rows first in, first out (never one the request itself uses).

SoftLabels finds records by sample id through the epoch's table sample id -> (shard, ordinal) (Dataset's
epoch table: lowest rank wins for samples that several ranks hold). RecordOrderReader addresses records by
(shard rank, ordinal), as the record-order sampler lists them, decodes each block whole once, a few blocks
per numpy call, and never builds the sample table.

The residual of each record is section 7's: max(0, 1 - sum(v)) / (C - K), the sum of the float16
values in float64, rounded to float32 once, so dense rows are bit-equal to the Swift reader's. With
`k` (FORMAT.md 7, "The top k of a record") only the first k entries of each record are used, everywhere
(dense rows, sparse columns, records, record order): the residual is then max(0, 1 - sum_{j<k} v_j) / (C - k),
and a dense row is bit for bit what a pass stored with K = k gives. With `rank`, a sample that several
shards of an epoch hold is read from the shard FORMAT.md 2's lookup rule names for that reading rank.

Process-safe for DataLoader workers: the files are mapped lazily in each process (a pickled or forked
SoftLabels maps its own), and the current epoch lives in shared memory, so `set_epoch` in the main
process reaches workers that were started before (persistent workers).
"""

import multiprocessing
import os

import numpy as np

from . import _process

from . import format as F
from ._blocks import BlockReader, inflate_groups, read_groups
from .codec import RecordBytes, decode_records, record_bytes_width
from .dataset import Dataset, _reading_rank
from .errors import ShardError
from .keys import NotFound
from .layout import as_view
from .record_order import record_order

DEFAULT_CACHE_BYTES = 256 << 20


class LabelError(LookupError):
    """A request a dataset cannot answer: a sample without a record in an epoch (`missing-sample`), an
    epoch the dataset does not hold (`missing-epoch`), a class count other than the model's
    (`class-mismatch`), a logit shard asked for probabilities (`not-probability`), a top k the shards
    cannot give (`bad-k`: outside 1..K, or below K of an unsorted shard). One line naming the dataset
    folder or file."""

    def __init__(self, code, message, file=None):
        self.code, self.message, self.file = code, message, file
        super().__init__(f"{file}: [{code}] {message}" if file else f"[{code}] {message}")


def _epoch_entries(dataset, epoch):
    """The manifest entries of a stored epoch, ascending rank (the one place this module asks for them)."""
    return dataset._entries(epoch)


def _epoch_table(dataset, epoch, rank=None):
    """(entries, shard_of, ordinal_of) of a stored epoch for a reading rank (FORMAT.md 2): sample id ->
    (shard position, ordinal) (the one place this module asks Dataset for its sample table)."""
    return dataset.epoch_table(epoch, rank)


def pass_epochs(folder):
    """The epochs a teacher pass in `folder` was asked for (pass.json, Spec/PASS.md 2), or None when the
    folder holds no pass record or one this cannot read (the error it would explain is raised anyway)."""
    try:
        with open(os.path.join(folder, "pass.json"), "rb") as f:
            record = F.parse_json_object(f.read(1 << 20))
    except (OSError, ShardError):
        return None
    epochs = record.get("epochs")
    if record.get("format") != "tinyshard-teacher-pass" or not F.is_int(epochs) or epochs < 1:
        return None
    return int(epochs)


def missing_epoch(folder, epoch, held):
    """LabelError('missing-epoch') naming the epochs the manifest lists and, in a teacher pass folder, how
    many the pass was asked for: the epochs after those held may still be being written (PASS.md 6)."""
    message = (f"the dataset has no epoch {epoch} (it holds {len(held)}: "
               f"{', '.join(map(str, held)) or 'none'})")
    asked = pass_epochs(folder)
    if asked is not None:
        message += f"; its teacher pass (pass.json) is asked for {asked} epoch{'s' if asked != 1 else ''}"
        if asked > len(held):
            message += f" and has committed {len(held)} so far: the others are still being written"
    return LabelError("missing-epoch", message, file=folder)


class _EpochView:
    """One epoch's shards and their global block numbering; the sample table (for a reading rank) on
    first use. Reading only the first k < K entries of records needs sorted shards: refused here, naming
    the first unsorted one."""

    def __init__(self, dataset, epoch, k=None, rank=None):
        self.dataset = dataset
        self.epoch = epoch
        self.rank = rank
        self.entries = _epoch_entries(dataset, epoch)
        self.readers = [dataset.reader(entry) for entry in self.entries]
        if k is not None and k < dataset.k:
            unsorted = next((r for r in self.readers if not r.header.sorted), None)
            if unsorted is not None:
                raise LabelError("bad-k", f"k = {k} < K = {dataset.k} reads the top k of each record, but "
                                 f"{os.path.basename(unsorted.path)} (epoch {epoch}) is not sorted: its first "
                                 "entries are not its top", file=dataset.folder)
        self.position_of_rank = {entry.rank: p for p, entry in enumerate(self.entries)}
        self.records_of_shard = np.array([len(r) for r in self.readers], np.int64)
        self.per_block = np.array([r.header.records_per_block for r in self.readers], np.int64)
        blocks = np.array([r.layout.blocks for r in self.readers], np.int64)
        self.block_base = np.concatenate([[0], np.cumsum(blocks)[:-1]]).astype(np.int64)
        self.block_count = int(blocks.sum())
        self.block_shard = np.repeat(np.arange(len(self.readers)), blocks)
        # Per global block: its number in its shard and its record count (R, the last block the rest).
        self.block_in_shard = np.arange(self.block_count, dtype=np.int64) - np.repeat(self.block_base, blocks)
        self.block_records = np.minimum(self.per_block[self.block_shard], self.records_of_shard[self.block_shard]
                                        - self.block_in_shard * self.per_block[self.block_shard])
        widths = {r.header.aug_bytes for r in self.readers}
        if len(widths) > 1:
            raise LabelError("mixed-augmentation", f"the shards of epoch {epoch} carry augmentation "
                             f"codes of different sizes ({sorted(widths)} bytes)", file=dataset.folder)
        self.aug_bytes = widths.pop() if widths else 0
        self._table = None
        self._views = None
        self._block_readers = {}

    def block_reader(self, shard):
        """The _blocks.BlockReader of the shard at this position (this process's map, its index arrays)."""
        found = self._block_readers.get(shard)
        if found is None:
            found = self._block_readers[shard] = BlockReader(self.readers[shard])
        return found

    def views(self):
        """Each shard's bytes as a memoryview (this process's maps; slices cost ~10x less than memmap ones)."""
        if self._views is None:
            self._views = [as_view(r._buf) for r in self.readers]
        return self._views

    def table(self):
        """(shard_of, ordinal_of): sample id -> (shard position, ordinal)."""
        if self._table is None:
            try:
                entries, shard_of, ordinal_of = _epoch_table(self.dataset, self.epoch, self.rank)
            except ShardError as exc:
                # A damaged block met while reading the epoch's sample ids: name its first record.
                if exc.block is not None and exc.record is None and exc.file is not None:
                    reader = next((r for r in self.readers if r.path == exc.file), None)
                    if reader is not None:
                        raise exc.located(record=exc.block * reader.header.records_per_block) from None
                raise
            assert [e.file for e in entries] == [e.file for e in self.entries]
            self._table = (shard_of, ordinal_of)
        return self._table


class _Targets:
    """What _Slab and _RandomRows share: decoded rows (ids, indices, values, residual, aug, bad) that a
    request indexes, and the checks run on them before anything is returned. `k`: the entries of each
    record kept (the first k of the stored K; the records are still decoded and checked whole)."""

    def _setup_kinds(self, view, classes, k):
        self.view, self.classes, self.k = view, classes, k
        self.header = view.readers[0].header if view.readers else None
        # Shards decode alike unless these header fields differ (C, K and A are the epoch's).
        kinds = [(h.value_kind, h.sorted, h.augmentation_kind, h.output_size)
                 for h in (r.header for r in view.readers)]
        self.kind_of_shard = np.array([kinds.index(kind) for kind in kinds], dtype=np.int64)
        self.rows_per_slot = int(view.per_block.max()) if len(view.per_block) else 1

    def _allocate_rows(self, rows):
        k = self.k
        self.ids = np.zeros(rows, dtype=np.uint32)
        self.indices = np.zeros((rows, k), dtype=np.int32)
        self.values = np.zeros((rows, k), dtype=np.float16)
        self.residual = np.zeros(rows, dtype=np.float32)
        self.aug = np.zeros((rows, self.view.aug_bytes), dtype=np.uint8)
        self.bad = np.zeros(rows, dtype=bool)

    def _put(self, rows, header, records):
        """Decode `records` and store them at rows `rows`: an index array, or a list of slices (whole
        blocks, stored slice by slice: faster than scattering their rows)."""
        decoded = decode_records(header, 0, records)
        bad = np.zeros(len(records), dtype=bool)
        bad[[row for _, row, _ in decoded.problems]] = True
        k = self.k
        columns = ((self.ids, decoded.ids), (self.indices, decoded.indices[:, :k]), (self.values, decoded.values[:, :k]),
                   (self.aug, decoded.aug), (self.bad, bad),
                   (self.residual, self._residuals(header, decoded)))
        if isinstance(rows, list):
            at = 0
            for part in rows:
                count = part.stop - part.start
                for target, source in columns:
                    target[part] = source[at:at + count]
                at += count
        else:
            for target, source in columns:
                target[rows] = source

    def _residuals(self, header, decoded):
        """Section 7's residual of each record over its first k entries: max(0, 1 - sum) / (C - k), the sum
        of those float16 values in float64, rounded to float32 once. The sum is exact in any order (values
        in [0, 1] are multiples of 2^-24, k <= 256 of them stay below 2^9: 33 bits), so numpy's pairwise
        order gives the stored order's sum."""
        k = self.k
        if header.value_kind != "probability" or k >= self.classes:
            return np.zeros(len(decoded.values), dtype=np.float32)
        sums = decoded.sums if k == header.k else decoded.values[:, :k].sum(axis=1, dtype=np.float64)
        return (np.maximum(0.0, 1.0 - sums) / (self.classes - k)).astype(np.float32)

    def check(self, rows, shard_position, ordinal):
        """Raise the ShardError of the first requested record that breaks a content rule, then of the first
        whose sample id is not below the key count (FORMAT.md 1.4, rules 5 and 6)."""
        if self.bad[rows].any():
            at = int(np.argmax(self.bad[rows]))
            reader = self.view.readers[int(shard_position[at])]
            reader.record(int(ordinal[at]))            # raises the record's ShardError
            raise ShardError("bad-value", "record breaks a content rule", file=reader.path,
                             record=int(ordinal[at]))
        keys = self.view.dataset.manifest.key_count
        if len(rows) and int(self.ids[rows].max()) >= keys:
            at = int(np.argmax(self.ids[rows] >= keys))
            reader = self.view.readers[int(shard_position[at])]
            raise ShardError("manifest-mismatch", f"sample id {int(self.ids[rows][at])} >= key count {keys}",
                             file=reader.path, block=int(ordinal[at]) // reader.header.records_per_block,
                             record=int(ordinal[at]))

    def require_probability(self, shard_positions):
        logit_file = self.logit_file(shard_positions)
        if logit_file is not None:
            raise ShardError("not-probability", "dense labels need a probability shard", file=logit_file)

    def logit_file(self, shard_positions):
        """The path of the first of these shards that holds logits, or None."""
        for s in np.unique(shard_positions).tolist():
            reader = self.view.readers[s]
            if reader.header.value_kind != "probability":
                return reader.path
        return None


class _Slab(_Targets):
    """Fixed-size block slots of one epoch, each holding a block decoded whole (record order, `at`): see the
    module docstring. Random requests by sample id go to its _RandomRows (`random()`), which shares its
    memory budget."""

    def __init__(self, view, classes, k, slots):
        self._setup_kinds(view, classes, k)
        self.slots = slots
        self._allocate_rows(slots * self.rows_per_slot)
        self.slot_of = np.full(view.block_count, -1, dtype=np.int64)
        self.block_in = np.full(slots, -1, dtype=np.int64)
        self.last_use = np.zeros(slots, dtype=np.int64)
        self.tick = 0
        self._random = None

    @staticmethod
    def row_bytes(header, k, aug_bytes):
        """The budget unit of a slab row: record bytes (what a _RandomRows byte slot holds per record) plus a
        decoded row (id, indices int32, values float16, residual, code) and two flags (what a _Slab row
        holds)."""
        width = record_bytes_width(header) if header else 0
        return width + 4 + 6 * k + 4 + aug_bytes + 2

    def random(self):
        """The _RandomRows of this epoch, within the budget this slab was sized for (its memory is touched
        only by the requests that use it: a reader uses one of the two)."""
        if self._random is None:
            budget = self.slots * self.rows_per_slot * _Slab.row_bytes(self.header, self.k, self.view.aug_bytes)
            self._random = _RandomRows(self.view, self.classes, self.k, budget, self.slots)
        return self._random

    def rows(self, blocks, in_block, whole=False, last_use=None):
        """Slab rows of the records (global block, row in block), loading the missing blocks and decoding
        them whole. A damaged block's error names the first record asked of it: the first of `blocks` in it,
        or with `whole` (every record of the block is asked for) the block's first record. Slots are reused
        in ascending order of their blocks' last use: a request's tick, or `last_use(blocks)` when the
        caller knows when each block is last needed."""
        distinct = np.unique(blocks)
        if len(distinct) > self.slots:
            raise ValueError(f"a request spans {len(distinct)} blocks; the slab holds {self.slots}")
        missing = distinct[self.slot_of[distinct] < 0]
        if len(missing):
            self._load(blocks, in_block, distinct, missing, whole)
        self.tick += 1
        self.last_use[self.slot_of[distinct]] = self.tick if last_use is None else last_use(distinct)
        return self.slot_of[blocks] * self.rows_per_slot + in_block

    def _load(self, blocks, in_block, distinct, missing, whole):
        """Check, inflate and decode the missing blocks into free or least recently used slots (never one
        the request itself uses), the blocks of all shards read together (_blocks.read_groups: the per-block
        checks vectorised) and all blocks of a kind in one decoding call. The blocks before a damaged one
        (in block order) are loaded; the damaged one raises, naming its first record asked for."""
        in_use = np.zeros(self.slots, dtype=bool)
        present = self.slot_of[distinct]
        in_use[present[present >= 0]] = True
        free = np.flatnonzero(~in_use)
        victims = free[np.argsort(self.last_use[free], kind="stable")[:len(missing)]]
        old = self.block_in[victims]
        self.slot_of[old[old >= 0]] = -1
        self.block_in[victims] = -1
        view = self.view
        shards = view.block_shard[missing]
        pending, error = [], None
        order = [(shard, np.flatnonzero(shards == shard)) for shard in np.unique(shards).tolist()]
        groups = [(view.block_reader(shard), missing[chosen] - int(view.block_base[shard])) for shard, chosen in order]
        for (shard, chosen), (_, local), (records, done, error) in zip(order, groups, read_groups(groups)):
            if done:
                loaded, slots = missing[chosen[:done]], victims[chosen[:done]]
                counts = view.block_records[loaded]
                pending.append((self.kind_of_shard[shard], np.repeat(slots * self.rows_per_slot, counts)
                                + _ramp(counts), records))
                self.slot_of[loaded] = slots
                self.block_in[slots] = loaded
            if error is not None:
                offset = 0 if whole else int(in_block[np.argmax(blocks == missing[chosen[done]])])
                error = _located_in_block(error, view.readers[shard], int(local[done]), offset)
                break
        kinds = [kind for kind, _, _ in pending]
        for kind in sorted(set(kinds)):           # the blocks read before a damaged one stay usable
            alike = [p for p, k in zip(pending, kinds) if k == kind]
            records = alike[0][2] if len(alike) == 1 else RecordBytes.concatenate([r for _, _, r in alike])
            self._put(np.concatenate([rows for _, rows, _ in alike]), view.readers[kind].header, records)
        if error is not None:
            raise error


def _located_in_block(error, reader, block, offset):
    """A damaged block's error, naming the shard file, the block and the asked record (`offset` into the
    block): what both request paths raise for the first damaged block of a grouped read."""
    return error.located(file=reader.path, block=block, record=block * reader.header.records_per_block + offset)


def _row_columns(header):
    """(a, b, c), int64 arrays of the record width W: byte j of the encoded record at row r of a block of n
    records sits at a[j] * n + b[j] * r + c[j] in the block's five decoded sections laid end to end (ids,
    augmentation, values, indices, order: FORMAT.md 3), the bytes taken in the order codec.RecordBytes
    lists its parts (id planes, code, t_0 planes, t_1.. planes, gap planes, order number)."""
    k, aug, width, length = header.k, header.aug_bytes, header.index_width, header.order_bytes
    a, b, c = [], [], []

    def part(count, at_n, per_row, offset=0):
        a.extend([at_n] * count)
        b.extend([per_row] * count)
        c.extend(range(offset, offset + count))

    for plane in range(4):                                   # ids: 4 planes of n bytes
        part(1, plane, 1)
    part(aug, 4, aug)                                        # codes: n x A
    for plane in range(2):                                   # t_0: 2 planes of n
        part(1, 4 + aug + plane, 1)
    for plane in range(2):                                   # t_1..: 2 planes of n (K - 1)
        part(k - 1, 4 + aug + 2 + plane * (k - 1), k - 1)
    for plane in range(width):                               # gaps: w planes of n K
        part(k, 4 + aug + 2 * k + plane * k, k)
    part(length, 4 + aug + 2 * k + width * k, length)        # order numbers: n x L
    return tuple(np.array(x, dtype=np.int64) for x in (a, b, c))


def _record_bytes_of_rows(header, matrix):
    """codec.RecordBytes (views, no copy) of an (m, W) uint8 matrix of whole encoded records, columns as
    _row_columns orders them."""
    m = len(matrix)
    k, aug, width, length = header.k, header.aug_bytes, header.index_width, header.order_bytes
    at = [0, 4, 4 + aug, 6 + aug, 4 + aug + 2 * k, 4 + aug + 2 * k + width * k, 4 + aug + 2 * k + width * k + length]
    part = [matrix[:, at[i]:at[i + 1]] for i in range(6)]
    return RecordBytes(ids=part[0].T, aug=part[1], first=part[2].T,
                       rest=part[3].reshape(m, 2, k - 1).transpose(1, 0, 2),
                       gaps=part[4].reshape(m, width, k).transpose(1, 0, 2), order=part[5])


class _RandomRows(_Targets):
    """Random requests by sample id: a bounded cache of checked blocks' inflated bytes, and a small ring of
    decoded rows that requests index.

    - A block met for the first time is checked whole as FORMAT.md 1.4 demands (frame, both CRCs, all five
      sections inflated, the payload filled exactly: _blocks.inflate_groups, a request's missing blocks
      together), and its five decoded sections
      are copied, laid end to end, into a byte slot (slots reused first in, first out). Nothing of the block
      is decoded or copied row by row at this point.
    - The rows a request asks for that are not in the ring are gathered from their slots' bytes (one numpy
      take over all their blocks, through per-column affine offsets: _row_columns) and decoded in one
      vectorised call per kind of shard (records are judged one by one, as the reader judges them), into the
      oldest ring rows, where later requests (sparse after dense, codes then dense) find them.

    A byte slot costs the block's decoded sections, R x the record width (474 bytes at K = 100, C = 21,841
    with seed codes: 61 KB at R = 128), against 1,088 bytes a row of the budget unit (_Slab.row_bytes): the
    same cache_bytes holds 2.3x the blocks the earlier slab of record bytes and decoded rows held."""

    RING_ROWS = 4096            # decoded rows kept (~2.5 MB at K = 100), at least twice the largest request

    def __init__(self, view, classes, k, budget, min_slots):
        self._setup_kinds(view, classes, k)
        header = self.header
        self.stride = record_bytes_width(header) * self.rows_per_slot if header else 0
        ring_row_bytes = 4 + 6 * k + 4 + view.aug_bytes + 1 + 16
        ring = min(self.RING_ROWS, max(256, budget // 8 // ring_row_bytes))
        self.slots = int(min(view.block_count, max(min_slots, (budget - ring * ring_row_bytes) // max(self.stride, 1), 1)))
        self.block_bytes = np.zeros((self.slots, self.stride), dtype=np.uint8)
        self.slot_of = np.full(view.block_count, -1, dtype=np.int64)
        self.block_in = np.full(self.slots, -1, dtype=np.int64)
        self.last_use = np.zeros(self.slots, dtype=np.int64)
        self.cursor = 0                                        # the next byte slot to fill
        self.ring_of = np.full(self.slots * self.rows_per_slot, -1, dtype=np.int64)   # slot row -> ring row
        self.columns = _row_columns(header) if header else None
        # Byte offsets of row 0 of a block of rows_per_slot records (blocks of fewer records: _decode).
        self._full_block = self.columns[0] * self.rows_per_slot + self.columns[2] if header else None
        self.tick = 0
        self._ring(ring)

    def _ring(self, rows):
        """(Re)allocate the ring of decoded rows (dropping what it held)."""
        self.ring_rows = int(rows)
        self._allocate_rows(self.ring_rows)
        self.owner = np.full(self.ring_rows, -1, dtype=np.int64)    # ring row -> slot row
        self.ring_use = np.zeros(self.ring_rows, dtype=np.int64)   # the last request that used a row
        self.ring_cursor = 0
        self.ring_of[:] = -1

    def rows(self, blocks, in_block):
        """Ring rows of the records (global block, row in block), loading and decoding what is missing. A
        damaged block's error names the first record asked of it."""
        distinct = np.unique(blocks)
        if len(distinct) > self.slots:
            raise ValueError(f"a request spans {len(distinct)} blocks; the cache holds {self.slots}")
        if 2 * len(blocks) > self.ring_rows:
            self._ring(2 * len(blocks))
        self.tick += 1
        slots = self.slot_of[distinct]
        present = slots[slots >= 0]
        self.last_use[present] = self.tick                  # never a victim of this request's loads
        self._in_use = len(present)
        missing = distinct[slots < 0]
        if len(missing):
            self._load(blocks, in_block, missing)
        keys = self.slot_of[blocks] * self.rows_per_slot + in_block
        found = self.ring_of[keys]
        hit = found >= 0
        if not hit.all():
            held = np.unique(found[hit])
            self.ring_use[held] = self.tick
            todo = np.unique(keys[~hit])
            # Ring rows in turn, skipping those this request found (they carry its tick: at most len(held)
            # of the next len(todo) + len(held), which the ring, twice the request, holds).
            window = (self.ring_cursor + np.arange(len(todo) + len(held), dtype=np.int64)) % self.ring_rows
            at = window[self.ring_use[window] != self.tick][:len(todo)]
            self.ring_cursor = (int(at[-1]) + 1) % self.ring_rows
            old = self.owner[at]
            stale = old >= 0
            stale[stale] = self.ring_of[old[stale]] == at[stale]
            self.ring_of[old[stale]] = -1
            self.owner[at] = todo
            self.ring_of[todo] = at
            self.ring_use[at] = self.tick
            self._decode(todo, at)
            found = self.ring_of[keys]
        return found

    def _load(self, blocks, in_block, missing):
        """Check and inflate the missing blocks into byte slots taken in turn (first in, first out), skipping
        those the request itself uses (they carry this request's tick: at most len(distinct) - len(missing)
        of the next len(distinct) slots); the blocks read before a damaged one stay usable. For random
        requests, whose next block is as likely any other, FIFO keeps as many hits as LRU would, at a cost
        in the request's size rather than a pass over every slot (numpy's argpartition over slots' ages,
        mostly equal, took 4 ms per request of 256 at 35,000 slots)."""
        window = (self.cursor + np.arange(len(missing) + self._in_use, dtype=np.int64)) % self.slots
        victims = window[self.last_use[window] != self.tick][:len(missing)]
        self.cursor = (int(victims[-1]) + 1) % self.slots
        self.last_use[victims] = self.tick
        view, stride, per_slot = self.view, self.stride, self.rows_per_slot
        old = self.block_in[victims]
        had = old >= 0
        self.slot_of[old[had]] = -1
        self.ring_of[((victims[had] * per_slot)[:, None] + np.arange(per_slot)).reshape(-1)] = -1
        self.block_in[victims] = -1
        shards = view.block_shard[missing]
        order = [(shard, np.flatnonzero(shards == shard)) for shard in np.unique(shards).tolist()]
        groups = [(view.block_reader(shard), view.block_in_shard[missing[chosen]]) for shard, chosen in order]
        for (shard, chosen), (_, local), (data, done, error) in zip(order, groups, inflate_groups(groups)):
            if done:
                loaded, slots = missing[chosen[:done]], victims[chosen[:done]]
                sizes = view.block_records[loaded] * (stride // per_slot)
                if (sizes == stride).all():
                    self.block_bytes[slots] = data.reshape(done, stride)
                else:
                    for slot, end, size in zip(slots.tolist(), np.cumsum(sizes).tolist(), sizes.tolist()):
                        self.block_bytes[slot, :size] = data[end - size:end]
                self.slot_of[loaded] = slots
                self.block_in[slots] = loaded
            if error is not None:
                raise _located_in_block(error, view.readers[shard], int(local[done]),
                                        int(in_block[np.argmax(blocks == missing[chosen[done]])]))

    def _decode(self, keys, ring_rows):
        """Decode the records at slot rows `keys` from their slots' bytes into ring rows `ring_rows`: one
        gather of their bytes, one decoding call per kind of shard."""
        slots, row = np.divmod(keys, self.rows_per_slot)
        blocks = self.block_in[slots]
        a, b, full = self.columns[0], self.columns[1], self._full_block
        where = row[:, None] * b
        where += full
        where += (slots * self.stride)[:, None]
        short = self.view.block_records[blocks] - self.rows_per_slot
        if short.any():                                       # the last block of a shard
            where += short[:, None] * a
        matrix = self.block_bytes.reshape(-1).take(where)
        kind = self.kind_of_shard[self.view.block_shard[blocks]]
        for shard_kind in np.unique(kind).tolist():
            alike = np.flatnonzero(kind == shard_kind) if len(kind) and kind.min() != kind.max() else slice(None)
            header = self.view.readers[shard_kind].header
            self._put(ring_rows[alike], header, _record_bytes_of_rows(header, matrix[alike]))


def _ramp(counts):
    """0, 1, ..., c - 1 for each count c, concatenated."""
    ends = np.cumsum(counts)
    return np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64) - np.repeat(ends - counts, counts)


class SoftLabels:
    """Targets of a dataset folder by (epoch, sample id or key).

    labels = SoftLabels("/data/teacher")
    labels.set_epoch(3)
    dense = labels.dense(sample_ids)                 # float32 (n, C)
    indices, values, residual = labels.sparse(sample_ids)
    codes = labels.codes(sample_ids)                 # uint8 (n, A) augmentation codes

    In record order (Spec/RECORD-ORDER.md), the fast order, without the epoch's sample table:
    reader = labels.in_record_order(epoch, world, rank, window=4, seed=0, train_epoch=t)
    for batch in reader.batches(256):                # RecordBatch: ids, codes, indices, values, residual
        targets = batch.dense(out)                   # out: a reused float32 (256, C) buffer
    labels.at(shard_ranks, ordinals, epoch)          # records where they are stored (DataLoader items)

    cache_bytes bounds the slab of blocks (it grows to hold at least the blocks of one request); a
    random access costs one block's CRC and inflation when the block is not in it, and decodes the
    rows asked for only.
    k: use only the first k stored entries of each record (1 <= k <= K; FORMAT.md 7, "The top k of a
    record"): sparse targets have k columns, dense rows spread 1 - (their sum) over the other C - k
    classes, so K can be chosen after the pass. `self.k` is the k in use, `self.stored_k` the shards' K.
    rank: the reading rank of FORMAT.md 2's lookup rule (a training process passes its own): a sample
    that several shards of an epoch hold (DistributedSampler padding) is read from the first of them in
    ascending ((shard rank - rank) mod n, shard rank); without one, from the lowest rank.
    Errors: ShardError (file, block, record) for a damaged shard met on the way, LabelError for
    missing samples or epochs, or a k the shards cannot give."""

    def __init__(self, folder, epoch=None, cache_bytes=DEFAULT_CACHE_BYTES, k=None, rank=None):
        self.folder = os.fspath(folder)
        self.cache_bytes = int(cache_bytes)
        self._wanted_k = k
        self.rank = _reading_rank(rank)
        self._epoch = multiprocessing.RawValue("q", -1)
        self._setup()
        if epoch is not None or self.epochs:          # a dataset without shards has no epoch to set
            self.set_epoch(self.epochs[0] if epoch is None else epoch)

    # ---- per-process state ----------------------------------------------------------------------

    def _setup(self):
        self._pid = _process.generation()
        self._dataset = Dataset(self.folder, cache_blocks=1)
        manifest = self._dataset.manifest
        self.classes, self.stored_k = manifest.classes, manifest.k
        self.k = self._checked_k(self._wanted_k)
        self.epochs = self._dataset.epochs()
        self._views = {}
        self._slab = None

    def _checked_k(self, k):
        """The k in use: the shards' K, or a k in 1..K (LabelError 'bad-k' naming the folder otherwise).
        Whether the shards are sorted is checked per epoch, when its shards are opened."""
        if k is None:
            return self.stored_k
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise LabelError("bad-k", f"k must be an integer, got {k!r}", file=self.folder)
        if not 1 <= k <= self.stored_k:
            raise LabelError("bad-k", f"k = {int(k)} is outside 1..{self.stored_k} (the shards store the top "
                             f"{self.stored_k} of each record)", file=self.folder)
        return int(k)

    def __getstate__(self):
        # A spawned worker shares the epoch's memory; any other pickle carries its current value.
        spawning = multiprocessing.context.get_spawning_popen() is not None
        return {"folder": self.folder, "cache_bytes": self.cache_bytes, "k": self._wanted_k, "rank": self.rank,
                "epoch": self._epoch if spawning else self.epoch}

    def __setstate__(self, state):
        self.folder, self.cache_bytes = state["folder"], state["cache_bytes"]
        self._wanted_k, self.rank = state["k"], state["rank"]
        epoch = state["epoch"]
        self._epoch = epoch if not isinstance(epoch, int) else multiprocessing.RawValue("q", epoch)
        self._setup()                    # in the unpickling (worker) process: its own maps

    def _ensure(self):
        if self._pid != _process.generation():
            self._setup()

    @property
    def dataset(self):
        """The Dataset (manifest, key table, readers) of this process."""
        self._ensure()
        return self._dataset

    @property
    def keys(self):
        return self.dataset.keys

    @property
    def epoch(self):
        return int(self._epoch.value)

    def set_epoch(self, epoch):
        """Answer later requests from `epoch` (one the dataset holds)."""
        self._ensure()
        epoch = int(epoch)
        if epoch not in self.epochs:
            raise missing_epoch(self.folder, epoch, self.epochs)
        self._epoch.value = epoch

    def check_classes(self, classes):
        """Raise LabelError('class-mismatch') unless the shards have `classes` classes (a model's)."""
        if int(classes) != self.classes:
            raise LabelError("class-mismatch", f"the shards have {self.classes} classes, the model "
                             f"{int(classes)}", file=os.path.join(self.folder, "manifest.json"))

    # ---- sample ids ---------------------------------------------------------------------------------

    def sample_id(self, key):
        """The id of `key` in the dataset's key table; LabelError when the dataset lacks it."""
        found = self.keys.sample_id(key)
        if found is None:
            raise LabelError("missing-sample", f"no sample has the key {key!r}", file=self.folder)
        return found

    def sample_ids(self, keys):
        """int64 ids of many keys, by the key table's bulk lookup (KeyTable.sample_ids: many keys matched
        in one pass over the table, a few looked up one by one; no Python object per key of the table).
        LabelError naming the first key the dataset lacks."""
        try:
            return self.keys.sample_ids(keys)
        except NotFound as missing:
            raise LabelError("missing-sample", f"no sample has the key {missing.args[0]!r}",
                             file=self.folder) from None

    def ids_in_epoch(self, epoch=None):
        """Sample ids that have a record in `epoch` (default: the current one), ascending."""
        shard_of, _ = self._view(self.epoch if epoch is None else int(epoch)).table()
        return np.flatnonzero(shard_of >= 0)

    # ---- the slab of blocks --------------------------------------------------------------------------

    def _view(self, epoch):
        self._ensure()
        if epoch not in self.epochs:
            raise missing_epoch(self.folder, epoch, self.epochs)
        view = self._views.get(epoch)
        if view is None:
            # Keep the views (and tables: 8 bytes per key each) of the last two epochs asked for.
            while len(self._views) >= 2:
                old = next(iter(self._views))
                del self._views[old]
                self._dataset._tables.pop(old, None)
                if self._slab is not None and self._slab.view.epoch == old:
                    self._slab = None
            view = self._views[epoch] = _EpochView(self._dataset, epoch, self.k, self.rank)
        return view

    def _slab_for(self, view, needed):
        """The slab of this epoch, with room for `needed` distinct blocks (those of one request): within
        cache_bytes, but never fewer slots than that."""
        slab = self._slab
        if slab is not None and slab.view is view and slab.slots >= needed:
            return slab
        rows_per_slot = int(view.per_block.max()) if len(view.per_block) else 1
        header = view.readers[0].header if view.readers else None
        budget = max(1, self.cache_bytes // (_Slab.row_bytes(header, self.k, view.aug_bytes) * rows_per_slot))
        self._slab = _Slab(view, self.classes, self.k, max(min(view.block_count, budget), needed, 1))
        return self._slab

    def _rows(self, sample_ids, epoch):
        """(rows' store, shard positions, rows) of the records of `sample_ids` in `epoch`, decoding what is
        missing (the store: the slab's _RandomRows)."""
        view = self._view(self.epoch if epoch is None else int(epoch))
        shard_of, ordinal_of = view.table()
        ids = np.asarray(sample_ids, dtype=np.int64).reshape(-1)
        if len(ids) and (ids.min() < 0 or ids.max() >= len(shard_of)):
            bad = ids[(ids < 0) | (ids >= len(shard_of))][0]
            raise LabelError("missing-sample", f"sample id {bad} is outside the key table "
                             f"(0..{len(shard_of) - 1})", file=self.folder)
        shard = shard_of[ids]
        if np.any(shard < 0):
            missing = int(ids[np.argmax(shard < 0)])
            raise LabelError("missing-sample", f"epoch {view.epoch} has no record of sample "
                             f"{missing} (key {self.keys[missing]!r})", file=self.folder)
        ordinal = ordinal_of[ids].astype(np.int64)
        per_block = view.per_block[shard]
        block = view.block_base[shard] + ordinal // per_block
        store = self._slab_for(view, len(np.unique(block))).random()
        rows = store.rows(block, ordinal % per_block)
        store.check(rows, shard, ordinal)
        return store, shard, rows

    # ---- targets ----------------------------------------------------------------------------------

    def sparse(self, sample_ids, epoch=None):
        """(indices int64 (n, k), values float32 (n, k), residual float32 (n,)) in stored order (k = K unless
        SoftLabels was given a k)."""
        slab, _, rows = self._rows(sample_ids, epoch)
        return (slab.indices[rows].astype(np.int64), slab.values[rows].astype(np.float32),
                slab.residual[rows])

    def codes(self, sample_ids, epoch=None):
        """uint8 (n, A) augmentation codes of the records."""
        slab, _, rows = self._rows(sample_ids, epoch)
        return slab.aug[rows]

    def records(self, sample_ids, epoch=None):
        """(codes, indices, values, residual) of the records, one lookup for all four."""
        slab, _, rows = self._rows(sample_ids, epoch)
        return (slab.aug[rows], slab.indices[rows].astype(np.int64),
                slab.values[rows].astype(np.float32), slab.residual[rows])

    def dense(self, sample_ids, epoch=None, out=None):
        """float32 (n, C) soft labels (section 7): each row its residual, the K values in place, in
        one fill and one scatter. `out` (float32, C-contiguous (n, C)) is filled when given."""
        slab, shard, rows = self._rows(sample_ids, epoch)
        slab.require_probability(shard)
        return scatter_dense(slab.indices[rows], slab.values[rows], slab.residual[rows], self.classes, out)

    def dense_by_key(self, keys, epoch=None, out=None):
        return self.dense(self.sample_ids(keys), epoch, out)

    def record_order(self, epoch, world=1, rank=0, window=0, seed=0, train_epoch=None):
        """(shard ranks, ordinals): what rank `rank` of `world` reads of stored epoch `epoch` in record order
        (Spec/RECORD-ORDER.md; the training epoch t defaults to the stored epoch)."""
        view = self._view(int(epoch))
        shards = [(e.rank, e.records, r.header.records_per_block) for e, r in zip(view.entries, view.readers)]
        return record_order(shards, world, rank, window, seed, int(epoch) if train_epoch is None else train_epoch)

    def in_record_order(self, epoch, world=1, rank=0, window=0, seed=0, train_epoch=None):
        """A RecordOrderReader over record_order(...)."""
        ranks, ordinals = self.record_order(epoch, world, rank, window, seed, train_epoch)
        return RecordOrderReader(self, self._view(int(epoch)), ranks, ordinals)

    def at(self, shard_ranks, ordinals, epoch=None):
        """RecordBatch of the records (shard rank, ordinal) of `epoch`, as the record-order sampler lists
        them: a block met for the first time is decoded whole (the records after it come next)."""
        view = self._view(self.epoch if epoch is None else int(epoch))
        ranks = np.asarray(shard_ranks, dtype=np.int64).reshape(-1)
        ordinal = np.asarray(ordinals, dtype=np.int64).reshape(-1)
        shard = np.array([view.position_of_rank.get(r, -1) for r in ranks.tolist()], dtype=np.int64)
        if len(shard) and ((shard < 0).any() or (ordinal < 0).any() or
                           (ordinal >= view.records_of_shard[shard]).any()):
            at = int(np.argmax((shard < 0) | (ordinal < 0) | (ordinal >= view.records_of_shard[shard])))
            raise LabelError("missing-record", f"epoch {view.epoch} has no record (rank {int(ranks[at])}, "
                             f"ordinal {int(ordinal[at])})", file=self.folder)
        per_block = view.per_block[shard]
        block = view.block_base[shard] + ordinal // per_block
        slab = self._slab_for(view, len(np.unique(block)))
        rows = slab.rows(block, ordinal % per_block, whole=True)
        slab.check(rows, shard, ordinal)
        return RecordBatch(slab.ids[rows].astype(np.int64), slab.aug[rows], slab.indices[rows],
                           slab.values[rows], slab.residual[rows], self.classes, slab.logit_file(shard))


class RecordBatch:
    """Records of a batch, in order: sample ids int64 (n,), augmentation codes uint8 (n, A), class indices
    int32 (n, k) and values float16 (n, k) in stored order (the first k of each record's K), residual float32 (n,); dense(out) gives the
    (n, C) float32 soft labels."""

    __slots__ = ("ids", "codes", "indices", "values", "residual", "classes", "logit_file")

    def __init__(self, ids, codes, indices, values, residual, classes, logit_file=None):
        self.ids, self.codes, self.indices, self.values, self.residual = ids, codes, indices, values, residual
        self.classes, self.logit_file = classes, logit_file

    def __len__(self):
        return len(self.ids)

    def dense(self, out=None):
        """float32 (n, C) soft labels (section 7); `out` (C-contiguous float32 (n, C)) is filled when given."""
        if self.logit_file is not None:
            raise ShardError("not-probability", "dense labels need a probability shard", file=self.logit_file)
        return scatter_dense(self.indices, self.values, self.residual, self.classes, out)


class RecordOrderReader:
    """The records of one stored epoch in a given order of (shard rank, ordinal) — a rank's record order
    (SoftLabels.in_record_order) — a batch at a time.

    Blocks are decoded whole, once each, several per numpy call: when a batch meets a block not in the
    slab, every block first met within the next `ahead` records is loaded and decoded with it. A slot is
    reused once the order has passed its block's last record, and the slab has as many slots as blocks
    are ever open at once (those met in `ahead` records plus those a window keeps open), so each block is
    read and decoded exactly once, however a window interleaves them. Dense rows need every shard the
    order reads to hold probabilities (else ShardError 'not-probability' naming a logit shard)."""

    def __init__(self, labels, view, ranks, ordinals, ahead=4096):
        self.labels, self.view = labels, view
        self.ranks, self.ordinals = np.asarray(ranks, np.int64), np.asarray(ordinals, np.int64)
        lookup = np.full(max(view.position_of_rank, default=0) + 1, -1, np.int64)
        for r, p in view.position_of_rank.items():
            lookup[r] = p
        self.shard = lookup[self.ranks]
        per_block = view.per_block[self.shard]
        self.block = view.block_base[self.shard] + self.ordinals // per_block
        self.in_block = self.ordinals % per_block
        self._last = np.zeros(view.block_count, dtype=np.int64)      # last position each block is read at
        self._last[self.block] = np.arange(len(self.block))
        first = np.full(view.block_count, len(self.block), dtype=np.int64)
        np.minimum.at(first, self.block, np.arange(len(self.block)))
        self._first = first
        self.slab = None
        self._size_slab(ahead)
        self._logit_file = self.slab.logit_file(np.unique(self.shard))     # dense rows refused if set

    def _size_slab(self, ahead):
        """A slab for loads of `ahead` records: at a load at p, the blocks open are those first read before
        p + ahead and last read at or after p; the slab holds the most that ever are, plus one."""
        self.ahead = max(int(ahead), 1)
        used = np.unique(self.block)
        firsts, lasts = np.sort(self._first[used]), np.sort(self._last[used])
        p = np.arange(len(self.block))
        open_blocks = np.searchsorted(firsts, p + self.ahead) - np.searchsorted(lasts, p)
        self.slab = _Slab(self.view, self.labels.classes, self.labels.k,
                          int(open_blocks.max()) + 1 if len(p) else 1)

    def __len__(self):
        return len(self.block)

    def batch(self, start, stop):
        """RecordBatch of entries [start, stop) of the order."""
        if stop - start > self.ahead:
            self._size_slab(stop - start)
        block = self.block[start:stop]
        if len(block) and (self.slab.slot_of[block] < 0).any():
            end = min(len(self.block), start + self.ahead)
            ahead = np.unique(self.block[start:end])
            ahead = ahead[self.slab.slot_of[ahead] < 0]
            counts = self.view.block_records[ahead]
            try:
                self.slab.rows(np.repeat(ahead, counts), _ramp(counts), whole=True, last_use=self._last.__getitem__)
            except ShardError:
                pass       # a damaged block ahead: raised below if this batch reads it, else when one does
        rows = self.slab.rows(block, self.in_block[start:stop], last_use=self._last.__getitem__)
        self.slab.check(rows, self.shard[start:stop], self.ordinals[start:stop])
        slab = self.slab
        return RecordBatch(slab.ids[rows].astype(np.int64), slab.aug[rows], slab.indices[rows],
                           slab.values[rows], slab.residual[rows], self.labels.classes, self._logit_file)

    def batches(self, batch_size, drop_last=False):
        """RecordBatches of `batch_size` consecutive entries."""
        stop = len(self) - len(self) % batch_size if drop_last else len(self)
        for start in range(0, stop, batch_size):
            yield self.batch(start, min(start + batch_size, stop))


def scatter_dense(indices, values, residual, classes, out=None):
    """Dense rows from sparse ones: out[i, :] = residual[i], then out[i, indices[i, j]] =
    values[i, j] (float16 or float32 values; float16 -> float32 is exact)."""
    n = len(residual)
    if out is None:
        out = np.empty((n, classes), dtype=np.float32)
    elif out.shape != (n, classes) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {(n, classes)}")
    out[...] = residual[:, None]
    flat = (np.arange(n, dtype=np.int64) * classes)[:, None] + indices
    out.reshape(-1)[flat.reshape(-1)] = values.reshape(-1)
    return out
