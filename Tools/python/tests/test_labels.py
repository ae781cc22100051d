"""SoftLabels: batch targets by (epoch, sample) equal to the reader's section-7 rows bit for bit, through
cache evictions, several ranks and epochs; bad input as one-line errors naming file, block and record."""

import os
import pickle

import numpy as np
import pytest

from conftest import random_probabilities
from tinyshard import Dataset, ShardError, _process
from tinyshard.files import file_size_and_crc
from tinyshard.keys import write_keys
from tinyshard.labels import LabelError, SoftLabels, scatter_dense
from tinyshard.manifest import write_manifest
from tinyshard.writer import ShardWriter

CLASSES, K, KEYS = 300, 7, 400


def write_dataset(folder, rng, epochs=3, ranks=2, per_rank=150, per_block=16, value_kind="probability",
                  overlap=True):
    """A dataset of `epochs` x `ranks` shards; with overlap, rank 1 repeats some of rank 0's samples
    (DistributedSampler padding), which readers must resolve to rank 0's record."""
    os.makedirs(folder, exist_ok=True)
    keys = [f"n{i:05d}" for i in range(KEYS)]
    write_keys(os.path.join(folder, "keys.tsk"), keys)
    _, crc = file_size_and_crc(os.path.join(folder, "keys.tsk"))
    names = []
    for epoch in range(epochs):
        order = rng.permutation(KEYS)
        for rank in range(ranks):
            part = list(order[rank * per_rank:(rank + 1) * per_rank])
            if overlap and rank == ranks - 1:
                part += list(order[:5])
            name = f"epoch{epoch:04d}-rank{rank:03d}.tshard"
            with ShardWriter(os.path.join(folder, name), CLASSES, K, value_kind=value_kind,
                             sorted=value_kind == "probability", epoch=epoch, rank=rank,
                             records_per_block=per_block, provenance={"dataset_checksum": crc}) as writer:
                for sample in part:
                    values = random_probabilities(rng, K) if value_kind == "probability" else rng.normal(size=K)
                    writer.append(int(sample), rng.choice(CLASSES, K, replace=False), values)
            names.append(name)
    write_manifest(folder, names)
    return keys


@pytest.fixture
def dataset(tmp_path):
    folder = tmp_path / "ds"
    write_dataset(folder, np.random.default_rng(0))
    return str(folder)


def reference(dataset, epoch, ids):
    ds = Dataset(dataset)
    return np.stack([ds.dense_row(epoch, ds.keys[i]) for i in ids])


@pytest.mark.parametrize("cache_bytes", [1, 20_000, 1 << 24])
def test_dense_bit_equal_to_reader(dataset, cache_bytes):
    labels = SoftLabels(dataset, cache_bytes=cache_bytes)
    assert labels.epochs == [0, 1, 2] and labels.epoch == 0 and labels.classes == CLASSES
    rng = np.random.default_rng(1)
    ds = Dataset(dataset)
    for epoch in (0, 2, 1, 0):
        labels.set_epoch(epoch)
        ids = labels.ids_in_epoch()
        assert len(ids) == 300
        for _ in range(6):
            pick = rng.choice(ids, 40)
            dense = labels.dense(pick)
            assert dense.view(np.uint32).tolist() == reference(dataset, epoch, pick).view(np.uint32).tolist()
            indices, values, residual = labels.sparse(pick)
            rebuilt = scatter_dense(indices, values, residual, CLASSES)
            assert np.array_equal(rebuilt.view(np.uint32), dense.view(np.uint32))
            codes, idx2, _, _ = labels.records(pick)
            assert codes.shape == (40, 0) and np.array_equal(idx2, indices)
            for row, sample in enumerate(pick[:5]):
                record = ds.get(epoch, ds.keys[sample])
                assert indices[row].tolist() == record.indices.tolist()
    out = np.empty((3, CLASSES), np.float32)
    assert labels.dense(labels.ids_in_epoch()[:3], epoch=None, out=out) is out
    keys = [labels.keys[i] for i in labels.ids_in_epoch()[:4]]
    assert np.array_equal(labels.dense_by_key(keys), labels.dense(labels.sample_ids(keys)))


def test_padding_duplicates_resolve_to_lowest_rank(dataset):
    labels = SoftLabels(dataset)
    ds = Dataset(dataset)
    entries = [e for e in ds.manifest.shards if e.epoch == 0]
    rank0 = ds.reader(entries[0])
    repeated = [r.sample_id for r in ds.reader(entries[1])][-5:]
    for sample in repeated:
        ordinal = rank0.find(sample)
        assert ordinal is not None
        indices, _, _ = labels.sparse([sample])
        assert indices[0].tolist() == rank0.record(ordinal).indices.tolist()


def test_epoch_is_shared_with_forked_workers(dataset):
    labels = SoftLabels(dataset)
    labels.set_epoch(1)
    copy = pickle.loads(pickle.dumps(labels))        # an ordinary pickle: the value, opened again
    assert copy.epoch == 1 and np.array_equal(copy.dense(copy.ids_in_epoch()[:2]),
                                              labels.dense(labels.ids_in_epoch()[:2]))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                     # a forked (persistent) worker
        try:
            os.close(write)
            os.read(read, 1)                         # wait until the parent moved to epoch 2
            labels.dense([int(labels.ids_in_epoch()[0])])
            os._exit(0 if labels._pid == _process.generation() and labels.epoch == 2 else 1)
        except BaseException:
            os._exit(2)
    os.close(read)
    labels.set_epoch(2)
    os.write(write, b"x")
    assert os.waitpid(pid, 0)[1] == 0
    assert copy.epoch == 1


def test_missing_sample_epoch_and_class_mismatch(dataset):
    labels = SoftLabels(dataset)
    absent = sorted(set(range(KEYS)) - set(labels.ids_in_epoch().tolist()))[0]
    with pytest.raises(LabelError) as caught:
        labels.dense([int(labels.ids_in_epoch()[0]), absent])
    text = str(caught.value)
    assert caught.value.code == "missing-sample" and text.startswith(dataset)
    assert f"epoch 0 has no record of sample {absent} (key 'n{absent:05d}')" in text and "\n" not in text
    with pytest.raises(LabelError, match=r"\[missing-epoch\] the dataset has no epoch 5"):
        labels.set_epoch(5)
    with pytest.raises(LabelError, match=r"manifest.json: \[class-mismatch\] the shards have 300 classes, the model 10"):
        labels.check_classes(10)
    labels.check_classes(CLASSES)
    with pytest.raises(LabelError, match="no sample has the key 'zzz'"):
        labels.sample_ids(["zzz"])
    with pytest.raises(LabelError, match="outside the key table"):
        labels.dense([KEYS])


def test_corrupt_block_mid_epoch_names_file_block_record(tmp_path):
    folder = tmp_path / "ds"
    write_dataset(folder, np.random.default_rng(2), epochs=1, ranks=1, per_rank=160, overlap=False)
    labels = SoftLabels(folder)
    ds = Dataset(folder)
    reader = ds.reader(ds.manifest.shards[0])
    path = reader.path
    block5 = [reader.record(i).sample_id for i in range(80, 96)]
    others = [reader.record(i).sample_id for i in range(0, 80)]
    labels.dense(others[:1])                             # the epoch's table is built: all blocks good
    data = bytearray(open(path, "rb").read())
    data[reader.layout.block_offsets[5] + 40] ^= 0xFF     # a payload byte of block 5 (records 80..95)
    open(path, "wb").write(bytes(data))
    labels.dense(others)                                 # the other blocks still read
    with pytest.raises(ShardError) as caught:
        labels.dense(others[:3] + block5[7:9])           # met mid-epoch: the record asked for is named
    error = caught.value
    assert (error.code, error.file, error.block, error.record) == ("block-crc", path, 5, 87)
    assert str(error).endswith(f"(file {path}, block 5, record 87)") and "\n" not in str(error)
    fresh = SoftLabels(folder)                           # damage found while reading the epoch's ids
    with pytest.raises(ShardError) as caught:
        fresh.dense(others[:1])
    assert (caught.value.code, caught.value.block, caught.value.record) == ("block-crc", 5, 80)


def test_logit_shards_have_no_dense_form(tmp_path):
    folder = tmp_path / "logits"
    write_dataset(folder, np.random.default_rng(3), epochs=1, ranks=1, value_kind="logit", overlap=False)
    labels = SoftLabels(folder)
    sample = int(labels.ids_in_epoch()[0])
    indices, values, residual = labels.sparse([sample])
    assert residual[0] == 0
    with pytest.raises(ShardError, match=r"\[not-probability\]"):
        labels.dense([sample])
