"""RecordOrderBatchSampler and DistillDataset's (epoch, shard rank, ordinal) items: equal steps on every rank,
every record once per epoch when W divides N, the spec's wrap when not, stretches dealt to DataLoader
workers so each block is decoded once, and the same batches whatever the worker count."""

import numpy as np
import pytest

from conftest import require_torch

require_torch()
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from tinyshard.labels import SoftLabels  # noqa: E402
from tinyshard.record_order import record_order  # noqa: E402
from tinyshard.torch import DistillCollate, DistillDataset, RecordOrderBatchSampler  # noqa: E402
from tinyshard.torch.sampler import _dealt  # noqa: E402

from test_labels import write_dataset  # noqa: E402
from test_torch import digits  # noqa: E402,F401  (the module fixture)


@pytest.fixture(scope="module")
def labels(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ro") / "ds"
    # 3 stored epochs x 2 ranks: 150 + 155 records (rank 1 repeats 5 of rank 0's samples), blocks of 16.
    write_dataset(folder, np.random.default_rng(7), epochs=3, ranks=2, per_rank=150, per_block=16)
    return SoftLabels(folder)


@pytest.mark.parametrize("world,window", [(1, 0), (2, 0), (3, 4), (5, 1), (8, 2)])
def test_ranks_take_equal_steps_and_cover_the_epoch(labels, world, window):
    epochs = 4                                     # run epoch 3 reads stored epoch 0 again
    samplers = [RecordOrderBatchSampler(labels, 16, epochs, num_replicas=world, rank=r, window=window, seed=3,
                                        drop_last=False) for r in range(world)]
    assert len({len(s) for s in samplers}) == 1
    per_rank = [list(s) for s in samplers]
    assert all(len(b) == len(samplers[0]) for b in per_rank)
    total = 305
    q = -(-total // world)
    for epoch in range(epochs):
        items = [item for batches in per_rank for batch in batches for item in batch if item[0] == epoch]
        assert len(items) == world * q
        pairs = [(r, o) for _, r, o in items]
        assert set(pairs) == {(0, o) for o in range(150)} | {(1, o) for o in range(155)}
        extra = world * q - total                  # the wrap: the first `extra` positions read twice
        repeated = sorted(p for p in set(pairs) if pairs.count(p) > 1)
        assert repeated == sorted([(0, o) for o in range(150)][:extra])
        for rank, batches in enumerate(per_rank):  # each rank's epoch is its record order, in batches of 16
            mine = [(r, o) for batch in batches for e, r, o in batch if e == epoch]
            ranks, ordinals = record_order([(0, 150, 16), (1, 155, 16)], world, rank, window, 3, epoch)
            assert mine == list(zip(ranks.tolist(), ordinals.tolist()))
    if window:                                     # stored epoch 0 read at run epochs 0 and 3: new order
        first = [item[1:] for item in per_rank[0][0]]
        again = [item[1:] for batch in per_rank[0] for item in batch if item[0] == 3][:len(first)]
        assert first != again


def test_batches_dealt_to_workers_in_contiguous_stretches(labels):
    assert list(_dealt(10, 1)) == list(range(10))
    assert _dealt(10, 3) == [0, 4, 7, 1, 5, 8, 2, 6, 9, 3]      # slots 0, 1, 2 get 0-3, 4-6, 7-9
    for count in range(0, 30):
        for workers in (2, 3, 4):
            order = _dealt(count, workers)
            assert sorted(order) == list(range(count))
            for slot in range(workers):
                mine = order[slot::workers]
                assert mine == list(range(mine[0], mine[0] + len(mine))) if mine else True
    one = RecordOrderBatchSampler(labels, 16, 2, seed=1)
    three = RecordOrderBatchSampler(labels, 16, 2, seed=1, workers=3)
    assert sorted(map(tuple, map(tuple, one))) == sorted(map(tuple, map(tuple, three)))   # same batches


def test_errors(labels):
    with pytest.raises(ValueError):
        RecordOrderBatchSampler(labels, 0, 2)
    with pytest.raises(ValueError, match="the epoch holds 305 records, fewer than the world size 400"):
        RecordOrderBatchSampler(labels, 16, 1, num_replicas=400, rank=0)
    with pytest.raises(ValueError, match="rank 2 is outside"):
        RecordOrderBatchSampler(labels, 16, 1, num_replicas=2, rank=2)


@pytest.mark.parametrize("workers", [0, 2])
def test_distill_dataset_reads_record_order_items(digits, workers):          # noqa: F811
    store, shards, _ = digits
    data = DistillDataset(store, shards, target="sparse")
    sampler = RecordOrderBatchSampler(data, 16, 3, num_replicas=2, rank=1, window=2, seed=4, workers=workers)
    loader = DataLoader(data, batch_sampler=sampler, num_workers=workers, collate_fn=DistillCollate(data.classes))
    batches = list(loader)
    assert len(batches) == len(sampler) == 3 * (60 // 16)
    expected = list(sampler)
    # The same targets as (epoch, index) items of the same samples (SoftLabels by sample id).
    labels = data.labels
    for (images, targets), items in zip(batches, expected):
        epoch = data.labels.epochs[items[0][0] % len(data.labels.epochs)]
        batch = labels.at([r for _, r, _ in items], [o for _, _, o in items], epoch=epoch)
        reference = labels.dense(batch.ids, epoch=epoch)
        assert np.array_equal(targets.numpy().view(np.uint32), reference.view(np.uint32))
        assert images.shape == (16, 3, 24, 24)
