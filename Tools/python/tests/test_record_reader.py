"""RecordOrderReader (SoftLabels.in_record_order): the records of a rank's record order equal the
ShardReader's, bit for bit, for several world sizes and windows; each block is decoded once; damaged
blocks and records are one-line errors naming file, block and record. And SoftLabels' random access
decodes only the rows asked for."""

import os

import numpy as np
import pytest

from tinyshard import Dataset, ShardError
from tinyshard.labels import SoftLabels, scatter_dense
from tinyshard import labels as labels_module

from conftest import count_block_reads
from test_labels import CLASSES, K, write_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ds") / "ds"
    write_dataset(folder, np.random.default_rng(3), epochs=2, ranks=3, per_rank=120, per_block=16)
    return str(folder)


def expected(dataset, epoch, ranks, ordinals):
    ds = Dataset(dataset)
    by_rank = {e.rank: ds.reader(e) for e in ds.manifest.shards if e.epoch == epoch}
    return [by_rank[int(r)].record(int(o)) for r, o in zip(ranks, ordinals)], by_rank


@pytest.mark.parametrize("world,window,batch", [(1, 0, 32), (2, 0, 7), (3, 1, 50), (4, 4, 16), (8, 2, 64)])
def test_record_order_reader_equals_the_shard_reader(dataset, world, window, batch):
    labels = SoftLabels(dataset)
    for epoch in (0, 1):
        for rank in range(world):
            reader = labels.in_record_order(epoch, world, rank, window=window, seed=5, train_epoch=epoch + 3)
            records, by_rank = expected(dataset, epoch, reader.ranks, reader.ordinals)
            got = list(reader.batches(batch))
            assert sum(len(b) for b in got) == len(reader) == -(-(3 * 120 + 5) // world)
            ids = np.concatenate([b.ids for b in got])
            assert ids.tolist() == [r.sample_id for r in records]
            indices = np.concatenate([b.indices for b in got])
            values = np.concatenate([b.values for b in got])
            assert (indices == np.stack([r.indices for r in records])).all()
            assert (values.view(np.uint16) == np.stack([r.values for r in records]).view(np.uint16)).all()
            dense = np.concatenate([b.dense() for b in got])
            reference = np.stack([by_rank[int(r)].dense_row(int(o)) for r, o in zip(reader.ranks, reader.ordinals)])
            assert np.array_equal(dense.view(np.uint32), reference.view(np.uint32))


def test_each_block_is_read_once(dataset, monkeypatch):
    calls = count_block_reads(monkeypatch, labels_module, "read_groups")
    labels = SoftLabels(dataset)
    for window in (0, 1, 3):
        calls.clear()
        reader = labels.in_record_order(0, 2, 1, window=window, seed=1)
        out = np.zeros((10, CLASSES), np.float32)
        for b in reader.batches(10, drop_last=True):
            b.dense(out)
        assert len(calls) == len(set(calls)) == len(np.unique(reader.block))


def test_dense_out_buffer_is_reused(dataset):
    labels = SoftLabels(dataset)
    reader = labels.in_record_order(1, 1, 0)
    out = np.empty((32, CLASSES), np.float32)
    batch = reader.batch(0, 32)
    assert batch.dense(out) is out
    fresh = scatter_dense(batch.indices, batch.values, batch.residual, CLASSES)
    assert np.array_equal(out.view(np.uint32), fresh.view(np.uint32))


def test_damaged_block_names_file_block_record(tmp_path):
    folder = tmp_path / "ds"
    write_dataset(folder, np.random.default_rng(4), epochs=1, ranks=1, per_rank=100, per_block=16, overlap=False)
    labels = SoftLabels(folder)
    reader = labels.in_record_order(0)
    path = os.path.join(folder, "epoch0000-rank000.tshard")
    shard = labels.dataset.reader(labels.dataset.manifest.shards[0])
    offset = int(shard.layout.block_offsets[3]) + 40            # inside block 3's payload
    data = bytearray(open(path, "rb").read())
    data[offset] ^= 0xFF
    open(path, "wb").write(bytes(data))
    labels = SoftLabels(folder)
    reader = labels.in_record_order(0)
    reader.batch(0, 40)                                          # blocks 0-2: fine
    with pytest.raises(ShardError) as info:
        reader.batch(40, 60)
    assert info.value.code == "block-crc" and info.value.block == 3 and info.value.record == 48
    assert "epoch0000-rank000.tshard" in str(info.value) and "\n" not in str(info.value)


def test_random_access_decodes_only_the_rows_asked_for(dataset, monkeypatch):
    labels = SoftLabels(dataset)
    decoded = []
    real = labels_module.decode_records
    monkeypatch.setattr(labels_module, "decode_records",
                        lambda header, first, records: decoded.append(len(records)) or real(header, first, records))
    ids = labels.ids_in_epoch(0)
    pick = ids[[3, 50, 51, 200]]
    labels.dense(pick, epoch=0)
    assert decoded == [4]                                       # one call, four rows
    labels.sparse(pick, epoch=0)
    assert decoded == [4]                                       # already decoded
    labels.codes(ids[[3, 4]], epoch=0)
    assert decoded == [4, 1]


def test_logit_shards_read_sparse_not_dense(tmp_path):
    folder = tmp_path / "logits"
    write_dataset(folder, np.random.default_rng(5), epochs=1, ranks=2, per_rank=50, value_kind="logit")
    reader = SoftLabels(folder).in_record_order(0, 2, 0)
    batch = reader.batch(0, 20)
    assert batch.indices.shape == (20, K) and (batch.residual == 0).all()
    with pytest.raises(ShardError) as info:
        batch.dense()
    assert info.value.code == "not-probability" and "\n" not in str(info.value)
