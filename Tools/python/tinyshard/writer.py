"""ShardWriter: writes one shard, crash-safe (FORMAT.md section 1).

The file is built under a temporary name in the target's folder, blocks are appended as they fill,
and close() writes the index and footer, fsyncs and renames into place, so that a file under the
final name is always complete. Records are checked when appended, so that an error names the
record that caused it and nothing invalid ever reaches the disk.
"""

import os

import numpy as np

from . import format as F
from .augment import check_params_code
from .codec import value_problems, encode_block
from .errors import ShardError


class ShardWriter:
    """Write records to a new shard at `path`.

    Shape mistakes (wrong number of entries, wrong augmentation code length, a sample id that is
    not a u32) raise ValueError; records that break a rule of the format raise ShardError with
    the spec's code. Use as a context manager: leaving the block with an exception abandons the
    file (the temporary file is removed, nothing appears under `path`)."""

    def __init__(self, path, classes, k, value_kind="probability", temperature=1.0, sorted=True,
                 augmentation_kind="none", output_size=None, epoch=0, rank=0,
                 records_per_block=1024, provenance=None):
        self.header = F.Header(
            classes=classes, k=k, value_kind=value_kind, temperature=temperature, sorted=sorted,
            augmentation_kind=augmentation_kind,
            output_size=tuple(output_size) if output_size is not None else None,
            epoch=epoch, rank=rank, records_per_block=records_per_block,
            provenance=dict(provenance or {})).validate()
        self.path = os.fspath(path)
        self._temp_path = f"{self.path}.tmp-{os.getpid()}"
        self._file = open(self._temp_path, "wb")
        self._file.write(F.pack_preamble_and_header(self.header))
        self._blocks = []                  # (offset, length)
        self._pending = []                 # (id, aug bytes, indices, value bits) of this block
        self._seen_ids = set()
        self.records = 0

    # ---- records -----------------------------------------------------------------------------

    def append(self, sample_id, indices, values, aug_code=b""):
        """Add one record: K class indices and K values in the teacher's order."""
        if self._file is None:
            raise ValueError("writer is closed")
        record = self._checked_record(sample_id, indices, values, bytes(aug_code))
        if sample_id in self._seen_ids:
            raise ShardError("duplicate-sample", f"sample id {sample_id} is already in this "
                             "shard", record=self.records)
        self._seen_ids.add(sample_id)
        self._pending.append(record)
        self.records += 1
        if len(self._pending) == self.header.records_per_block:
            self._flush_block()

    def _checked_record(self, sample_id, indices, values, aug_code):
        h = self.header
        if not isinstance(sample_id, (int, np.integer)) or not 0 <= sample_id <= 0xFFFFFFFF:
            raise ValueError(f"sample id must be an integer in [0, 2**32), got {sample_id!r}")
        indices = np.asarray(indices)
        values = np.asarray(values)
        if indices.shape != (h.k,) or values.shape != (h.k,):
            raise ValueError(f"need exactly K={h.k} indices and values, got {indices.shape} "
                             f"and {values.shape}")
        if indices.dtype.kind not in "iu":
            raise ValueError(f"class indices must be integers, got {indices.dtype}")
        if len(aug_code) != h.aug_bytes:
            raise ValueError(f"augmentation code must be {h.aug_bytes} bytes, got "
                             f"{len(aug_code)}")
        where = {"record": self.records}
        if h.augmentation_kind == "params":           # checks in section order, as the reader
            try:
                check_params_code(aug_code, h.output_size)
            except ShardError as exc:
                raise exc.located(record=self.records) from None
        halves = values.astype(np.float16)
        problems = value_problems(h, halves.reshape(1, h.k))
        if problems:
            raise ShardError(problems[0][0], problems[0][2], **where)
        indices = indices.astype(np.int64)
        if indices.min() < 0 or indices.max() >= h.classes:
            raise ShardError("index-out-of-range", f"class index outside [0, {h.classes})",
                             **where)
        if len(np.unique(indices)) != h.k:
            raise ShardError("duplicate-index", "a class index appears twice", **where)
        return int(sample_id), aug_code, indices, halves.view(np.uint16)

    def _flush_block(self):
        if not self._pending:
            return
        ids, augs, indices, bits = zip(*self._pending)
        n = len(ids)
        aug = np.frombuffer(b"".join(augs), dtype=np.uint8).reshape(n, self.header.aug_bytes)
        block = encode_block(self.header, self.records - n, np.array(ids, dtype=np.uint32), aug,
                             np.stack(indices), np.stack(bits))
        self._blocks.append((self._file.tell(), len(block)))
        self._file.write(block)
        self._pending = []

    # ---- commit ------------------------------------------------------------------------------

    def close(self):
        """Commit: last block, index, footer, fsync, atomic rename, fsync of the folder."""
        if self._file is None:
            return
        self._flush_block()
        index_offset = self._file.tell()
        self._file.write(F.pack_index(self._blocks))
        self._file.write(F.pack_footer(len(self._blocks), index_offset, self.records))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        os.replace(self._temp_path, self.path)
        _fsync_folder(os.path.dirname(os.path.abspath(self.path)))

    def abort(self):
        """Abandon the shard: nothing is left under `path` or the temporary name."""
        if self._file is None:
            return
        self._file.close()
        self._file = None
        os.unlink(self._temp_path)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _fsync_folder(folder):
    """Make the rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
