"""Dataset: a folder with manifest.json, keys.tsk and shards; lookup by (epoch, sample key).

Opening reads the manifest and the key table (checking the table against the manifest). A shard
is opened on first use and its header checked against the manifest. The first lookup in an epoch
builds that epoch's table sample id -> (shard, ordinal) from the shards' sample-id sections.
"""

import os

import numpy as np

from .errors import ShardError
from .files import file_size_and_crc
from .keys import KeyTable
from .manifest import read_manifest
from .reader import ShardReader


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


class Dataset:
    """Read access to a TinyShard dataset folder."""

    def __init__(self, folder, cache_blocks=8):
        self.folder = os.fspath(folder)
        self.manifest = read_manifest(self.folder)
        keys_path = os.path.join(self.folder, self.manifest.keys.file)
        self.keys = KeyTable.read(keys_path)
        size, crc = file_size_and_crc(keys_path)
        if (size, crc, len(self.keys)) != (self.manifest.keys.bytes, self.manifest.keys.crc32,
                                           self.manifest.key_count):
            raise _mismatch("key table size, CRC or count disagrees with the manifest",
                            file=keys_path)
        self._cache_blocks = cache_blocks
        self._readers = {}
        self._tables = {}

    @property
    def classes(self):
        return self.manifest.classes

    @property
    def k(self):
        return self.manifest.k

    def epochs(self):
        return sorted({entry.epoch for entry in self.manifest.shards})

    def _entries(self, epoch):
        return sorted((e for e in self.manifest.shards if e.epoch == epoch),
                      key=lambda e: e.rank)

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

    def _table(self, epoch):
        """sample id -> (shard position, ordinal) for one epoch. A sample held by several
        shards of the epoch resolves to the lowest rank (SPEC_QUESTIONS.md Q9)."""
        table = self._tables.get(epoch)
        if table is None:
            entries = self._entries(epoch)
            shard_of = np.full(len(self.keys), -1, dtype=np.int32)
            ordinal_of = np.zeros(len(self.keys), dtype=np.uint32)
            for position, entry in enumerate(entries):
                reader = self.reader(entry)
                ids = reader.sample_ids()
                if len(ids) and int(ids.max()) >= len(self.keys):
                    raise _mismatch(f"sample id {int(ids.max())} >= key count "
                                    f"{len(self.keys)}", file=reader.path)
                if len(np.unique(ids)) != len(ids):
                    raise ShardError("duplicate-sample", "a sample id appears twice",
                                     file=reader.path)
                new = shard_of[ids] < 0
                shard_of[ids[new]] = position
                ordinal_of[ids[new]] = np.flatnonzero(new)
            table = self._tables[epoch] = (entries, shard_of, ordinal_of)
        return table

    def locate(self, epoch, key):
        """(ShardReader, ordinal) of the record of `key` in `epoch`; KeyError if none."""
        sample_id = self.keys.sample_id(key)
        if sample_id is None:
            raise KeyError(key)
        entries, shard_of, ordinal_of = self._table(epoch)
        position = shard_of[sample_id]
        if position < 0:
            raise KeyError((epoch, key))
        return self.reader(entries[position]), int(ordinal_of[sample_id])

    def get(self, epoch, key):
        """The Record of sample `key` in `epoch`."""
        reader, ordinal = self.locate(epoch, key)
        return reader.record(ordinal)

    def dense_row(self, epoch, key):
        """float32 [C] soft label (section 7) of sample `key` in `epoch`."""
        reader, ordinal = self.locate(epoch, key)
        return reader.dense_row(ordinal)

    def dense(self, epoch, keys):
        """float32 [len(keys), C] soft labels of the given keys of one epoch."""
        rows = [self.dense_row(epoch, key) for key in keys]
        return np.stack(rows) if rows else np.zeros((0, self.classes), np.float32)

    def keys_in_epoch(self, epoch):
        """The keys that have a record in `epoch`."""
        _, shard_of, _ = self._table(epoch)
        return [self.keys[i] for i in np.flatnonzero(shard_of >= 0).tolist()]
