"""A teacher pass folder (Spec/PASS.md): `pass.json`, the checks a new or resumed pass makes before it
writes anything, and the tail a stopped pass leaves.

Everything here is independent of torch; tinyshard.torch.TeacherPassWriter puts it together with the
ranks of a torch.distributed run.
"""

import json
import os
from dataclasses import dataclass, replace

import numpy as np

from . import format as F
from .errors import ShardError
from .layout import parse_layout
from .manifest import KEYS_NAME, MANIFEST_NAME, read_manifest
from .reader import ShardReader, map_file
from .verify import verify_shard
from .writer import PARTIAL_SUFFIX, ShardWriter, fsync_folder, header_differences

PASS_NAME = "pass.json"
PASS_FORMAT = "tinyshard-teacher-pass"
PASS_VERSION = 1
MAX_PASS_BYTES = 1 << 20
TAIL_SUFFIX = ".tail"
TAIL_KEY = "tail_first_ordinal"


class PassError(Exception):
    """A pass folder that cannot be used as asked: `where` (the folder or file), a code (`usage`: the
    folder holds something else; `mismatch`: it holds another pass or damage; `internal`: a caller broke
    the writer's contract) and what differs, shown as one line."""

    def __init__(self, code, where, message):
        self.code, self.where, self.message = code, os.fspath(where), message
        super().__init__(code, self.where, message)

    def __reduce__(self):
        return (type(self), (self.code, self.where, self.message))

    def __str__(self):
        return f"{self.where}: [{self.code}] {self.message}"


def write_atomically(path, data):
    """Write `data` to `path` through `PATH.partial`: write, fsync, rename, fsync the folder. The
    temporary name is fixed (not per process), so a resume can find and remove what a crash left."""
    path = os.fspath(path)
    temp = path + PARTIAL_SUFFIX
    with open(temp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)
    fsync_folder(os.path.dirname(os.path.abspath(path)))


# --------------------------------------------------------------------------------------------
# pass.json (PASS.md 2)


@dataclass(frozen=True)
class PassRecord:
    """What a pass is: the epochs asked for so far and the fingerprint of everything that decides a
    record's bytes (every value a string)."""

    epochs: int
    fingerprint: dict

    def encode(self):
        """The file's bytes: keys sorted, so one record always writes the same bytes."""
        obj = {"format": PASS_FORMAT, "version": PASS_VERSION, "epochs": self.epochs,
               "fingerprint": dict(self.fingerprint)}
        return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")

    def write(self, folder):
        write_atomically(os.path.join(folder, PASS_NAME), self.encode())

    @classmethod
    def parse(cls, data, path):
        """A record from bytes under FORMAT.md 1.1's JSON grammar; PassError naming `path` otherwise."""
        if len(data) > MAX_PASS_BYTES:
            raise PassError("mismatch", path, f"not a pass record: more than {MAX_PASS_BYTES} bytes")
        try:
            obj = F.parse_json_object(data, code="manifest-mismatch")
        except ShardError as exc:
            raise PassError("mismatch", path, f"not a pass record: {exc.message}") from None
        if obj.get("format") != PASS_FORMAT:
            raise PassError("mismatch", path, f"not a pass record: format is {obj.get('format')!r}, "
                            f"not {PASS_FORMAT!r}")
        if not F.is_int(obj.get("version")) or obj["version"] != PASS_VERSION:
            raise PassError("mismatch", path, f"pass record version {obj.get('version')!r} is not "
                            f"{PASS_VERSION}")
        epochs = obj.get("epochs")
        if not F.is_int(epochs) or not 1 <= epochs <= F.MAX_EPOCH_OR_RANK:
            raise PassError("mismatch", path, f"pass record: epochs must be an integer >= 1, got {epochs!r}")
        fingerprint = obj.get("fingerprint")
        if not isinstance(fingerprint, dict) or not all(isinstance(v, str) for v in fingerprint.values()):
            raise PassError("mismatch", path, "pass record: fingerprint must be an object of strings")
        return cls(epochs=epochs, fingerprint=dict(fingerprint))

    @classmethod
    def read(cls, folder):
        """The folder's record, or None when it has no pass.json."""
        path = os.path.join(folder, PASS_NAME)
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_PASS_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PassError("io", path, f"cannot read: {exc}") from None
        return cls.parse(data, path)

    def difference(self, stored):
        """How `stored` (the folder's record) and this one (the run's) differ, key by key, or None:
        'seed is "0" in the folder, "7" in this run' (the first differing key in sorted order)."""
        for key in sorted(set(stored.fingerprint) | set(self.fingerprint)):
            ours, theirs = self.fingerprint.get(key), stored.fingerprint.get(key)
            if ours != theirs:
                show = lambda value: "absent" if value is None else json.dumps(value, ensure_ascii=False)  # noqa: E731
                return f"{key} is {show(theirs)} in the folder, {show(ours)} in this run"
        return None


def _holds_dataset(names):
    """The name that makes a folder a pass (pass.json, named first: it has its own advice) or a dataset
    (the first manifest or shard), or None: what a writer without resume refuses to overwrite."""
    if PASS_NAME in names:
        return PASS_NAME
    return next((name for name in sorted(names) if name == MANIFEST_NAME or ".tshard" in name), None)


def prepare_plain_folder(folder):
    """The plain (non-resumable) teacher-pass writer: a folder without a pass, manifest or shard."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    found = _holds_dataset(os.listdir(folder))
    if found is not None:
        raise PassError("usage", folder, f"the folder already holds a dataset ({found}); write to an "
                        "empty folder")


def committed_epochs(folder):
    """Epochs the folder's manifest lists (0 without a readable manifest: it is rewritten from the
    shards at the next commit, as a pass that died before its first commit)."""
    try:
        return len({entry.epoch for entry in read_manifest(folder).shards})
    except ShardError:
        return 0


def prepare_folder(folder, record, resume):
    """Rank 0, before a pass writes anything (PASS.md 5.1-5.2). A new pass needs a folder without a pass,
    manifest or shard and writes `pass.json`; a resumed one needs this pass's `pass.json` (rewritten
    when epochs are added) and refuses fewer epochs than the manifest has committed. Removes what a
    crash left under the temporary names of pass.json, the manifest and the key table."""
    folder = os.fspath(folder)
    if resume and not os.path.isdir(folder):
        raise PassError("mismatch", folder, "not a teacher pass folder (the folder does not exist); resume "
                        "continues a pass this writer started")
    try:
        os.makedirs(folder, exist_ok=True)
        names = os.listdir(folder)
    except OSError as exc:
        raise PassError("io", folder, f"cannot create or list the folder: {exc}") from None
    if not resume:
        found = _holds_dataset(names)
        if found == PASS_NAME:
            raise PassError("usage", folder, "the folder holds a teacher pass (pass.json); continue it "
                            "with resume (--resume), or write to another folder")
        if found is not None:
            raise PassError("usage", folder, f"the folder already holds a dataset ({found}); write the "
                            "pass to an empty folder")
    else:
        stored = PassRecord.read(folder)
        if stored is None:
            raise PassError("mismatch", folder, f"not a teacher pass folder (no {PASS_NAME}); resume "
                            "continues a pass this writer started")
        difference = record.difference(stored)
        if difference is not None:
            raise PassError("mismatch", folder, f"the folder holds another pass: {difference}")
        committed = committed_epochs(folder)
        if record.epochs < committed:
            raise PassError("mismatch", folder, f"the pass has committed {committed} epochs; "
                            f"{record.epochs} epochs would drop some")
        if record.epochs == stored.epochs:
            record = None                        # nothing to rewrite
    for name in (PASS_NAME, MANIFEST_NAME, KEYS_NAME):
        stale = os.path.join(folder, name + PARTIAL_SUFFIX)
        if os.path.exists(stale):
            os.unlink(stale)
    if record is not None:
        record.write(folder)


def check_key_table(folder, table):
    """A resumed pass: keys.tsk must be the bytes this run writes (`table`), compared by size and CRC."""
    path = os.path.join(folder, KEYS_NAME)
    try:
        with open(path, "rb") as f:
            found = f.read(len(table) + 1)
    except OSError as exc:
        raise PassError("mismatch", path, f"the pass's key table cannot be read: {exc}") from None
    if len(found) != len(table) or F.crc32(found) != F.crc32(table):
        size = os.path.getsize(path)
        raise PassError("mismatch", path, f"the key table is not this pass's ({size} bytes, crc32 "
                        f"{F.crc32(found):08x}; this run's has {len(table)} bytes, crc32 "
                        f"{F.crc32(table):08x})")


# --------------------------------------------------------------------------------------------
# Finished shards (PASS.md 5.3)


def check_finished_shard(path, header, records=None):
    """A finished shard a resumed pass keeps: every check of the verifier (a damaged one is reported as
    `verify` reports it, and kept as it is), the pass's header, and `records` records when given.
    Returns its record count."""
    problems = verify_shard(path)
    if problems:
        # The verifier's own line (file, code, message, where), then what the pass does about it.
        first = problems[0]
        said = str(first)[len(f"{first.file}: [{first.code}] "):]
        raise PassError(first.code, first.file, f"{said}; a finished shard of the pass is damaged: it "
                        "is kept as it is, verify and repair or remove it")
    layout = parse_layout(map_file(path))
    if layout.header != header:
        raise PassError("mismatch", path, "the finished shard's header is not this pass's: "
                        + header_differences(layout.header, header))
    if records is not None and layout.records != records:
        raise PassError("mismatch", path, f"the finished shard holds {layout.records} records, this "
                        f"pass's order {records}")
    return layout.records


# --------------------------------------------------------------------------------------------
# Tails (PASS.md 4, 5.4)


def tail_path(shard_path):
    return os.fspath(shard_path) + TAIL_SUFFIX


def _tail_header(header, first_ordinal):
    provenance = dict(header.provenance)
    provenance[TAIL_KEY] = str(first_ordinal)
    return replace(header, provenance=provenance)


def write_tail(shard_path, header, records, first_ordinal):
    """Write `records` (fewer than R, from ordinal `first_ordinal` of the shard at `shard_path`) as a
    complete shard `NAME.tail`: the pass's header with `tail_first_ordinal` in its provenance, written
    through a temporary name, fsynced and renamed (ShardWriter does all three)."""
    h = _tail_header(header, first_ordinal)
    with ShardWriter(tail_path(shard_path), h.classes, h.k, value_kind=h.value_kind,
                     temperature=h.temperature, sorted=h.sorted, augmentation_kind=h.augmentation_kind,
                     output_size=h.output_size, epoch=h.epoch, rank=h.rank,
                     records_per_block=h.records_per_block, provenance=h.provenance) as writer:
        for record in records:
            writer.append(record.sample_id, record.indices, record.values, record.aug)


def read_tail(shard_path, header, first_ordinal, expected_ids=None):
    """The records of `NAME.tail` when it continues the shard at `first_ordinal` (PASS.md 5.4): it passes
    every check of the verifier, has the pass's header apart from `tail_first_ordinal`, which equals
    `first_ordinal`, holds fewer than R records and, with `expected_ids`, the ids the order puts at its
    ordinals. Otherwise (or without a tail) None: its records are computed again."""
    path = tail_path(shard_path)
    if not os.path.exists(path) or verify_shard(path):
        return None
    with ShardReader(path) as reader:
        found = reader.header
        provenance = dict(found.provenance)
        if provenance.pop(TAIL_KEY, None) != str(first_ordinal):
            return None
        if replace(found, provenance=provenance) != header or len(reader) >= header.records_per_block:
            return None
        records = list(reader)
    if expected_ids is not None:
        wanted = np.asarray(expected_ids[first_ordinal:first_ordinal + len(records)], dtype=np.int64)
        if len(wanted) != len(records) or any(int(w) != r.sample_id for w, r in zip(wanted, records)):
            return None
    # Copies: the reader's arrays are views of a map that is closed when the tail is deleted.
    return [type(r)(r.sample_id, bytes(r.aug), np.array(r.indices), np.array(r.values)) for r in records]


def remove_tail(shard_path):
    """Delete the tail and a tail a crash left half-written (after it is read, or when it is not used)."""
    for path in (tail_path(shard_path), tail_path(shard_path) + PARTIAL_SUFFIX):
        if os.path.exists(path):
            os.unlink(path)
