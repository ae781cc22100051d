"""Key table, manifest, Dataset lookup and the dataset verifier (FORMAT.md sections 5-6)."""

import json
import os
import zlib

import numpy as np
import pytest

from tinyshard.dataset import Dataset
from tinyshard.errors import ShardError
from tinyshard.files import file_size_and_crc
from tinyshard.keys import KEYS_HEAD, decode_keys, encode_keys, write_keys
from tinyshard.manifest import write_manifest
from tinyshard.verify import verify_dataset, verify_shard
from tinyshard.writer import ShardWriter

from conftest import assemble, block_of, header, random_probabilities

KEYS = sorted(["cat", "dog", "eel", "émeu", "n01440764_10026", "zebra", "ant"])


def make_dataset(folder, keys=KEYS, epochs=2, ranks=2, shared=("dog",)):
    """Each epoch: keys split over ranks; keys in `shared` are in every rank (rank-specific
    values, so lookups show which rank won)."""
    write_keys(os.path.join(folder, "keys.tsk"), keys)
    checksum = file_size_and_crc(os.path.join(folder, "keys.tsk"))[1]
    rng = np.random.default_rng(0)
    names, truth = [], {}
    for epoch in range(epochs):
        for rank in range(ranks):
            name = f"epoch{epoch:04d}-rank{rank:03d}.tshard"
            with ShardWriter(os.path.join(folder, name), 50, 4, augmentation_kind="seed",
                             epoch=epoch, rank=rank, records_per_block=2,
                             provenance={"dataset_checksum": checksum}) as writer:
                for sample_id, key in enumerate(keys):
                    if sample_id % ranks != rank and key not in shared:
                        continue
                    indices = rng.choice(50, 4, replace=False)
                    values = random_probabilities(rng, 4)
                    seed = epoch * 100 + rank
                    writer.append(sample_id, indices, values, seed.to_bytes(4, "little"))
                    truth.setdefault((epoch, key), (indices, values.astype(np.float16), seed))
            names.append(name)
    write_manifest(folder, names)
    return truth


@pytest.fixture
def dataset_dir(tmp_path):
    truth = make_dataset(str(tmp_path))
    return str(tmp_path), truth


def test_key_table_round_trip():
    assert decode_keys(encode_keys(KEYS)) == KEYS
    assert decode_keys(encode_keys([])) == []


@pytest.mark.parametrize("keys", [["b", "a"], ["a", "a"], ["a", ""], ["a\nb"], ["a\rb"],
                                  ["a\0"]])
def test_key_table_rules(keys):
    with pytest.raises(ShardError) as info:
        encode_keys(keys)
    assert info.value.code == "bad-keys"
    text = "".join(k + "\n" for k in keys).encode()
    stored = zlib.compress(text)
    data = KEYS_HEAD.pack(b"TSKY", 1, len(keys), len(stored), len(text), zlib.crc32(stored)) \
        + stored
    with pytest.raises(ShardError) as info:
        decode_keys(data)
    assert info.value.code == "bad-keys"


def test_key_table_damage():
    good = encode_keys(KEYS)
    assert decode_keys(good) == KEYS
    for at in range(len(good)):
        damaged = bytearray(good)
        damaged[at] ^= 0xFF
        with pytest.raises(ShardError) as info:
            decode_keys(bytes(damaged))
        assert info.value.code in ("bad-magic", "unsupported-version", "bad-keys")
    for size in range(len(good)):
        with pytest.raises(ShardError):
            decode_keys(good[:size])


def test_lookup_by_epoch_and_key(dataset_dir):
    folder, truth = dataset_dir
    dataset = Dataset(folder)
    assert dataset.epochs() == [0, 1] and len(dataset.keys) == len(KEYS)
    for (epoch, key), (indices, values, seed) in truth.items():
        record = dataset.get(epoch, key)
        assert record.indices.tolist() == indices.tolist()
        assert record.values.tolist() == values.tolist()
        assert int.from_bytes(record.aug, "little") == seed
    assert dataset.get(1, "dog").aug == (100).to_bytes(4, "little")    # lowest rank wins
    with pytest.raises(KeyError):
        dataset.get(0, "unicorn")
    dense = dataset.dense(0, ["cat", "zebra"])
    assert dense.shape == (2, 50) and np.allclose(dense.sum(axis=1), 1, atol=1e-3)


def test_clean_dataset_verifies(dataset_dir):
    assert verify_dataset(dataset_dir[0]) == []


def rewrite_manifest(folder, change):
    path = os.path.join(folder, "manifest.json")
    obj = json.load(open(path))
    change(obj)
    open(path, "w").write(json.dumps(obj))


@pytest.mark.parametrize("change", [
    lambda m: m["shards"][0].update(records=99),
    lambda m: m["shards"][0].update(rank=7),
    lambda m: m["shards"][1].update(bytes=5),
    lambda m: m["keys"].update(count=3),
    lambda m: m["keys"].update(crc32="abcdef12"),
    lambda m: m["keys"].update(crc32="ABCDEF12"),
    lambda m: m.update(classes=51),
    lambda m: m["shards"][0].update(file="../x.tshard"),
    lambda m: m["shards"].append(dict(m["shards"][0])),
])
def test_manifest_mismatch(dataset_dir, change):
    folder, _ = dataset_dir
    rewrite_manifest(folder, change)
    found = verify_dataset(folder)
    assert found and found[0].code == "manifest-mismatch"
    with pytest.raises(ShardError) as info:       # the reader sees it too, at open or first use
        dataset = Dataset(folder)
        for epoch in dataset.epochs():
            dataset.get(epoch, "cat")
            dataset.get(epoch, "ant")
    assert info.value.code == "manifest-mismatch"


def test_manifest_version(dataset_dir):
    folder, _ = dataset_dir
    rewrite_manifest(folder, lambda m: m.update(version=2))
    assert [p.code for p in verify_dataset(folder)] == ["unsupported-version"]


def test_sample_id_beyond_key_table(tmp_path):
    folder = str(tmp_path)
    make_dataset(folder, keys=KEYS[:3], epochs=1, ranks=1, shared=())
    checksum = file_size_and_crc(os.path.join(folder, "keys.tsk"))[1]
    with ShardWriter(os.path.join(folder, "epoch0000-rank001.tshard"), 50, 4,
                     augmentation_kind="seed", rank=1,
                     provenance={"dataset_checksum": checksum}) as writer:
        writer.append(3, [1, 2, 3, 4], [0.4, 0.3, 0.2, 0.1], bytes(4))
    write_manifest(folder, ["epoch0000-rank000.tshard", "epoch0000-rank001.tshard"])
    found = verify_dataset(folder)
    assert [(p.code, p.sample_id) for p in found] == [("manifest-mismatch", 3)]
    with pytest.raises(ShardError) as info:
        Dataset(folder).get(0, "ant")
    assert info.value.code == "manifest-mismatch"


def test_shard_crc_is_checked_by_the_verifier(dataset_dir):
    folder, _ = dataset_dir
    rewrite_manifest(folder, lambda m: m["shards"][1].update(crc32="00000000"))
    assert [p.code for p in verify_dataset(folder)] == ["manifest-mismatch"]


def test_damaged_shard_in_dataset(dataset_dir):
    folder, _ = dataset_dir
    path = os.path.join(folder, "epoch0000-rank000.tshard")
    data = bytearray(open(path, "rb").read())
    data[-100] ^= 1                                  # inside the last block
    open(path, "wb").write(data)
    assert [p.code for p in verify_dataset(folder)] == ["manifest-mismatch", "block-crc"]


def test_problem_names_the_sample_key(write_file):
    h = header()
    data = assemble(h, [block_of(h, 0, [2], [[1, 2, 3]], [[0.25, 0.5, 0.125]])], 1)
    (problem,) = verify_shard(write_file(data), keys=KEYS)
    assert (problem.code, problem.sample_id, problem.key) == ("not-sorted", 2, KEYS[2])


def test_dataset_checksum_must_match(tmp_path):
    folder = str(tmp_path)
    make_dataset(folder, epochs=1, ranks=1)
    write_keys(os.path.join(folder, "keys.tsk"), [k.replace("zebra", "zebu") for k in KEYS])
    write_manifest(folder, ["epoch0000-rank000.tshard"])
    found = verify_dataset(folder)
    assert [p.code for p in found] == ["manifest-mismatch"]
    assert "dataset_checksum" in found[0].message


def test_missing_files(tmp_path, dataset_dir):
    assert [p.code for p in verify_dataset(str(tmp_path / "nowhere"))] == ["io"]
    folder, _ = dataset_dir
    os.remove(os.path.join(folder, "epoch0001-rank001.tshard"))
    assert [p.code for p in verify_dataset(folder)] == ["io"]
    os.remove(os.path.join(folder, "keys.tsk"))
    assert [p.code for p in verify_dataset(folder)] == ["io", "io"]
