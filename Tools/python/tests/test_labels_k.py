"""SoftLabels(k=...) reads the top k of each record (FORMAT.md 7) in every access path, bit-equal to a dataset
stored with K = k; SoftLabels(rank=...) follows FORMAT.md 2's lookup rule; bulk sample ids; the error for an
epoch a (still running) teacher pass has not committed."""

import json
import os
import pickle

import numpy as np
import pytest

from test_labels import CLASSES, K, KEYS, write_dataset
from tinyshard import Dataset
from tinyshard.files import file_size_and_crc
from tinyshard.keys import write_keys
from tinyshard.labels import LabelError, SoftLabels
from tinyshard.manifest import write_manifest
from tinyshard.writer import ShardWriter


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("labels-k") / "ds"
    write_dataset(folder, np.random.default_rng(5))          # K = 7, 3 epochs, 2 ranks with padding
    return str(folder)


def truncated_copy(source, target, k):
    """The same records with only their first k entries, stored with K = k (what a pass run with K = k
    stores: FORMAT.md 7)."""
    ds = Dataset(source)
    os.makedirs(target, exist_ok=True)
    write_keys(os.path.join(target, "keys.tsk"), list(ds.keys.all_keys()))
    _, crc = file_size_and_crc(os.path.join(target, "keys.tsk"))
    names = []
    for entry in ds.manifest.shards:
        header = ds.reader(entry).header
        with ShardWriter(os.path.join(target, entry.file), header.classes, k, epoch=header.epoch, rank=header.rank,
                         records_per_block=header.records_per_block, provenance={"dataset_checksum": crc}) as writer:
            for record in ds.reader(entry):
                writer.append(record.sample_id, record.indices[:k], record.values[:k])
        names.append(entry.file)
    write_manifest(target, names)
    return target


def reference_row(record, classes, k):
    """FORMAT.md 7's top-k row by hand: the k values in place, the rest max(0, 1 - sum) / (C - k)."""
    total = sum(float(v) for v in record.values[:k])
    row = np.full(classes, np.float32(max(0.0, 1.0 - total) / (classes - k)), np.float32)
    row[record.indices[:k]] = record.values[:k]
    return row


@pytest.mark.parametrize("k", [1, 3, K])
def test_top_k_everywhere_equals_a_pass_stored_with_k(dataset, tmp_path, k):
    stored = truncated_copy(dataset, str(tmp_path / f"k{k}"), k)
    ours, theirs = SoftLabels(dataset, k=k, cache_bytes=30_000), SoftLabels(stored)
    assert (ours.k, ours.stored_k, theirs.k) == (k, K, k)
    ds = Dataset(dataset)
    for epoch in (0, 2):
        ids = ours.ids_in_epoch(epoch)
        dense = ours.dense(ids, epoch=epoch)
        assert np.array_equal(dense.view(np.uint32), theirs.dense(ids, epoch=epoch).view(np.uint32))
        for row, sample in list(enumerate(ids))[:20]:
            expected = reference_row(ds.get(epoch, ds.keys[sample]), CLASSES, k)
            assert np.array_equal(dense[row].view(np.uint32), expected.view(np.uint32))
        indices, values, residual = ours.sparse(ids, epoch=epoch)
        assert indices.shape == values.shape == (len(ids), k)
        for a, b in zip((indices, values, residual), theirs.sparse(ids, epoch=epoch)):
            assert np.array_equal(a, b)
        codes, indices2, values2, residual2 = ours.records(ids, epoch=epoch)
        assert np.array_equal(indices2, indices) and np.array_equal(residual2, residual)
        # Record order (the copy keeps the block size, so the orders are the same records).
        mine = ours.in_record_order(epoch, world=2, rank=1, window=2, seed=4)
        other = theirs.in_record_order(epoch, world=2, rank=1, window=2, seed=4)
        assert len(mine) == len(other) > 0
        for a, b in zip(mine.batches(17), other.batches(17)):
            assert a.indices.shape[1] == k and np.array_equal(a.ids, b.ids)
            assert np.array_equal(a.indices, b.indices) and np.array_equal(a.values.view(np.uint16), b.values.view(np.uint16))
            assert np.array_equal(a.dense().view(np.uint32), b.dense().view(np.uint32))
        # at(): records where they are stored.
        entry = next(e for e in ds.manifest.shards if e.epoch == epoch and e.rank == 1)
        batch = ours.at([1] * 9, list(range(9)), epoch=epoch)
        assert batch.indices.shape == (9, k)
        for ordinal in range(9):
            expected = reference_row(ds.reader(entry).record(ordinal), CLASSES, k)
            assert np.array_equal(batch.dense()[ordinal].view(np.uint32), expected.view(np.uint32))


def test_k_outside_one_to_K_or_below_K_of_an_unsorted_shard(dataset, tmp_path):
    for bad in (0, K + 1, -1, True, 2.0):
        with pytest.raises(LabelError) as caught:
            SoftLabels(dataset, k=bad)
        assert caught.value.code == "bad-k" and str(caught.value).startswith(dataset)
        assert "\n" not in str(caught.value)
    with pytest.raises(LabelError, match=r"k = 8 is outside 1\.\.7"):
        SoftLabels(dataset, k=8)
    folder = str(tmp_path / "unsorted")
    os.makedirs(folder)
    write_keys(os.path.join(folder, "keys.tsk"), ["a", "b"])
    _, crc = file_size_and_crc(os.path.join(folder, "keys.tsk"))
    with ShardWriter(os.path.join(folder, "e0.tshard"), 10, 3, sorted=False,
                     provenance={"dataset_checksum": crc}) as writer:
        writer.append(0, np.array([4, 1, 2]), np.array([0.1, 0.5, 0.2]))
    write_manifest(folder, ["e0.tshard"])
    assert SoftLabels(folder, k=3).sparse([0])[0].tolist() == [[4, 1, 2]]       # k = K: all of it
    labels = SoftLabels(folder, k=2)
    with pytest.raises(LabelError) as caught:
        labels.dense([0])
    text = str(caught.value)
    assert text.startswith(f"{folder}: [bad-k] k = 2 < K = 3") and "e0.tshard" in text and "not sorted" in text


def test_k_and_rank_survive_pickling(dataset):
    labels = SoftLabels(dataset, k=2, rank=1)
    copy = pickle.loads(pickle.dumps(labels))
    assert (copy.k, copy.rank) == (2, 1)
    ids = labels.ids_in_epoch()[:30]
    assert np.array_equal(copy.dense(ids), labels.dense(ids))


@pytest.mark.parametrize("rank", [None, 0, 1, 2, 5])
def test_reading_rank_follows_the_lookup_rule(dataset, rank):
    """Samples padded into both ranks: rank r's own shard first, then r + 1, ... (mod 2); no rank: rank 0."""
    labels = SoftLabels(dataset, rank=rank)
    ds = Dataset(dataset)
    for epoch in (0, 1):
        entries = sorted((e for e in ds.manifest.shards if e.epoch == epoch), key=lambda e: e.rank)
        repeated = [r.sample_id for r in ds.reader(entries[1])][-5:]
        wins = 0 if rank is None else rank % 2
        dense = labels.dense(repeated, epoch=epoch)
        for row, sample in enumerate(repeated):
            reader = ds.reader(entries[wins])
            expected = reader.dense_row(reader.find(sample))
            assert np.array_equal(dense[row].view(np.uint32), expected.view(np.uint32))
            assert np.array_equal(dense[row], ds.dense_row(epoch, ds.keys[sample], rank))
    with pytest.raises(ValueError):
        SoftLabels(dataset, rank=-1)


def test_sample_ids_in_bulk(dataset):
    labels = SoftLabels(dataset)
    keys = [f"n{i:05d}" for i in range(KEYS)][::-1]                # 400 keys: the bulk path
    assert labels.sample_ids(keys).tolist() == list(range(KEYS))[::-1]
    assert labels.sample_ids(["n00003", "n00001"]).tolist() == [3, 1]
    assert labels.sample_ids([]).tolist() == []
    with pytest.raises(LabelError) as caught:
        labels.sample_ids(keys[:300] + ["nope"] + keys[300:])
    assert caught.value.code == "missing-sample" and "'nope'" in str(caught.value)
    assert str(caught.value).startswith(dataset) and "\n" not in str(caught.value)


def test_an_epoch_not_committed_names_the_epochs_and_the_pass(dataset, tmp_path):
    labels = SoftLabels(dataset)
    with pytest.raises(LabelError) as caught:
        labels.set_epoch(7)
    assert str(caught.value) == f"{dataset}: [missing-epoch] the dataset has no epoch 7 (it holds 3: 0, 1, 2)"
    folder = tmp_path / "running"
    write_dataset(folder, np.random.default_rng(2), epochs=2)
    record = {"format": "tinyshard-teacher-pass", "version": 1, "epochs": 5, "fingerprint": {"k": "7"}}
    (folder / "pass.json").write_text(json.dumps(record))
    running = SoftLabels(folder)
    for ask in (lambda: running.set_epoch(3), lambda: running.dense([0], epoch=4)):
        with pytest.raises(LabelError) as caught:
            ask()
        text = str(caught.value)
        assert "(it holds 2: 0, 1); its teacher pass (pass.json) is asked for 5 epochs and has committed 2 so far" \
            in text and "\n" not in text
    record["epochs"] = 2                                           # a finished pass
    (folder / "pass.json").write_text(json.dumps(record))
    with pytest.raises(LabelError) as caught:
        SoftLabels(folder).set_epoch(2)
    assert str(caught.value).endswith("is asked for 2 epochs")
    (folder / "pass.json").write_text("{not json")                 # unreadable: the epochs are still named
    with pytest.raises(LabelError, match=r"no epoch 2 \(it holds 2: 0, 1\)$"):
        SoftLabels(folder).set_epoch(2)
