#!/usr/bin/env python3
"""Hostile files at 1, 4 and 16 MiB, and what verifying each costs (FORMAT.md 1.6).

    python3 Tools/hostile/hostile_files.py [--bin .build/release/tinyshard] [--sizes 1,4,16] [--python]

Each attack is built to the spec's structure with every checksum valid where that gets it further.
For each file it runs `tinyshard verify` (and, with --python, the Python twin's verifier) under
/usr/bin/time and prints a table of wall time and peak memory; the curve must grow linearly and stay
within 1 s and 256 MB at 16 MiB (the valid decode bomb's work is proportional to the records it holds:
see the note printed under the table).
"""

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "Tools", "python"))

from tinyshard import format as F  # noqa: E402
from tinyshard.codec import encode_values, to_planes  # noqa: E402

MIB = 1 << 20


def header(**fields):
    base = dict(classes=1000, k=10, records_per_block=65536, provenance={"dataset_checksum": "00000000"})
    base.update(fields)
    return F.Header(**base).validate()


def finish(out, entries, records):
    index = len(out)
    out += F.pack_index(entries)
    out += F.pack_footer(len(entries), index, records)
    return bytes(out)


def fake_headers(size):
    """No footer; a fake block header every 32 bytes, each with a valid header CRC and a payload that
    runs to the end of the file (the quadratic salvage scan of issue 11)."""
    out = bytearray(F.pack_preamble_and_header(header(records_per_block=1)))
    count = (size - len(out)) // 32
    end = len(out) + 32 * count
    for i in range(count):
        offset = len(out)
        out += F.pack_block_header(1, 0, end - offset - 32, 0x12345678)
    return bytes(out)


def claimed_records(size):
    """A footer claiming B * 65536 records over B empty blocks: nothing may be sized by the claim."""
    h = header()
    out = bytearray(F.pack_preamble_and_header(h))
    blocks = (size - len(out) - 44) // 44
    entries = []
    for b in range(blocks):
        entries.append((len(out), 32))
        out += F.pack_block_header(65536, b * 65536, 0, F.crc32(b""))
    return finish(out, entries, blocks * 65536)


def wide_header(size):
    """A 1 MiB header whose unknown key holds ~500,000 numbers, then valid blocks up to `size`."""
    h = header(records_per_block=4096)
    obj = h.to_json_object()
    obj["unknown"] = [0] * ((MIB - 400) // 2)
    body = json.dumps(obj, separators=(",", ":")).encode()[:MIB]
    out = bytearray(F.PREAMBLE.pack(F.SHARD_MAGIC, 1, 1, len(body)) + body)
    out += struct.pack("<I", F.crc32(bytes(out)))
    return valid_blocks(out, h, size, random_records=True)


def valid_blocks(out, h, size, random_records):
    rng = np.random.default_rng(0)
    entries, first = [], 0
    n = h.records_per_block
    while True:
        ids = np.arange(first, first + n, dtype=np.uint32)
        if random_records:
            idx = np.sort(rng.choice(h.classes, size=(n, h.k)), axis=1)
            idx = idx + np.arange(h.k)                      # strictly ascending, below C + K
            idx = np.minimum(idx, h.classes - h.k + np.arange(h.k))
            values = np.zeros((n, h.k), np.uint16)
            values[:, 0] = 0x3800
        else:
            idx = np.tile(np.arange(h.k), (n, 1))
            values = np.zeros((n, h.k), np.uint16)
            values[:, 0] = 0x3C00
        sections = [to_planes(ids, 4), np.zeros((n, h.aug_bytes), np.uint8), encode_values(values),
                    _gaps(idx, h.index_width), np.zeros(n * h.order_bytes, np.uint8)]
        payload = b"".join(_section(s) for s in sections)
        block = F.pack_block_header(n, first, len(payload), F.crc32(payload)) + payload
        if len(out) + len(block) + 12 * (len(entries) + 1) + 44 > size:
            break
        entries.append((len(out), len(block)))
        out += block
        first += n
    return finish(out, entries, first)


def _gaps(idx, width):
    gaps = idx.copy()
    gaps[:, 1:] = idx[:, 1:] - idx[:, :-1] - 1
    return to_planes(gaps.astype(np.uint32), width)


def _section(raw):
    raw = bytes(raw)
    packed = zlib.compress(raw, 9)
    return F.pack_section(1, packed, len(raw)) if len(packed) < len(raw) else F.pack_section(0, raw, len(raw))


def decode_bomb(size):
    """Valid records that compress ~1000:1 (one-hot, sequential ids, identity order): legal, and the
    verifier must decode every one (work proportional to the records, FORMAT.md 1.6)."""
    h = header(classes=256, k=1, records_per_block=65536)
    return valid_blocks(bytearray(F.pack_preamble_and_header(h)), h, size, random_records=False)


def keys_dataset(size, claim=False):
    """A dataset whose keys.tsk is ~`size` bytes. Default: real, ascending keys whose shared prefix is
    tuned so they inflate just under 32:1, the most the spec allows (the largest legal work). With
    `claim`: random stored bytes (CRC valid) under a head claiming 1000:1 and 2^32 - 1 keys (the 437 KB
    file of issue 11 that asked for 3.6 GB), refused by the ratio rule before inflating."""
    if claim:
        stored = np.random.default_rng(2).integers(0, 256, size - 24, dtype=np.uint8).tobytes()
        table = struct.pack("<4sIIIII", b"TSKY", 1, 0xFFFFFFFF, len(stored), min(1000 * len(stored), 0xFFFFFFFF),
                            F.crc32(stored)) + stored
        count = 0xFFFFFFFF
    else:
        rng = np.random.default_rng(1)

        def keys(prefix, start, n):
            tails = rng.integers(0, 1 << 30, n)
            return b"".join(b"%s%010d%09d\n" % (b"p" * prefix, start + i, tails[i]) for i in range(n))

        low, high = 8, 2000                          # the prefix that inflates just under 32:1
        while low < high:
            middle = (low + high + 1) // 2
            sample = keys(middle, 0, 4000)
            if len(sample) <= 31 * len(zlib.compress(sample, 6)):
                low = middle
            else:
                high = middle - 1
        per_key = low + 20
        count = int(size * 31 / per_key)
        text = keys(low, 0, count)
        stored = zlib.compress(text, 6)
        table = struct.pack("<4sIIIII", b"TSKY", 1, count, len(stored), len(text), F.crc32(stored)) + stored
    manifest = {"format": "tinyshard-dataset", "version": 1, "classes": 10, "k": 1,
                "keys": {"file": "keys.tsk", "count": count, "bytes": len(table),
                         "crc32": "%08x" % F.crc32(table)}, "shards": []}
    return {"keys.tsk": table, "manifest.json": json.dumps(manifest).encode()}


def manifest_many(size):
    """A manifest listing ~size/90 shards that do not exist."""
    shards, total, i = [], 0, 0
    while total < size - 200:
        entry = {"file": "s%07d.tshard" % i, "epoch": i // 1000, "rank": i % 1000, "records": 1, "bytes": 1,
                 "crc32": "00000000"}
        total += len(json.dumps(entry)) + 2
        shards.append(entry)
        i += 1
    manifest = {"format": "tinyshard-dataset", "version": 1, "classes": 10, "k": 1,
                "keys": {"file": "keys.tsk", "count": 0, "bytes": 24, "crc32": "00000000"}, "shards": shards}
    stored = zlib.compress(b"")
    empty = struct.pack("<4sIIIII", b"TSKY", 1, 0, len(stored), 0, F.crc32(stored)) + stored
    manifest["keys"]["bytes"] = len(empty)
    manifest["keys"]["crc32"] = "%08x" % F.crc32(empty)
    return {"keys.tsk": empty, "manifest.json": json.dumps(manifest).encode()}


def manifest_wide(size):
    """A valid manifest whose unknown key holds `size`/2 numbers."""
    files = manifest_many(0)
    manifest = json.loads(files["manifest.json"])
    manifest["shards"] = []
    manifest["unknown"] = [0] * (size // 2 - 200)
    files["manifest.json"] = json.dumps(manifest, separators=(",", ":")).encode()
    return files


ATTACKS = [
    ("fake block headers, no footer (salvage scan)", fake_headers),
    ("footer claims B x 65536 records", claimed_records),
    ("1 MiB header JSON + valid blocks", wide_header),
    ("manifest: unknown key, wide array", manifest_wide),
    ("manifest: many missing shards", manifest_many),
    ("key table at the 32:1 ratio limit (valid)", keys_dataset),
    ("key table claiming 1000:1, 2^32-1 keys", lambda size: keys_dataset(size, claim=True)),
    ("valid decode bomb (one-hot, ~1000:1)", decode_bomb),
]


def measure(command):
    result = subprocess.run(["/usr/bin/time", "-f", "%e %M", *command], capture_output=True, text=True)
    seconds, kb = result.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(kb) // 1024, result.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build", "release", "tinyshard"))
    parser.add_argument("--sizes", default="1,4,16")
    parser.add_argument("--python", action="store_true", help="also time the Python twin's verifier")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    columns = ["attack"] + [f"{s} MiB: s / MB / exit" for s in sizes]
    if args.python:
        columns += [f"python {s} MiB: s / MB / exit" for s in sizes]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    disagreements = []
    with tempfile.TemporaryDirectory() as work:
        for name, build in ATTACKS:
            cells, python_cells = [], []
            for size in sizes:
                made = build(size * MIB)
                if isinstance(made, dict):
                    path = os.path.join(work, f"{len(cells)}-{name[:8].replace(' ', '_')}-{size}")
                    os.makedirs(path, exist_ok=True)
                    for file, data in made.items():
                        with open(os.path.join(path, file), "wb") as f:
                            f.write(data)
                else:
                    path = os.path.join(work, f"{len(cells)}-{name[:8].replace(' ', '_')}-{size}.tshard")
                    with open(path, "wb") as f:
                        f.write(made)
                seconds, mb, code = measure([args.bin, "verify", path, "--threads", "1"])
                cells.append(f"{seconds:.2f} / {mb} / {code}")
                if args.python:
                    seconds, mb, python_code = measure([sys.executable, "-m", "tinyshard", "verify", path])
                    python_cells.append(f"{seconds:.2f} / {mb} / {python_code}")
                    if python_code != code:
                        disagreements.append(f"{name}, {size} MiB: Swift exit {code}, Python exit {python_code}")
            print("| " + " | ".join([name] + cells + python_cells) + " |", flush=True)
    print("\nexit: 0 clean, 1 problems found (the expected verdict for every attack but the decode bomb, "
          "which is valid), 2 unreadable.")
    if args.python:
        print("Swift and Python verdicts: " + ("the same on every file" if not disagreements
                                               else "DIFFERENT on " + "; ".join(disagreements)))
    return 1 if disagreements else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", os.path.join(ROOT, "Tools", "python"))
    sys.exit(main())
