"""Cross tests against the Swift implementation (the `tinyshard` CLI built from this repository).

Each side reads what the other writes, record for record; both convert the official fixtures to the same
records; both verifiers catch the same byte flips. The binary is $TINYSHARD_BIN, else
<repo>/.build/debug/tinyshard. When TINYSHARD_BIN is set (CI sets it) a missing binary is a failure;
otherwise these tests skip with a message.
"""

import glob
import json
import os
import subprocess

import numpy as np
import pytest

from conftest import FIXTURES, random_probabilities
from test_keys_v2 import (DIRECTORY_BREAKS, HEAD_BREAKS, PAGE_BREAKS, directory_break, head_break, page_break,
                          parts_of)
from tinyshard import Dataset, ShardReader, ShardWriter, verify_dataset, verify_shard
from tinyshard.augment import Box, Mix, Op, Params, View, encode_params
from tinyshard.files import file_size_and_crc
from tinyshard.keys import KeyTable, encode_keys, write_keys
from tinyshard.manifest import write_manifest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BINARY = os.environ.get("TINYSHARD_BIN") or os.path.join(ROOT, ".build", "debug", "tinyshard")

if not os.access(BINARY, os.X_OK):
    if os.environ.get("TINYSHARD_BIN"):
        raise RuntimeError(f"TINYSHARD_BIN={BINARY} is not an executable: build it first (swift build)")
    pytest.skip(f"no Swift tinyshard binary at {BINARY}: run `swift build` first (or set TINYSHARD_BIN)",
                allow_module_level=True)


def swift(*args, check=True):
    result = subprocess.run([BINARY, *map(str, args)], capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"tinyshard {' '.join(map(str, args))} exited {result.returncode}: {result.stderr}")
    return result


def swift_records(path):
    """Every record of a shard or dataset as the Swift reader decodes it, keyed by (epoch, rank, ordinal)."""
    lines = swift("dump", path, "--hex-augmentation").stdout.splitlines()
    records = {}
    for line in lines:
        row = json.loads(line)
        records[(row["epoch"], row["rank"], row["ordinal"])] = row
    return records


def value_bits(decimals):
    """Swift prints float16 values in their shortest round-tripping decimal form."""
    return np.array(decimals, dtype=np.float16).view(np.uint16)


def assert_same_record(swift_row, record):
    assert swift_row["sample_id"] == record.sample_id
    assert swift_row["indices"] == [int(i) for i in record.indices]
    assert value_bits(swift_row["values"]).tolist() == record.values.view(np.uint16).tolist()
    aug = swift_row["augmentation"]
    assert (aug["hex"] if aug else "") == bytes(record.aug).hex()


@pytest.mark.parametrize("name,classes", [("in1k_top10", 1000), ("in22k_top100", 21841)])
def test_swift_converted_fixture_reads_identically(tmp_path, name, classes):
    source = os.path.join(FIXTURES, name)
    if not os.path.isdir(source):
        pytest.skip(f"fixture {source} absent")
    out = tmp_path / "dataset"
    swift("convert", "official", source, "--out", out, "--classes", classes)
    assert verify_dataset(out) == []
    dataset = Dataset(out)
    seen = 0
    for (epoch, rank, ordinal), row in swift_records(out).items():
        # Read as the writer rank reads (FORMAT.md 2): its own shard first, so a padded sample that several
        # ranks hold is found in the shard Swift listed it from.
        reader, found = dataset.locate(epoch, row["key"], rank=rank)
        assert found == ordinal and reader.header.rank == rank
        assert_same_record(row, reader.record(ordinal))
        seen += 1
    assert seen == sum(len(dataset.reader(entry)) for entry in dataset.manifest.shards)

    # The records are the official ones (lowest rank wins): compare with the official files directly.
    k = dataset.k
    dtype = np.dtype([("seed", "<i4"), ("index", "<i2", (k,)), ("value", "<f2", (k,))])
    for folder in sorted(glob.glob(os.path.join(source, "logits_top*_epoch*"))):
        epoch = int(folder.rsplit("epoch", 1)[1])
        winners = {}
        for rank in range(2):
            keys = open(os.path.join(folder, f"rank{rank}-keys.txt")).read().split()
            values = np.fromfile(os.path.join(folder, f"rank{rank}-values.bin"), dtype=dtype)
            for key, official in zip(keys, values):
                winners.setdefault(key, official)
        for key, official in winners.items():
            record = dataset.get(epoch, key)
            assert int(np.frombuffer(bytes(record.aug), "<i4")[0]) == int(official["seed"])
            assert record.indices.tolist() == official["index"].astype(np.int64).tolist()
            assert record.values.view(np.uint16).tolist() == official["value"].view(np.uint16).tolist()


def test_both_writers_write_the_same_key_table(tmp_path):
    """Same keys, same version-2 bytes: pages of 256 keys, zlib level 6 on both sides (FORMAT.md 5.2 lets a
    writer pick; agreeing makes a dataset's keys.tsk, and so every shard's dataset_checksum, writer-
    independent)."""
    source = os.path.join(FIXTURES, "in1k_top10")
    if not os.path.isdir(source):
        pytest.skip(f"fixture {source} absent")
    swift("convert", "official", source, "--out", tmp_path / "ds", "--classes", 1000)
    written = (tmp_path / "ds" / "keys.tsk").read_bytes()
    table = KeyTable.open(tmp_path / "ds" / "keys.tsk")
    assert table.version == 2 and encode_keys(list(table.all_keys())) == written


def key_table_dataset(folder, data):
    """A dataset folder of one key table and no shard (FORMAT.md 6 allows that)."""
    folder.mkdir()
    (folder / "keys.tsk").write_bytes(data)
    size, crc = file_size_and_crc(folder / "keys.tsk")
    manifest = {"format": "tinyshard-dataset", "version": 1, "classes": 10, "k": 2,
                "keys": {"file": "keys.tsk", "count": 7, "bytes": size, "crc32": crc}, "shards": []}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_both_verifiers_judge_damaged_key_tables_alike(tmp_path):
    """Each rule of the version-2 head, directory and pages broken alone: both verifiers find the damage,
    with the code FORMAT.md 5 gives, in the key table."""
    cases = [(f"head-{n}", head_break, n) for n in HEAD_BREAKS] + \
        [(f"directory-{n}", directory_break, n) for n in DIRECTORY_BREAKS] + \
        [(f"page-{n}", page_break, n) for n in PAGE_BREAKS]
    disagreements = []
    for label, make, name in cases:
        folder = key_table_dataset(tmp_path / label, make(name, parts_of()))
        python_codes = {p.code for p in verify_dataset(folder)}
        result = swift("verify", folder, "--json", check=False)
        swift_codes = {p["code"] for p in json.loads(result.stdout)["problems"]} if result.stdout else {"io"}
        if python_codes != swift_codes or python_codes != {"bad-keys"}:
            disagreements.append((label, python_codes, swift_codes))
    assert disagreements == []


def random_box(rng, width, height):
    w, h = int(rng.integers(1, width + 1)), int(rng.integers(1, height + 1))
    return Box(int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h)


def random_params(rng, output_size, sample_count):
    """Valid params-v1 parameters on the spec's grid."""
    out_h, out_w = output_size

    def view():
        w, h = int(rng.integers(32, 600)), int(rng.integers(32, 600))
        ops = tuple(Op(int(rng.integers(0, 15)), int(rng.integers(0, 1001)), bool(rng.integers(0, 2)))
                    for _ in range(int(rng.integers(0, 4))))
        erase = random_box(rng, out_w, out_h) if rng.random() < 0.3 else None
        return View(source_width=w, source_height=h, crop=random_box(rng, w, h), flip=bool(rng.integers(0, 2)),
                    ops=ops, erase=erase, erase_seed=int(rng.integers(0, 2**32)) if erase else 0)

    mode = int(rng.integers(0, 3))
    mix = None
    if mode:
        mix = Mix(mode=mode, lam_q=int(rng.integers(0, 65536)), partner_id=int(rng.integers(0, sample_count)),
                  partner_view=view(), box=random_box(rng, out_w, out_h) if mode == 2 else None)
    return Params(view=view(), mix=mix)


def write_python_dataset(folder, rng):
    """Two epochs x two ranks of a params-augmented probability schema, written by the Python writer."""
    folder.mkdir()
    write_keys(folder / "keys.tsk", [f"img_{i:05d}" for i in range(300)])
    _, keys_crc = file_size_and_crc(folder / "keys.tsk")
    schema = dict(classes=5000, k=17, augmentation_kind="params", output_size=(224, 192), records_per_block=37)
    names = []
    expected = {}
    for epoch in range(2):
        for rank in range(2):
            name = f"e{epoch}r{rank}.tshard"
            with ShardWriter(folder / name, epoch=epoch, rank=rank,
                             provenance={"dataset_checksum": keys_crc, "writer": "python-cross-test"},
                             **schema) as writer:
                for ordinal, sample in enumerate(rng.permutation(300)[:120]):
                    indices = rng.choice(schema["classes"], schema["k"], replace=False)
                    values = random_probabilities(rng, schema["k"])
                    code = encode_params(random_params(rng, schema["output_size"], 300), schema["output_size"])
                    writer.append(int(sample), indices, values, code)
                    expected[(epoch, rank, ordinal)] = int(sample)
            names.append(name)
    write_manifest(folder, names)
    return expected


def test_python_written_dataset_reads_identically_in_swift(tmp_path):
    rng = np.random.default_rng(5)
    folder = tmp_path / "py"
    expected = write_python_dataset(folder, rng)
    assert verify_dataset(folder) == []
    assert swift("verify", folder).returncode == 0
    rows = swift_records(folder)
    assert sorted(rows) == sorted(expected)
    dataset = Dataset(folder)
    for entry in dataset.manifest.shards:
        reader = dataset.reader(entry)
        for ordinal in range(len(reader)):
            assert_same_record(rows[(entry.epoch, entry.rank, ordinal)], reader.record(ordinal))


def test_swift_demo_dataset_reads_identically_in_python(tmp_path):
    out = tmp_path / "demo"
    swift("demo", "--out", out, "--records", 300, "--records-per-block", 64)
    assert verify_dataset(out) == []
    dataset = Dataset(out)
    rows = swift_records(out)
    for entry in dataset.manifest.shards:
        reader = dataset.reader(entry)
        assert len(reader) == 300
        for ordinal in range(len(reader)):
            assert_same_record(rows[(entry.epoch, entry.rank, ordinal)], reader.record(ordinal))


def test_both_verifiers_catch_every_byte_flip(tmp_path):
    """Flip every byte of a small Swift-written shard: Python's verifier and Swift's both report it."""
    out = tmp_path / "small"
    swift("demo", "--out", out, "--records", 6, "--epochs", 1, "--ranks", 1, "--records-per-block", 4,
          "--classes", 50, "--k", 3)
    shard = next(out.glob("*.tshard"))
    original = shard.read_bytes()
    flipped = tmp_path / "flipped.tshard"
    disagreements = []
    for offset in range(len(original)):
        data = bytearray(original)
        data[offset] ^= 0x5A
        flipped.write_bytes(bytes(data))
        python_codes = {problem.code for problem in verify_shard(flipped)}
        result = swift("verify", flipped, "--json", check=False)
        swift_codes = {problem["code"] for problem in json.loads(result.stdout)["problems"]} if result.stdout else {"io"}
        if not python_codes or result.returncode != 1:
            disagreements.append((offset, python_codes, result.returncode))
    assert disagreements == [], f"flips one verifier missed: {disagreements[:10]}"
