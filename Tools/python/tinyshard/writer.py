"""ShardWriter: writes one shard, crash-safe (FORMAT.md section 1), and continues one a crash left
unfinished (Spec/PASS.md 5.4).

The file is built under the temporary name `PATH.partial` in the target's folder (a fixed name, not one
per process, so that a later run finds what a crashed writer left), blocks are appended as they fill,
and close() writes the index and footer, fsyncs and renames into place, so that a file under the
final name is always complete. Records are checked when appended, so that an error names the
record that caused it and nothing invalid ever reaches the disk.

`ShardWriter(..., resume=True)` keeps the longest run of blocks of an existing `PATH.partial` that a
writer of the same header could have written (each complete, R records from ordinal b·R, every rule of
FORMAT.md 1.4 steps 4-5, and, when `expected_ids` is given, the sample ids the caller's order puts at
those ordinals), cuts the file after it and appends from there: fed the remaining records, it finishes
the file an uninterrupted writer would have written, byte for byte (same Python, same zlib).
"""

import os
import zlib
from dataclasses import dataclass

import numpy as np

from . import format as F
from .augment import check_params_code
from .codec import value_problems, encode_block, decode_block
from .errors import ShardError
from .layout import _check_magic_and_version, _read_header, read_block
from .reader import Record

PARTIAL_SUFFIX = ".partial"


def partial_path(path):
    """The temporary name of the shard at `path` while it is written (Spec/PASS.md 1)."""
    return os.fspath(path) + PARTIAL_SUFFIX


class ShardWriter:
    """Write records to a new shard at `path`.

    Shape mistakes (wrong number of entries, wrong augmentation code length, a sample id that is
    not a u32) raise ValueError; records that break a rule of the format raise ShardError with
    the spec's code. Use as a context manager: leaving the block with an exception abandons the
    file (the temporary file is removed, nothing appears under `path`).

    resume=True continues `path`'s `.partial` (module docstring); `resumed_records` says how many
    records were kept, and the next append is record `resumed_records`. expected_ids (any sequence of
    sample ids: the order the shard's records follow) makes a kept block's ids part of the check: a
    block that passes every rule but holds other ids is ShardError('manifest-mismatch'), since no
    crash of this writer makes one. A `.partial` whose header is whole but not this writer's header is
    the same error; a torn header (or no file) starts the shard anew."""

    def __init__(self, path, classes, k, value_kind="probability", temperature=1.0, sorted=True,
                 augmentation_kind="none", output_size=None, epoch=0, rank=0,
                 records_per_block=None, provenance=None, resume=False, expected_ids=None):
        self.header = F.Header(
            classes=classes, k=k, value_kind=value_kind, temperature=temperature, sorted=sorted,
            augmentation_kind=augmentation_kind,
            output_size=tuple(output_size) if output_size is not None else None,
            epoch=epoch, rank=rank,
            records_per_block=records_per_block or F.default_records_per_block(k),
            provenance=dict(provenance or {})).validate()
        self.path = os.fspath(path)
        self._temp_path = partial_path(self.path)
        self._blocks = []                  # (offset, length)
        self._pending = []                 # (id, aug bytes, indices, value bits) of this block
        self._seen_ids = set()
        self.records = 0
        self.resumed_records = 0
        self.crc32 = 0                     # running CRC-32 and size of the bytes written: the
        self.size = 0                      # manifest's entry without reading the file back
        head = F.pack_preamble_and_header(self.header)
        prefix = scan_partial(self._temp_path, self.header, expected_ids) if resume else None
        # Unbuffered: each block reaches the file as soon as it is complete (PASS.md 1), so a crash
        # (SIGKILL, out of memory) loses only the block in hand, never blocks waiting in a buffer.
        if prefix is None or prefix.kept_bytes == 0:
            self._file = open(self._temp_path, "wb", buffering=0)
            self._write(head)
            return
        self._file = open(self._temp_path, "r+b", buffering=0)
        try:
            # Cut a torn block (or anything after the kept run) and read the kept bytes back for the
            # running CRC, so that close() reports the file's CRC without another pass.
            self._file.truncate(prefix.kept_bytes)
            self._file.seek(0)
            while self.size < prefix.kept_bytes:
                chunk = self._file.read(min(1 << 22, prefix.kept_bytes - self.size))
                if not chunk:
                    raise ShardError("io", "the file shrank while it was resumed", file=self._temp_path)
                self.crc32 = zlib.crc32(chunk, self.crc32)
                self.size += len(chunk)
            self._file.seek(prefix.kept_bytes)
        except BaseException:
            self._file.close()
            raise
        self._blocks = list(prefix.blocks)
        self._seen_ids = set(prefix.sample_ids.tolist())
        self.records = self.resumed_records = prefix.records

    def _write(self, data):
        view = memoryview(data)
        while view:                        # a raw write may be short (a signal, a nearly full disk)
            view = view[self._file.write(view):]
        self.crc32 = zlib.crc32(data, self.crc32)
        self.size += len(data)

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
        self._blocks.append((self.size, len(block)))
        self._write(block)
        self._pending = []

    def unfinished_block(self):
        """The records appended since the last complete block (fewer than R), as Records: what a
        stopped pass writes as its tail (Spec/PASS.md 4)."""
        return [Record(sample_id, aug, indices, bits.view(np.float16))
                for sample_id, aug, indices, bits in self._pending]

    # ---- durability and commit ---------------------------------------------------------------

    def sync(self):
        """Make every complete block durable (flush and fsync `PATH.partial`). Records of the block
        not yet complete are only in memory: a crash loses them, and a resume computes them again."""
        if self._file is None:
            raise ValueError("writer is closed")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self):
        """Commit: last block, index, footer, fsync, atomic rename, fsync of the folder. Afterwards
        `size` and `crc32` are the finished file's."""
        if self._file is None:
            return
        self._flush_block()
        index_offset = self.size
        self._write(F.pack_index(self._blocks))
        self._write(F.pack_footer(len(self._blocks), index_offset, self.records))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        os.replace(self._temp_path, self.path)
        fsync_folder(os.path.dirname(os.path.abspath(self.path)))

    def detach(self):
        """Stop writing but keep `PATH.partial` (synced) for a later resume: what a pass does when
        its batch loop fails, so that the complete blocks are not computed again."""
        if self._file is None:
            return
        try:
            self.sync()
        finally:
            self._file.close()
            self._file = None

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


def fsync_folder(folder):
    """Make a rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)



# --------------------------------------------------------------------------------------------
# Salvage of an unfinished shard (Spec/PASS.md 5.4)


@dataclass(frozen=True)
class PartialPrefix:
    """What a resumed writer keeps of a `.partial`: `records` (= blocks × R) records in `blocks`
    ((offset, length) each), the file's first `kept_bytes` bytes, and their sample ids in order."""

    records: int
    kept_bytes: int
    blocks: tuple
    sample_ids: np.ndarray


class _BlockAt:
    """Just enough of a Layout for layout.read_block to check one block found by scanning, not
    through an index: block b at `offset`, `length` bytes, R records from ordinal b·R."""

    def __init__(self, header, b, offset, length):
        self.header = header
        self.block_offsets = {b: offset}
        self.block_lengths = {b: length}
        self._r = header.records_per_block

    def block_records(self, b):
        return self._r


def header_differences(found, expected):
    """The fields in which two headers differ, for the one-line mismatch message."""
    names = ["classes", "k", "value_kind", "temperature", "sorted", "augmentation_kind", "output_size",
             "epoch", "rank", "records_per_block"]
    differ = [f"{name} {getattr(found, name)!r} (this writer: {getattr(expected, name)!r})"
              for name in names if getattr(found, name) != getattr(expected, name)]
    for key in sorted(set(found.provenance) | set(expected.provenance)):
        if found.provenance.get(key) != expected.provenance.get(key):
            differ.append(f"provenance {key} {found.provenance.get(key)!r} (this writer: "
                          f"{expected.provenance.get(key)!r})")
    if not differ and found.extra != expected.extra:
        differ.append("keys this version does not write")
    return "; ".join(differ) or "the same fields in other bytes (another writer's JSON)"


def scan_partial(path, header, expected_ids=None):
    """The prefix of `path` (a `.partial`) that a writer of `header` keeps (PASS.md 5.4), or None when
    there is nothing to keep: no file, or a header that is not whole (a writer that died before it
    was written). Raises ShardError('manifest-mismatch') naming the file when its header is whole but
    another, or when a block that passes every rule holds other sample ids than `expected_ids`."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            buf = np.memmap(f, dtype=np.uint8, mode="r") if size else np.zeros(0, np.uint8)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ShardError("io", f"cannot read the unfinished shard: {exc}", file=path) from None
    head = F.pack_preamble_and_header(header)
    try:
        _, header_len = _check_magic_and_version(buf)
        found = _read_header(buf, header_len)
    except ShardError:
        return None            # torn or never written: nothing of it can be trusted, start anew
    start = F.PREAMBLE_SIZE + header_len + F.CRC.size
    if bytes(buf[:start]) != head:
        raise ShardError("manifest-mismatch", "the unfinished shard's header is not this writer's: "
                         + header_differences(found, header), file=path)
    r = header.records_per_block
    expected = None if expected_ids is None else np.asarray(expected_ids, dtype=np.int64)
    view = memoryview(buf)
    blocks, ids, seen, offset = [], [], set(), start
    while size - offset >= F.BLOCK_HEADER_SIZE:
        b = len(blocks)
        magic, n, first, payload_len, _, reserved = F.BLOCK_HEADER.unpack_from(view, offset)
        length = F.BLOCK_HEADER_SIZE + payload_len
        # A block that is not complete, or not a full block at b·R (the short last block a finish
        # writes before its index), ends the run; read_block checks the rest of FORMAT.md 1.4 step 4.
        if magic != F.BLOCK_MAGIC or n != r or first != b * r or length > size - offset:
            break
        try:
            raw = read_block(view, _BlockAt(header, b, offset, length), b)
            decoded = decode_block(header, raw.first, raw.n, raw.sections, check_only=True)
        except ShardError:
            break
        if decoded.problems:                                     # step 5: a record breaks a rule
            break
        block_ids = decoded.ids.astype(np.int64)
        if expected is not None:
            wanted = expected[b * r:(b + 1) * r]
            if len(wanted) != r or not np.array_equal(wanted, block_ids):
                row = next((i for i in range(r) if i >= len(wanted) or wanted[i] != block_ids[i]))
                there = f"sample id {wanted[row]}" if row < len(wanted) else "no record (the order ends)"
                raise ShardError("manifest-mismatch", f"block {b} holds sample id {block_ids[row]} at "
                                 f"ordinal {b * r + row}, where this writer's order puts {there}",
                                 file=path, block=b, record=b * r + row)
        elif seen.intersection(block_ids.tolist()) or len(set(block_ids.tolist())) != r:
            break                                               # step 6: a repeated sample id
        else:
            seen.update(block_ids.tolist())
        ids.append(block_ids)
        blocks.append((offset, length))
        offset += length
    sample_ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
    return PartialPrefix(records=len(blocks) * r, kept_bytes=offset, blocks=tuple(blocks),
                         sample_ids=sample_ids)
