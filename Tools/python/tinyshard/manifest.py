"""The dataset manifest `manifest.json` (FORMAT.md section 6)."""

import json
import os
import re
from dataclasses import dataclass

from . import format as F
from .errors import ShardError
from .files import file_size_and_crc, write_atomically
from .keys import read_keys
from .layout import parse_layout
from .reader import map_file

MANIFEST_NAME = "manifest.json"
KEYS_NAME = "keys.tsk"
FORMAT_NAME = "tinyshard-dataset"
MANIFEST_VERSION = 1
_HEX8 = re.compile(r"[0-9a-f]{8}")


@dataclass(frozen=True)
class FileEntry:
    """A file of the dataset as the manifest records it."""

    file: str
    bytes: int
    crc32: str


@dataclass(frozen=True)
class ShardEntry(FileEntry):
    epoch: int = 0
    rank: int = 0
    records: int = 0


@dataclass(frozen=True)
class Manifest:
    classes: int
    k: int
    keys: FileEntry
    key_count: int
    shards: tuple

    def to_json_object(self):
        return {
            "format": FORMAT_NAME, "version": MANIFEST_VERSION, "classes": self.classes,
            "k": self.k,
            "keys": {"file": self.keys.file, "count": self.key_count, "bytes": self.keys.bytes,
                     "crc32": self.keys.crc32},
            "shards": [{"file": s.file, "epoch": s.epoch, "rank": s.rank, "records": s.records,
                        "bytes": s.bytes, "crc32": s.crc32} for s in self.shards],
        }


def _bad(message):
    return ShardError("manifest-mismatch", message, file=MANIFEST_NAME)


def _int(obj, key, low=0, high=(1 << 63) - 1):
    value = obj.get(key) if isinstance(obj, dict) else None
    if not F.is_int(value) or not low <= value <= high:
        raise _bad(f"{key!r} must be an integer in [{low}, {high}], got {value!r}")
    return value


def _file_entry(obj, what):
    if not isinstance(obj, dict):
        raise _bad(f"{what} must be an object")
    name = obj.get("file")
    if (not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name
            or "\0" in name):
        raise _bad(f"{what}.file must be a plain file name in the dataset folder, got {name!r}")
    crc = obj.get("crc32")
    if not isinstance(crc, str) or not _HEX8.fullmatch(crc):
        raise _bad(f"{what}.crc32 must be 8 lowercase hex digits, got {crc!r}")
    return name, _int(obj, "bytes"), crc


def parse_manifest(data):
    """Check a manifest's JSON structure (not yet the files it names)."""
    obj = F.parse_json_object(data, code="manifest-mismatch")
    if obj.get("format") != FORMAT_NAME:
        raise _bad(f"format must be {FORMAT_NAME!r}, got {obj.get('format')!r}")
    if not F.is_int(obj.get("version")) or obj["version"] != MANIFEST_VERSION:
        raise ShardError("unsupported-version", f"manifest version {obj.get('version')!r} is "
                         "not 1", file=MANIFEST_NAME)
    classes = _int(obj, "classes", 1, F.MAX_CLASSES)
    k = _int(obj, "k", 1, min(classes, F.MAX_K))
    keys = FileEntry(*_file_entry(obj.get("keys"), "keys"))
    key_count = _int(obj["keys"], "count", 0, 0xFFFFFFFF)
    if not isinstance(obj.get("shards"), list):
        raise _bad("shards must be a list")
    shards, names, slots = [], {keys.file}, set()
    for i, item in enumerate(obj["shards"]):
        name, size, crc = _file_entry(item, f"shards[{i}]")
        entry = ShardEntry(name, size, crc, epoch=_int(item, "epoch", 0, F.MAX_EPOCH_OR_RANK),
                           rank=_int(item, "rank", 0, F.MAX_EPOCH_OR_RANK),
                           records=_int(item, "records"))
        if name in names or (entry.epoch, entry.rank) in slots:
            raise _bad(f"shards[{i}] repeats a file name or an (epoch, rank) pair")
        names.add(name)
        slots.add((entry.epoch, entry.rank))
        shards.append(entry)
    return Manifest(classes=classes, k=k, keys=keys, key_count=key_count, shards=tuple(shards))


MAX_MANIFEST_BYTES = 64 << 20     # FORMAT.md 6: bounds a hostile manifest's cost


def read_manifest(folder):
    path = os.path.join(folder, MANIFEST_NAME)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise ShardError("io", f"cannot read manifest: {exc}", file=path) from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise ShardError("manifest-mismatch", f"manifest is more than {MAX_MANIFEST_BYTES} bytes",
                         file=path)
    return parse_manifest(data)


def write_manifest(folder, shard_files, keys_file=KEYS_NAME):
    """Describe the key table and the given shard files (names inside `folder`) in a new
    manifest.json. Sizes and CRCs are computed from the files; epoch, rank, records, classes
    and k from each shard's header and footer."""
    key_count = len(read_keys(os.path.join(folder, keys_file)))
    keys = FileEntry(keys_file, *file_size_and_crc(os.path.join(folder, keys_file)))
    shards, classes, k = [], None, None
    for name in shard_files:
        path = os.path.join(folder, name)
        layout = parse_layout(map_file(path))
        h = layout.header
        if classes is not None and (h.classes, h.k) != (classes, k):
            raise ValueError(f"{name}: classes/k differ from the other shards")
        classes, k = h.classes, h.k
        shards.append(ShardEntry(name, *file_size_and_crc(path), epoch=h.epoch, rank=h.rank,
                                 records=layout.records))
    if classes is None:
        raise ValueError("a manifest needs at least one shard to know classes and k")
    shards.sort(key=lambda s: (s.epoch, s.rank))
    manifest = Manifest(classes=classes, k=k, keys=keys, key_count=key_count,
                        shards=tuple(shards))
    write_atomically(os.path.join(folder, MANIFEST_NAME),
                     (json.dumps(manifest.to_json_object(), indent=1) + "\n").encode("utf-8"))
    return manifest
