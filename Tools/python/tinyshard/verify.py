"""Verifier: every rule of FORMAT.md checked, every problem reported (not just the first).

A problem in the preamble, header, footer or index stops a shard's check (nothing after it can
be located). A block whose frame, checksums or sections are wrong is reported once and skipped;
records of readable blocks are checked one by one. A dataset check adds the manifest, the key
table, file sizes and CRCs, header agreement and sample ids < M.
"""

import os
from dataclasses import asdict, dataclass, replace

import numpy as np

from .codec import decode_block
from .dataset import check_shard_against_manifest
from .errors import ShardError
from .files import file_size_and_crc
from .keys import KeyTable, scan_keys
from .layout import parse_layout, read_block
from .manifest import read_manifest
from .reader import map_file


@dataclass(frozen=True)
class Problem:
    """One broken rule. `record` is the ordinal in the shard; `sample_id` and `key` are given
    when known (the key only when the dataset's key table is)."""

    code: str
    file: str
    message: str
    block: int = None
    record: int = None
    sample_id: int = None
    key: str = None

    def to_dict(self):
        return {name: value for name, value in asdict(self).items() if value is not None}

    def __str__(self):
        where = ", ".join(f"{name} {getattr(self, name)!r}" for name in
                          ("block", "record", "sample_id", "key")
                          if getattr(self, name) is not None)
        return f"{self.file}: [{self.code}] {self.message}" + (f" ({where})" if where else "")


def _from_error(error, file):
    return Problem(code=error.code, file=error.file or file, message=error.message,
                   block=error.block, record=error.record)


def _record_problem(code, message, file, block, ordinal, sample_id, keys):
    key = keys[sample_id] if keys is not None and sample_id < len(keys) else None
    return Problem(code=code, file=file, message=message, block=block, record=ordinal,
                   sample_id=sample_id, key=key)


class IdSet:
    """Sample ids seen so far, as FORMAT.md 1.6 bounds them: the u32 space in pages of 65,536 ids, a
    page held as a small sorted array (up to 64 ids, 2 bytes each) or an 8 KiB bitmap. Memory follows
    how the ids spread, never 8-16 bytes per record (a valid file can hold ~40 M records per MiB)."""

    SMALL = 64

    def __init__(self):
        self.pages = {}

    def add_block(self, ids):
        """Insert one block's ids (in ordinal order); return the positions that repeat an id seen
        before, in this block or an earlier one (each later occurrence)."""
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        first = np.ones(len(ids), bool)
        first[1:] = sorted_ids[1:] != sorted_ids[:-1]
        repeated = list(order[~first].tolist())
        unique, where = sorted_ids[first], order[first]
        pages = unique >> np.uint32(16)
        bounds = np.flatnonzero(np.diff(pages)) + 1
        for lo, hi in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(unique)]])):
            page, low = int(pages[lo]), (unique[lo:hi] & np.uint32(0xFFFF)).astype(np.uint16)
            held = self.pages.get(page)
            if held is None:
                seen = np.zeros(len(low), bool)
                merged = low
            elif held.dtype == np.uint16:
                seen = np.isin(low, held)
                merged = np.union1d(held, low)
            else:
                seen = (held[low >> 6] >> (low & 63).astype(np.uint64)) & np.uint64(1) == 1
                merged = None
            repeated += where[lo:hi][seen].tolist()
            if merged is not None and len(merged) <= self.SMALL:
                self.pages[page] = merged.astype(np.uint16)
                continue
            if merged is not None:                      # a small page grows into a bitmap
                held, low = np.zeros(1024, np.uint64), merged
            np.bitwise_or.at(held, (low >> 6).astype(np.int64), np.uint64(1) << (low & 63).astype(np.uint64))
            self.pages[page] = held
        return sorted(repeated)


def _verify_blocks(buf, layout, path, keys):
    """Check each block; return (problems, duplicate problems, id range problems). Sample ids are
    checked block by block against an IdSet, in ordinal order."""
    problems, duplicates, out_of_range = [], [], []
    seen = IdSet()
    view = memoryview(buf)    # slices of a memoryview cost ~10x less than numpy memmap slices
    for b in range(layout.blocks):
        try:
            raw = read_block(view, layout, b)
            block = decode_block(layout.header, raw.first, raw.n, raw.sections, check_only=True)
        except ShardError as error:
            problems.append(_from_error(error, path))
            continue
        for code, row, message in block.problems:
            problems.append(_record_problem(code, message, path, b, block.first + row,
                                            int(block.ids[row]), keys))
        for row in seen.add_block(block.ids):
            duplicates.append(_record_problem("duplicate-sample", "sample id already held by an earlier "
                                              "record", path, b, block.first + row, int(block.ids[row]), keys))
        if keys is not None:
            out_of_range += [_record_problem("manifest-mismatch", f"sample id >= key count {len(keys)}", path,
                                             b, block.first + row, int(block.ids[row]), keys)
                             for row in np.flatnonzero(block.ids >= len(keys)).tolist()]
    return problems, duplicates, out_of_range


def _verify_shard(path, keys=None):
    """(layout or None, problems) of one shard; `keys` (list) enables key names and the
    sample id < M check."""
    path = os.fspath(path)
    try:
        buf = map_file(path)
        layout = parse_layout(buf)
    except ShardError as error:
        return None, [_from_error(error, path)]
    problems, duplicates, out_of_range = _verify_blocks(buf, layout, path, keys)
    return layout, problems + duplicates + out_of_range


def verify_shard(path, keys=None):
    """All problems of one shard file (an empty list when it is valid)."""
    return _verify_shard(path, keys)[1]


def _verify_file_entry(entry, folder):
    path = os.path.join(folder, entry.file)
    try:
        size, crc = file_size_and_crc(path)
    except OSError as exc:
        return [Problem("io", path, f"cannot read: {exc}")]
    if (size, crc) != (entry.bytes, entry.crc32):
        return [Problem("manifest-mismatch", path, f"file is {size} bytes with CRC {crc}, "
                        f"manifest says {entry.bytes} bytes with CRC {entry.crc32}")]
    return []


def _verify_key_table(path):
    """(the table, or None where its head or directory is unusable; its problems) in the spec's order:
    head, directory, then every damaged page, pages in order (FORMAT.md 5.2; version 1: its first
    problem). Memory: the directory and one batch of pages (version 1: one chunk of keys)."""
    try:
        table = KeyTable.open(path)
    except ShardError as error:
        return None, [_from_error(error, path)]
    errors = table.problems()
    # Version 2's damaged pages leave M and the other pages readable; any version-1 problem, or a
    # version-2 directory problem, leaves nothing to read.
    usable = not errors
    if table.version == 2 and errors:
        try:
            table.check_directory()
            usable = True
        except ShardError:
            pass
    return (table if usable else None), [_from_error(error, path) for error in errors]


def verify_key_table(path):
    """All problems of one key table file (an empty list when it is valid)."""
    return _verify_key_table(os.fspath(path))[1]


def verify_dataset(folder):
    """All problems of a dataset folder: manifest, key table, every shard."""
    folder = os.fspath(folder)
    try:
        manifest = read_manifest(folder)
    except ShardError as error:
        return [_from_error(error, os.path.join(folder, "manifest.json"))]
    keys_path = os.path.join(folder, manifest.keys.file)
    problems = _verify_file_entry(manifest.keys, folder)
    keys = None
    if not any(p.code == "io" for p in problems):
        keys, table_problems = _verify_key_table(keys_path)
        problems += table_problems
        if keys is not None and len(keys) != manifest.key_count:
            problems.append(Problem("manifest-mismatch", keys_path, f"key table holds "
                                    f"{len(keys)} keys, manifest says {manifest.key_count}"))
    # Sample ids are checked against M; sample names are looked up at the end for the problems that
    # need them (_name_samples).
    counted = _KeyCount(len(keys)) if keys is not None else None
    for entry in manifest.shards:
        path = os.path.join(folder, entry.file)
        entry_problems = _verify_file_entry(entry, folder)
        problems += entry_problems
        if any(p.code == "io" for p in entry_problems):
            continue
        layout, shard_problems = _verify_shard(path, counted)
        problems += shard_problems
        if layout is not None:
            try:
                check_shard_against_manifest(layout.header, layout.records, entry, manifest,
                                             path)
            except ShardError as error:
                problems.append(_from_error(error, path))
    if keys is not None:
        problems = _name_samples(problems, keys, keys_path)
    return problems


class _KeyCount:
    """A key table known by its size only: bounds sample ids; names come later (_name_samples)."""

    def __init__(self, count):
        self.count = count

    def __len__(self):
        return self.count

    def __getitem__(self, sample_id):
        return None


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _name_samples(problems, table, keys_path):
    """Problems with the key of their sample id filled in: version 2 by page lookups (a damaged page
    names nothing), version 1 from one streaming pass over the table."""
    wanted = {p.sample_id for p in problems if p.sample_id is not None and p.key is None}
    wanted = {i for i in wanted if i < len(table)}
    if not wanted:
        return problems
    names = {}
    if table.version == 2:
        for i in sorted(wanted):
            try:
                names[i] = table[i]
            except ShardError:
                pass
    else:
        state = {"id": 0, "partial": b""}

        def collect(chunk):
            lines = (state["partial"] + chunk).split(b"\n") if state["partial"] else chunk.split(b"\n")
            state["partial"] = lines.pop()
            first = state["id"]
            for i in wanted:
                if first <= i < first + len(lines):
                    names[i] = lines[i - first].decode("utf-8")
            state["id"] = first + len(lines)

        scan_keys(_read(keys_path), collect)
    return [replace(p, key=names.get(p.sample_id)) if p.sample_id in names and p.key is None else p
            for p in problems]
