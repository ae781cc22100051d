"""Lookup by reading rank (FORMAT.md section 2): a converted official pass answers every (epoch, reading
rank, key) with the record a fresh official reader of that rank returns first; without a rank, the lowest
rank's. Also the spec's dataset vectors (Spec/vectors/datasets/*.json)."""

import glob
import json
import os

import numpy as np
import pytest

from conftest import random_probabilities
from official_manager import OfficialReader, OfficialWriter
from tinyshard.convert import convert_official
from tinyshard.dataset import Dataset
from tinyshard.keys import NotFound
from tinyshard.verify import verify_dataset

VECTORS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "Spec", "vectors"))
DATASET_VECTORS = sorted(glob.glob(os.path.join(VECTORS, "datasets", "*.json")))

IMAGES, WORLD, EPOCHS, K, CLASSES = 1001, 3, 2, 5, 60
ITEM_SIZE = 4 + 4 * K                      # int32 seed | K int16 class indices | K float16 values


def value_bytes(rng):
    seed = np.array([rng.integers(-2 ** 31, 2 ** 31)], "<i4")
    indices = rng.choice(CLASSES, K, replace=False).astype("<i2")
    values = random_probabilities(rng, K).astype("<f2")
    return seed.tobytes() + indices.tobytes() + values.tobytes()


def distributed_shares(rng, count, world):
    """One epoch as PyTorch's DistributedSampler deals it: a permutation padded to a multiple of the
    world size with its own first items; rank r takes positions r, r + world, ..."""
    order = rng.permutation(count)
    total = -(-count // world) * world
    padded = np.concatenate([order, order[:total - count]])
    return [padded[rank::world] for rank in range(world)]


def official_pass(folder, rng):
    """An official-layout pass; returns the keys and, per epoch, each rank's share (image numbers)."""
    keys = [f"n{int(w):08d}_{i}.JPEG" for i, w in enumerate(rng.integers(0, 10 ** 8, IMAGES))]
    shares = []
    for epoch in range(EPOCHS):
        epoch_shares = distributed_shares(rng, IMAGES, WORLD)
        for rank, share in enumerate(epoch_shares):
            writer = OfficialWriter(os.path.join(folder, f"logits_top{K}_epoch{epoch}"), rank)
            for image in share.tolist():
                writer.write(keys[image], value_bytes(rng))
            if rank == 1:
                writer.write(keys[share[0]], value_bytes(rng))      # given twice: the writer drops it
            writer.close()
        shares.append(epoch_shares)
    return keys, shares


def record_bytes(record):
    """A record as the official value bytes (its seed is the augmentation code)."""
    return bytes(record.aug) + record.indices.astype("<i2").tobytes() + record.values.astype("<f2").tobytes()


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    source = tmp_path_factory.mktemp("official")
    keys, shares = official_pass(str(source), np.random.default_rng(21))
    target = tmp_path_factory.mktemp("dataset")
    convert_official(str(source), str(target), CLASSES, records_per_block=16)
    return str(source), str(target), keys, shares


def test_converter_keeps_every_ranks_records(converted):
    source, target, keys, shares = converted
    assert verify_dataset(target) == []
    dataset = Dataset(target)
    for epoch, epoch_shares in enumerate(shares):
        entries, _, _ = dataset.epoch_table(epoch)
        for entry, share in zip(entries, epoch_shares):
            reader = dataset.reader(entry)
            assert [dataset.keys[i] for i in reader.sample_ids().tolist()] == [keys[i] for i in share]
        padded = epoch_shares[0][0]           # the padding repeats the epoch's first item
        holders = [rank for rank, share in enumerate(epoch_shares) if padded in share]
        assert holders == [0, 2]


@pytest.mark.parametrize("reading_rank", [0, 1, 2, 4])
def test_every_lookup_is_a_fresh_official_readers_first_answer(converted, reading_rank):
    source, target, keys, _ = converted
    dataset = Dataset(target)
    for epoch in range(EPOCHS):
        folder = os.path.join(source, f"logits_top{K}_epoch{epoch}")
        for key in keys:
            official = OfficialReader(folder, ITEM_SIZE, reading_rank).read(key)
            reader, ordinal = dataset.locate(epoch, key, rank=reading_rank)
            assert record_bytes(reader.record(ordinal)) == official, (epoch, key)


def test_without_a_rank_the_lowest_rank_wins(converted):
    source, target, keys, shares = converted
    dataset = Dataset(target)
    for epoch, epoch_shares in enumerate(shares):
        folder = os.path.join(source, f"logits_top{K}_epoch{epoch}")
        for image, key in enumerate(keys):
            reader, ordinal = dataset.locate(epoch, key)
            assert reader.header.rank == min(r for r, share in enumerate(epoch_shares) if image in share)
            assert record_bytes(reader.record(ordinal)) == OfficialReader(folder, ITEM_SIZE, 0).read(key)


def test_a_used_official_reader_can_answer_otherwise(converted):
    """Why the rule is a fresh reader's answer: once a miss has loaded later packages, the official reader
    answers a padded key from the last package it loaded (FORMAT.md 2)."""
    source, target, keys, shares = converted
    dataset = Dataset(target)
    epoch_shares = shares[0]
    padded = keys[epoch_shares[0][0]]                                  # in ranks 0 and 2
    only_in_2 = keys[next(i for i in epoch_shares[2] if i not in epoch_shares[0] and i not in epoch_shares[1])]
    reader = OfficialReader(os.path.join(source, f"logits_top{K}_epoch0"), ITEM_SIZE, 0)
    reader.read(only_in_2)
    ours_0, ours_2 = (dataset.locate(0, padded, rank=r) for r in (0, 2))
    assert record_bytes(ours_0[0].record(ours_0[1])) != reader.read(padded)
    assert record_bytes(ours_2[0].record(ours_2[1])) == reader.read(padded)


def test_epoch_tables_by_reading_rank(converted):
    _, target, keys, shares = converted
    dataset = Dataset(target)
    entries, shard_of, ordinal_of = dataset.epoch_table(1, rank=1)
    assert shard_of.dtype == np.int32 and ordinal_of.dtype == np.uint32 and len(shard_of) == len(keys)
    assert [e.rank for e in entries] == [0, 1, 2]
    assert dataset.epoch_table(1, rank=4) is dataset.epoch_table(1, rank=1)       # 4 mod 3
    assert dataset._table(1) is dataset.epoch_table(1)
    padded = dataset.keys.sample_id(keys[shares[1][0][0]])         # in ranks 0 and 2
    assert [dataset.epoch_table(1, rank=r)[1][padded] for r in range(3)] == [0, 2, 2]
    for bad in (-1, 1.5, True):
        with pytest.raises((ValueError, TypeError)):
            dataset.epoch_table(1, rank=bad)


def test_missing_epoch_names_the_epochs_held(converted):
    dataset = Dataset(converted[1])
    with pytest.raises(NotFound) as caught:
        dataset.get(7, converted[2][0])
    assert "epochs 0, 1" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(KeyError):
        dataset.get(0, "not-a-key", rank=1)


def test_converter_keeps_the_first_of_a_repeat_within_a_rank(tmp_path):
    """Files the official writer cannot produce (a key twice in one rank): the first record is kept."""
    rng = np.random.default_rng(4)
    folder = tmp_path / "official" / f"logits_top{K}_epoch0"
    folder.mkdir(parents=True)
    values = [value_bytes(rng) for _ in range(3)]
    (folder / "rank0-keys.txt").write_text("b\na\nb\n")
    (folder / "rank0-values.bin").write_bytes(b"".join(values))
    convert_official(str(tmp_path / "official"), str(tmp_path / "ds"), CLASSES)
    dataset = Dataset(tmp_path / "ds")
    assert [record_bytes(dataset.get(0, key)) for key in ("b", "a")] == values[:2]
    assert len(dataset.reader(dataset.manifest.shards[0])) == 2


@pytest.mark.parametrize("case", DATASET_VECTORS, ids=[os.path.basename(c) for c in DATASET_VECTORS])
def test_dataset_vector(case):
    with open(case) as f:
        spec = json.load(f)
    dataset = Dataset(case[:-len(".json")])
    assert verify_dataset(case[:-len(".json")]) == []
    for lookup in spec["lookups"]:
        reader, ordinal = dataset.locate(lookup["epoch"], lookup["key"], rank=lookup["reader_rank"])
        assert (reader.header.rank, ordinal) == (lookup["shard_rank"], lookup["ordinal"])
        assert int.from_bytes(reader.record(ordinal).aug, "little", signed=True) == lookup["seed"]


def test_cli_convert_to_a_version_1_key_table(converted, tmp_path):
    from tinyshard.__main__ import main
    source, target, keys, _ = converted
    assert main(["convert", source, str(tmp_path / "v1"), "--classes", str(CLASSES), "--records-per-block", "16",
                 "--key-table-version", "1"]) == 0
    old, new = Dataset(tmp_path / "v1"), Dataset(target)
    assert (old.keys.version, new.keys.version) == (1, 2)
    for key in keys[::50]:
        for rank in (None, 1):
            assert record_bytes(old.get(1, key, rank)) == record_bytes(new.get(1, key, rank))
