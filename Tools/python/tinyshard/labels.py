"""SoftLabels: a training loop's targets by (epoch, sample), dense or sparse, a batch at a time.

A student needs, for each sample of a batch, the record of its (epoch, sample id): the augmentation code
to replay and the soft label. SoftLabels answers a whole batch with a few numpy operations:

- per epoch, a table sample id -> (shard, ordinal), built from the shards' sample-id sections
  (Dataset's epoch table: lowest rank wins for samples that several ranks hold);
- decoded blocks live in one slab of fixed-size slots (indices int32, values float16, the section-7
  residual float32, augmentation codes, a bad-record flag), so a batch's records are one fancy index
  into the slab, whichever blocks they come from; missing blocks are decoded (and checked) on demand
  into the least recently used slots;
- the dense batch is a fill with each row's residual and one scatter of the K stored values.

The residual of each record is section 7's: max(0, 1 - sum(v)) / (C - K), the sum of the float16
values in float64, rounded to float32 once, so dense rows are bit-equal to the Swift reader's.

Process-safe for DataLoader workers: the files are mapped lazily in each process (a pickled or forked
SoftLabels maps its own), and the current epoch lives in shared memory, so `set_epoch` in the main
process reaches workers that were started before (persistent workers).
"""

import multiprocessing
import os

import numpy as np

from . import _process

from .codec import decode_block
from .dataset import Dataset
from .errors import ShardError
from .layout import read_block

DEFAULT_CACHE_BYTES = 256 << 20


class LabelError(LookupError):
    """A request a dataset cannot answer: a sample without a record in an epoch (`missing-sample`), an
    epoch the dataset does not hold (`missing-epoch`), a class count other than the model's
    (`class-mismatch`), a logit shard asked for probabilities (`not-probability`). One line naming
    the dataset folder or file."""

    def __init__(self, code, message, file=None):
        self.code, self.message, self.file = code, message, file
        super().__init__(f"{file}: [{code}] {message}" if file else f"[{code}] {message}")


class _EpochView:
    """One epoch's shards, their global block numbering and the sample table."""

    def __init__(self, dataset, epoch):
        try:
            entries, shard_of, ordinal_of = dataset._table(epoch)
        except ShardError as exc:
            # A damaged block met while reading the epoch's sample ids: name its first record.
            if exc.block is not None and exc.record is None and exc.file is not None:
                reader = next((r for r in dataset._readers.values() if r.path == exc.file), None)
                if reader is not None:
                    raise exc.located(record=exc.block * reader.header.records_per_block) from None
            raise
        self.epoch = epoch
        self.readers = [dataset.reader(entry) for entry in entries]
        self.per_block = np.array([r.header.records_per_block for r in self.readers], np.int64)
        blocks = np.array([r.layout.blocks for r in self.readers], np.int64)
        self.block_base = np.concatenate([[0], np.cumsum(blocks)[:-1]]).astype(np.int64)
        self.block_count = int(blocks.sum())
        self.shard_of = shard_of
        self.ordinal_of = ordinal_of
        self.block_shard = np.repeat(np.arange(len(self.readers)), blocks)
        widths = {r.header.aug_bytes for r in self.readers}
        if len(widths) > 1:
            raise LabelError("mixed-augmentation", f"the shards of epoch {epoch} carry augmentation "
                             f"codes of different sizes ({sorted(widths)} bytes)", file=dataset.folder)
        self.aug_bytes = widths.pop() if widths else 0


class SoftLabels:
    """Targets of a dataset folder by (epoch, sample id or key).

    labels = SoftLabels("/data/teacher")
    labels.set_epoch(3)
    dense = labels.dense(sample_ids)                 # float32 (n, C)
    indices, values, residual = labels.sparse(sample_ids)
    codes = labels.codes(sample_ids)                 # uint8 (n, A) augmentation codes

    cache_bytes bounds the decoded-block slab (it grows to hold at least the blocks of one request).
    Errors: ShardError (file, block, record) for a damaged shard met on the way, LabelError for
    missing samples or epochs."""

    def __init__(self, folder, epoch=None, cache_bytes=DEFAULT_CACHE_BYTES):
        self.folder = os.fspath(folder)
        self.cache_bytes = int(cache_bytes)
        self._epoch = multiprocessing.RawValue("q", -1)
        self._setup()
        if epoch is not None or self.epochs:          # a dataset without shards has no epoch to set
            self.set_epoch(self.epochs[0] if epoch is None else epoch)

    # ---- per-process state ----------------------------------------------------------------------

    def _setup(self):
        self._pid = _process.generation()
        self._dataset = Dataset(self.folder, cache_blocks=1)
        manifest = self._dataset.manifest
        self.classes, self.k = manifest.classes, manifest.k
        self.epochs = self._dataset.epochs()
        self._views = {}
        self._slab_epoch = None
        self._slots = 0
        self._key_ids = None

    def __getstate__(self):
        # A spawned worker shares the epoch's memory; any other pickle carries its current value.
        spawning = multiprocessing.context.get_spawning_popen() is not None
        return {"folder": self.folder, "cache_bytes": self.cache_bytes,
                "epoch": self._epoch if spawning else self.epoch}

    def __setstate__(self, state):
        self.folder, self.cache_bytes = state["folder"], state["cache_bytes"]
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
            raise LabelError("missing-epoch", f"the dataset has no epoch {epoch} (epochs "
                             f"{', '.join(map(str, self.epochs)) or 'none'})", file=self.folder)
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
        """int64 ids of many keys (a dict from key to id is built on first use)."""
        self._ensure()
        if self._key_ids is None:
            self._key_ids = {key: i for i, key in enumerate(self.keys.keys)}
        try:
            return np.fromiter((self._key_ids[key] for key in keys), dtype=np.int64)
        except KeyError as missing:
            raise LabelError("missing-sample", f"no sample has the key {missing.args[0]!r}",
                             file=self.folder) from None

    def ids_in_epoch(self, epoch=None):
        """Sample ids that have a record in `epoch` (default: the current one), ascending."""
        view = self._view(self.epoch if epoch is None else int(epoch))
        return np.flatnonzero(view.shard_of >= 0)

    # ---- the slab of decoded blocks -------------------------------------------------------------

    def _view(self, epoch):
        self._ensure()
        if epoch not in self.epochs:
            raise LabelError("missing-epoch", f"the dataset has no epoch {epoch}", file=self.folder)
        view = self._views.get(epoch)
        if view is None:
            # Keep the tables of the last two epochs asked for (8 bytes per key each).
            while len(self._views) >= 2:
                old = next(iter(self._views))
                del self._views[old]
                self._dataset._tables.pop(old, None)
            view = self._views[epoch] = _EpochView(self._dataset, epoch)
        return view

    def _reset_slab(self, view, slots):
        """Empty slab of `slots` block slots for `view`'s epoch."""
        rows = slots * self._rows_per_slot
        aug_bytes = view.aug_bytes
        self._indices = np.zeros((rows, self.k), dtype=np.int32)
        self._values = np.zeros((rows, self.k), dtype=np.float16)
        self._residual = np.zeros(rows, dtype=np.float32)
        self._aug = np.zeros((rows, aug_bytes), dtype=np.uint8)
        self._bad = np.zeros(rows, dtype=bool)
        self._slot_of = np.full(view.block_count, -1, dtype=np.int64)
        self._block_in = np.full(slots, -1, dtype=np.int64)
        self._last_use = np.zeros(slots, dtype=np.int64)
        self._tick = 0
        self._slots = slots
        self._slab_epoch = view.epoch

    def _slab_for(self, view, needed):
        """Make sure the slab belongs to this epoch and has room for `needed` distinct blocks
        (those of one request): within cache_bytes, but never fewer slots than that."""
        if self._slab_epoch == view.epoch and self._slots >= needed:
            return
        self._rows_per_slot = int(view.per_block.max()) if len(view.per_block) else 1
        record_bytes = self.k * 6 + 5 + view.aug_bytes
        budget = max(1, self.cache_bytes // (record_bytes * self._rows_per_slot))
        self._reset_slab(view, max(min(view.block_count, budget), needed, 1))

    def _load(self, view, blocks, ordinal_of_block):
        """Decode the given global blocks into free or least recently used slots."""
        in_use = np.zeros(self._slots, dtype=bool)
        present = self._slot_of[blocks]
        in_use[present[present >= 0]] = True
        missing = blocks[present < 0]
        if len(missing) == 0:
            return
        free = np.flatnonzero(~in_use)
        victims = free[np.argsort(self._last_use[free], kind="stable")[:len(missing)]]
        for block, slot in zip(missing.tolist(), victims.tolist()):
            old = self._block_in[slot]
            if old >= 0:
                self._slot_of[old] = -1
            self._decode_into(view, block, slot, ordinal_of_block[block])
            self._slot_of[block] = slot
            self._block_in[slot] = block

    def _decode_into(self, view, block, slot, asked_ordinal):
        shard = int(view.block_shard[block])
        reader = view.readers[shard]
        b = block - int(view.block_base[shard])
        try:
            raw = read_block(reader._buf, reader.layout, b)
        except ShardError as exc:
            raise exc.located(file=reader.path, block=b, record=asked_ordinal) from None
        decoded = decode_block(reader.header, raw.first, raw.n, raw.sections)
        start = slot * self._rows_per_slot
        rows = slice(start, start + raw.n)
        self._indices[rows] = decoded.indices
        self._values[rows] = decoded.values
        self._aug[rows] = decoded.aug
        bad = np.zeros(raw.n, dtype=bool)
        for _, row, _ in decoded.problems:
            bad[row] = True
        self._bad[rows] = bad
        self._residual[rows] = self._residuals(reader, decoded.values)

    def _residuals(self, reader, values):
        if reader.header.value_kind != "probability" or self.k >= self.classes:
            return np.zeros(len(values), dtype=np.float32)
        total = values.astype(np.float64).sum(axis=1)          # exact: multiples of 2^-24
        return (np.maximum(0.0, 1.0 - total) / (self.classes - self.k)).astype(np.float32)

    def _rows(self, sample_ids, epoch):
        """Slab rows holding the records of `sample_ids` in `epoch` (decoding what is missing)."""
        view = self._view(self.epoch if epoch is None else int(epoch))
        ids = np.asarray(sample_ids, dtype=np.int64).reshape(-1)
        if len(ids) and (ids.min() < 0 or ids.max() >= len(view.shard_of)):
            bad = ids[(ids < 0) | (ids >= len(view.shard_of))][0]
            raise LabelError("missing-sample", f"sample id {bad} is outside the key table "
                             f"(0..{len(view.shard_of) - 1})", file=self.folder)
        shard = view.shard_of[ids]
        if np.any(shard < 0):
            missing = int(ids[np.argmax(shard < 0)])
            raise LabelError("missing-sample", f"epoch {view.epoch} has no record of sample "
                             f"{missing} (key {self.keys[missing]!r})", file=self.folder)
        ordinal = view.ordinal_of[ids].astype(np.int64)
        per_block = view.per_block[shard]
        block = view.block_base[shard] + ordinal // per_block
        distinct = np.unique(block)
        self._slab_for(view, len(distinct))
        if np.any(self._slot_of[distinct] < 0):
            asked = {}                   # block -> the first record asked of it (named by errors)
            for b, o in zip(block.tolist(), ordinal.tolist()):
                asked.setdefault(b, o)
            self._load(view, distinct, asked)
        self._tick += 1
        self._last_use[self._slot_of[distinct]] = self._tick
        rows = self._slot_of[block] * self._rows_per_slot + ordinal % per_block
        if self._bad[rows].any():
            at = int(np.argmax(self._bad[rows]))
            reader = view.readers[int(shard[at])]
            reader.record(int(ordinal[at]))            # raises the record's ShardError
            raise ShardError("bad-value", "record breaks a content rule", file=reader.path,
                             record=int(ordinal[at]))
        return view, shard, rows

    def _require_probability(self, view, shard):
        for s in np.unique(shard).tolist():
            reader = view.readers[s]
            if reader.header.value_kind != "probability":
                raise ShardError("not-probability", "dense labels need a probability shard",
                                 file=reader.path)

    # ---- targets ----------------------------------------------------------------------------------

    def sparse(self, sample_ids, epoch=None):
        """(indices int64 (n, K), values float32 (n, K), residual float32 (n,)) in stored order."""
        _, _, rows = self._rows(sample_ids, epoch)
        return (self._indices[rows].astype(np.int64), self._values[rows].astype(np.float32),
                self._residual[rows])

    def codes(self, sample_ids, epoch=None):
        """uint8 (n, A) augmentation codes of the records."""
        _, _, rows = self._rows(sample_ids, epoch)
        return self._aug[rows]

    def records(self, sample_ids, epoch=None):
        """(codes, indices, values, residual) of the records, one lookup for all four."""
        _, _, rows = self._rows(sample_ids, epoch)
        return (self._aug[rows], self._indices[rows].astype(np.int64),
                self._values[rows].astype(np.float32), self._residual[rows])

    def dense(self, sample_ids, epoch=None, out=None):
        """float32 (n, C) soft labels (section 7): each row its residual, the K values in place, in
        one fill and one scatter. `out` (float32, C-contiguous (n, C)) is filled when given."""
        view, shard, rows = self._rows(sample_ids, epoch)
        self._require_probability(view, shard)
        return scatter_dense(self._indices[rows], self._values[rows], self._residual[rows],
                             self.classes, out)

    def dense_by_key(self, keys, epoch=None, out=None):
        return self.dense(self.sample_ids(keys), epoch, out)


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
