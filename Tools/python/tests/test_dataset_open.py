"""Dataset open is O(1) in keys and records (FORMAT.md 6): the manifest and the key table's head; the key
table's pages are read by the lookups that land in them, and damage there is an error for exactly those."""

import json
import os

import numpy as np
import pytest

from conftest import random_probabilities
from test_keys_v2 import Parts
from tinyshard.dataset import Dataset
from tinyshard.errors import ShardError
from tinyshard.files import file_size_and_crc
from tinyshard.keys import encode_keys, write_keys
from tinyshard.verify import verify_dataset
from tinyshard.writer import ShardWriter

KEYS = [f"img{i:04d}" for i in range(600)]


def small_dataset(folder, key_bytes):
    """One epoch, one rank, a record for every third key, over the given key table bytes (the manifest
    is written here: write_manifest reads the whole key table, which may be damaged on purpose)."""
    with open(os.path.join(folder, "keys.tsk"), "wb") as f:
        f.write(key_bytes)
    keys_size, keys_crc = file_size_and_crc(os.path.join(folder, "keys.tsk"))
    rng = np.random.default_rng(1)
    with ShardWriter(os.path.join(folder, "e0.tshard"), 30, 3, augmentation_kind="seed", records_per_block=8,
                     provenance={"dataset_checksum": keys_crc}) as writer:
        for sample_id in range(0, len(KEYS), 3):
            writer.append(sample_id, rng.choice(30, 3, replace=False), random_probabilities(rng, 3),
                          sample_id.to_bytes(4, "little"))
    shard_size, shard_crc = file_size_and_crc(os.path.join(folder, "e0.tshard"))
    manifest = {"format": "tinyshard-dataset", "version": 1, "classes": 30, "k": 3,
                "keys": {"file": "keys.tsk", "count": len(KEYS), "bytes": keys_size, "crc32": keys_crc},
                "shards": [{"file": "e0.tshard", "epoch": 0, "rank": 0, "records": 200, "bytes": shard_size,
                            "crc32": shard_crc}]}
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(manifest, f)


@pytest.mark.parametrize("version", [1, 2])
def test_lookups_over_either_version(tmp_path, version):
    small_dataset(str(tmp_path), encode_keys(KEYS, version=version))
    dataset = Dataset(tmp_path)
    assert dataset.keys.version == version and len(dataset.keys) == len(KEYS)
    for key in KEYS[::3]:
        assert int.from_bytes(dataset.get(0, key).aug, "little") == KEYS.index(key)
    with pytest.raises(KeyError):
        dataset.get(0, KEYS[1])                             # a key without a record in the epoch
    assert dataset.keys_in_epoch(0) == KEYS[::3]
    assert verify_dataset(tmp_path) == []


def damaged_table(page):
    parts = Parts(encode_keys(KEYS, keys_per_page=100))
    parts.stored[page] = b"not a zlib stream"
    return parts.bytes()


def test_open_reads_no_page_and_damage_meets_only_its_lookups(tmp_path):
    small_dataset(str(tmp_path), damaged_table(2))        # the manifest describes the damaged file
    dataset = Dataset(tmp_path)
    assert len(dataset.keys) == 600
    assert int.from_bytes(dataset.get(0, "img0000").aug, "little") == 0
    assert int.from_bytes(dataset.get(0, "img0399").aug, "little") == 399
    with pytest.raises(ShardError) as caught:
        dataset.get(0, "img0201")
    error = caught.value
    assert error.code == "bad-keys" and error.file == os.path.join(tmp_path, "keys.tsk")
    assert str(error).count("\n") == 0 and "page 2" in str(error)
    with pytest.raises(ShardError):
        dataset.keys_in_epoch(0)                              # reads every page
    problems = verify_dataset(tmp_path)
    assert [(p.code, p.message.split(":")[0]) for p in problems] == [("bad-keys", "page 2")]


def rewrite_manifest(folder, change):
    path = os.path.join(folder, "manifest.json")
    with open(path) as f:
        manifest = json.load(f)
    change(manifest)
    with open(path, "w") as f:
        json.dump(manifest, f)


@pytest.mark.parametrize("field,value", [("count", 599), ("bytes", 1)])
def test_count_and_size_are_checked_at_open(tmp_path, field, value):
    small_dataset(str(tmp_path), encode_keys(KEYS))
    rewrite_manifest(str(tmp_path), lambda m: m["keys"].update({field: value}))
    with pytest.raises(ShardError) as caught:
        Dataset(tmp_path)
    assert caught.value.code == "manifest-mismatch" and caught.value.file.endswith("keys.tsk")


def test_key_table_crc_is_checked_on_whole_reads(tmp_path):
    """A key table that differs from the manifest's CRC (the shards agree with the manifest): opening and
    single lookups do not read the whole file; a whole read does, and the verifier always."""
    small_dataset(str(tmp_path), encode_keys(KEYS))
    path = os.path.join(tmp_path, "keys.tsk")
    write_keys(path, KEYS[:599] + ["img0600"])                 # other bytes; the manifest gets their size
    rewrite_manifest(str(tmp_path), lambda m: m["keys"].update(bytes=os.path.getsize(path)))
    dataset = Dataset(tmp_path)
    assert int.from_bytes(dataset.get(0, "img0003").aug, "little") == 3
    with pytest.raises(ShardError) as caught:
        dataset.keys_in_epoch(0)
    assert caught.value.code == "manifest-mismatch"
    assert [p.code for p in verify_dataset(tmp_path)] == ["manifest-mismatch"]
