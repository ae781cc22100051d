"""Dataset: a folder with manifest.json, keys.tsk and shards; lookup by (epoch, sample key).

Opening reads the manifest and the key table's head, and checks the key table's size and key count
against the manifest: O(1) in keys and records (FORMAT.md 6). A shard is opened on first use and its
header checked against the manifest. The first lookup in an epoch (for a reading rank) builds that
epoch's table sample id -> (shard, ordinal) from the shards' sample-id sections.
"""

import operator
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .errors import ShardError
from .keys import KeyTable, NotFound
from .manifest import read_manifest
from .reader import ShardReader, map_file


def _mismatch(message, file=None, record=None):
    return ShardError("manifest-mismatch", message, file=file, record=record)


def check_shard_against_manifest(header, records, entry, manifest, file=None):
    """Raise ShardError('manifest-mismatch') where a shard's header and footer disagree with
    its manifest entry (section 6)."""
    pairs = (("classes", header.classes, manifest.classes), ("k", header.k, manifest.k),
             ("epoch", header.epoch, entry.epoch), ("rank", header.rank, entry.rank),
             ("records", records, entry.records),
             ("provenance.dataset_checksum", header.provenance.get("dataset_checksum"),
              manifest.keys.crc32))
    for name, in_file, in_manifest in pairs:
        if in_file != in_manifest:
            raise _mismatch(f"{name} is {in_file!r} in the shard, {in_manifest!r} in the "
                            "manifest", file=file)


def search_order(ranks, reading_rank=None):
    """Positions of `ranks` (an epoch's shard ranks) in the order FORMAT.md 2 searches them: ascending
    ((rank - r) mod n, rank) for a reading rank r, as the official TinyViT reader sorts its packages;
    ascending rank without one."""
    n = len(ranks)
    if reading_rank is None:
        return sorted(range(n), key=lambda i: ranks[i])
    return sorted(range(n), key=lambda i: ((ranks[i] - reading_rank) % n, ranks[i]))


def _reading_rank(rank):
    if rank is None:
        return None
    if isinstance(rank, bool):
        raise TypeError("a reading rank is an integer, not a bool")
    rank = operator.index(rank)
    if rank < 0:
        raise ValueError(f"a reading rank is >= 0, got {rank}")
    return rank


def _first_repeat(ids):
    """Ordinal of the first record whose sample id an earlier record of the shard holds, or None."""
    order = np.argsort(ids, kind="stable")
    repeats = order[1:][ids[order[1:]] == ids[order[:-1]]]
    return int(repeats.min()) if len(repeats) else None


class Dataset:
    """Read access to a TinyShard dataset folder."""

    def __init__(self, folder, cache_blocks=8):
        self.folder = os.fspath(folder)
        self.manifest = read_manifest(self.folder)
        self.keys = self._open_keys()
        self._cache_blocks = cache_blocks
        self._readers = {}
        self._tables = {}               # epoch -> {reading rank (None, or r mod n): table}

    def _open_keys(self):
        """The key table, its size and count checked against the manifest; its CRC-32 is the
        manifest's too, but reading the whole file to compute it would make opening O(keys): the
        KeyTable compares it whenever it reads the whole table anyway (all_keys, bulk sample_ids) and
        the verifier always does. Its head is checked here; its directory before the first lookup."""
        path = os.path.join(self.folder, self.manifest.keys.file)
        data = map_file(path)
        if len(data) != self.manifest.keys.bytes:
            raise _mismatch(f"key table is {len(data)} bytes, the manifest says "
                            f"{self.manifest.keys.bytes}", file=path)
        keys = KeyTable(data, file=path, expected_crc32=self.manifest.keys.crc32)
        if len(keys) != self.manifest.key_count:
            raise _mismatch(f"key table holds {len(keys)} keys, the manifest says "
                            f"{self.manifest.key_count}", file=path)
        return keys

    @property
    def classes(self):
        return self.manifest.classes

    @property
    def k(self):
        return self.manifest.k

    def epochs(self):
        return sorted({entry.epoch for entry in self.manifest.shards})

    def _entries(self, epoch):
        """The epoch's manifest entries, ascending rank; NotFound naming the epochs held if none."""
        entries = sorted((e for e in self.manifest.shards if e.epoch == epoch), key=lambda e: e.rank)
        if not entries:
            held = ", ".join(map(str, self.epochs())) or "none"
            raise NotFound(f"{self.folder}: the manifest lists no epoch {epoch} (epochs {held})", epoch)
        return entries

    def reader(self, entry):
        """The open ShardReader of a manifest entry, checked against the manifest."""
        reader = self._readers.get(entry.file)
        if reader is None:
            path = os.path.join(self.folder, entry.file)
            reader = ShardReader(path, cache_blocks=self._cache_blocks)
            if reader.layout.file_size != entry.bytes:
                raise _mismatch(f"file is {reader.layout.file_size} bytes, manifest says "
                                f"{entry.bytes}", file=path)
            check_shard_against_manifest(reader.header, len(reader), entry, self.manifest, path)
            self._readers[entry.file] = reader
        return reader

    def _checked_ids(self, entry, scratch=None, ids=None):
        """A shard's sample ids in ordinal order, after FORMAT.md 1.4 step 6: repeated ids first
        (duplicate-sample, at the later record), then ids not below M (manifest-mismatch). `scratch`: a
        uint32 array of M entries to use (its content is overwritten), else one is allocated. `ids`: the
        shard's reader.sample_ids() when already read."""
        reader = self.reader(entry)
        if ids is None:
            ids = reader.sample_ids()
        count = len(self.keys)
        beyond = np.flatnonzero(ids >= count)
        if len(beyond):
            repeat = _first_repeat(ids)
        else:
            # O(records): scatter each ordinal to its id; a repeated id keeps one ordinal, so the others
            # read back another. The exact record is then found by a sort (only when there is one).
            back = np.empty(count, np.uint32) if scratch is None else scratch
            back[ids] = np.arange(len(ids), dtype=np.uint32)
            repeat = _first_repeat(ids) if (back[ids] != np.arange(len(ids))).any() else None
        if repeat is not None:
            raise ShardError("duplicate-sample", f"sample id {int(ids[repeat])} appears twice",
                             file=reader.path, record=repeat)
        if len(beyond):
            at = int(beyond[0])
            raise _mismatch(f"sample id {int(ids[at])} >= key count {count}", file=reader.path, record=at)
        return ids

    def epoch_table(self, epoch, rank=None):
        """(entries, shard_of, ordinal_of) of one epoch for a reading rank: `entries` its manifest entries
        by ascending rank; for each sample id, shard_of (int32) the position in `entries` of the shard
        FORMAT.md 2 names for it (-1: no record in the epoch) and ordinal_of (uint32) the record's
        ordinal there. With a rank r the first of the epoch's n shards in ascending ((rank - r) mod n,
        rank) that holds the sample wins (the official reader's search order), without one the lowest
        rank. Every shard is read and checked in ascending rank whatever r is, so a damaged shard is
        reported the same way for every reading rank. Memory: 8 bytes per key, plus the epoch's ids
        while it is built."""
        rank = _reading_rank(rank)
        entries = self._entries(epoch)
        slot = None if rank is None else rank % len(entries)
        tables = self._tables.setdefault(epoch, {})
        if slot not in tables:
            # ordinal_of is the duplicate check's scratch first (one array touched, not one per shard).
            ordinal_of = np.empty(len(self.keys), dtype=np.uint32)
            ids = [self._checked_ids(entry, ordinal_of, read)
                   for entry, read in zip(entries, self._read_ids(entries))]
            ordinal_of.fill(0)
            shard_of = np.full(len(self.keys), -1, dtype=np.int32)
            # Written last-searched first, so each sample keeps the first shard of the search order.
            for position in reversed(search_order([e.rank for e in entries], slot)):
                shard_of[ids[position]] = position
                ordinal_of[ids[position]] = np.arange(len(ids[position]), dtype=np.uint32)
            tables[slot] = (entries, shard_of, ordinal_of)
        return tables[slot]

    def _read_ids(self, entries):
        """Each entry's reader.sample_ids(), in order, read on two threads (most of the work, the gathers,
        the page faults of a fresh mapping and the inflation, runs without the GIL) while the caller checks
        the ones already read. Opening and reading errors come out in entry order, as from a sequential
        read: a later shard is only read ahead, never reported first."""
        def read(entry):
            return self.reader(entry).sample_ids()
        if len(entries) < 2:
            yield from map(read, entries)
            return
        with ThreadPoolExecutor(max_workers=2) as pool:
            pending = [pool.submit(read, entry) for entry in entries]
            try:
                for done in pending:
                    yield done.result()
            finally:
                for later in pending:
                    later.cancel()

    def _table(self, epoch):
        """epoch_table(epoch) without a reading rank (lowest rank wins)."""
        return self.epoch_table(epoch)

    def locate(self, epoch, key, rank=None):
        """(ShardReader, ordinal) of the record of `key` in `epoch` for reading rank `rank` (section 2);
        NotFound (a KeyError) for an epoch the manifest does not list, a key the table does not hold or
        a sample without a record in the epoch."""
        self._entries(epoch)
        sample_id = self.keys.sample_id(key)
        if sample_id is None:
            raise NotFound(f"{self.folder}: no sample has the key {key!r}", key)
        entries, shard_of, ordinal_of = self.epoch_table(epoch, rank)
        position = shard_of[sample_id]
        if position < 0:
            raise NotFound(f"{self.folder}: epoch {epoch} has no record of the key {key!r}", (epoch, key))
        return self.reader(entries[position]), int(ordinal_of[sample_id])

    def get(self, epoch, key, rank=None):
        """The Record of sample `key` in `epoch` (for reading rank `rank`, section 2)."""
        reader, ordinal = self.locate(epoch, key, rank)
        return reader.record(ordinal)

    def dense_row(self, epoch, key, rank=None):
        """float32 [C] soft label (section 7) of sample `key` in `epoch`."""
        reader, ordinal = self.locate(epoch, key, rank)
        return reader.dense_row(ordinal)

    def dense(self, epoch, keys, rank=None):
        """float32 [len(keys), C] soft labels of the given keys of one epoch."""
        rows = [self.dense_row(epoch, key, rank) for key in keys]
        return np.stack(rows) if rows else np.zeros((0, self.classes), np.float32)

    def keys_in_epoch(self, epoch):
        """The keys that have a record in `epoch`."""
        _, shard_of, _ = self._table(epoch)
        keys = self.keys.all_keys()
        return [keys[i] for i in np.flatnonzero(shard_of >= 0).tolist()]
