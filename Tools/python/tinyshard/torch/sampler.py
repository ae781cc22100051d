"""Batches for a whole run, so one DataLoader iteration spans every epoch: RunBatchSampler in the order of a
DistributedSampler, RecordOrderBatchSampler in record order (Spec/RECORD-ORDER.md, the fast order).

A DataLoader restarts its workers' prefetching at each `iter(loader)`, so with one iteration per epoch
the first batches of every epoch are waited for (a few hundred milliseconds an epoch on a small
dataset: most of the data wait of a short epoch). RunBatchSampler yields every epoch's batches in one
pass, each epoch ordered exactly as a DistributedSampler with set_epoch(epoch) orders it (same seed,
shuffle, padding and rank split), and DistillDataset accepts (epoch, index) items, so the workers prepare
the next epoch's first batches while the current one ends, and no worker depends on set_epoch state.

RecordOrderBatchSampler yields (epoch, shard rank, ordinal) items: each rank's share of the stored epoch in
stored order, shuffled inside windows of blocks (RECORD-ORDER.md), so a worker decodes each block once
instead of once per record. Its batches are consecutive runs of the rank's record order (the same batches
whatever the number of DataLoader workers). A DataLoader hands batch i of its iteration to worker
i mod workers; given `workers`, the sampler deals each worker a contiguous stretch of the epoch's batches
(yielding them interleaved, so that batch i is one of worker i mod workers' stretch), so no block is split
between two workers except at the stretches' ends: each block is read and decoded once per epoch, not once
per worker that meets it. The batches are then trained in that interleaved order.
"""

import math

from torch.utils.data import DistributedSampler, Sampler

from ..record_order import check_request


class RunBatchSampler(Sampler):
    """batch_sampler over epochs start..epochs-1: lists of (epoch, index), never mixing two epochs.

    num_replicas/rank default to torch.distributed's (1 and 0 without a process group). Within an epoch
    a last partial batch is kept unless drop_last."""

    def __init__(self, dataset, batch_size, epochs, start_epoch=0, num_replicas=None, rank=None,
                 shuffle=True, seed=0, drop_last=True):
        if batch_size < 1 or epochs < start_epoch:
            raise ValueError("batch_size must be >= 1 and epochs >= start_epoch")
        self.dataset, self.batch_size, self.drop_last = dataset, int(batch_size), drop_last
        self.epochs, self.start_epoch = int(epochs), int(start_epoch)
        self._sampler = DistributedSampler(dataset, num_replicas=num_replicas or _world(), rank=_rank(rank),
                                           shuffle=shuffle, seed=seed, drop_last=drop_last)

    @property
    def batches_per_epoch(self):
        n = self._sampler.num_samples
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __len__(self):
        return (self.epochs - self.start_epoch) * self.batches_per_epoch

    def __iter__(self):
        for epoch in range(self.start_epoch, self.epochs):
            self._sampler.set_epoch(epoch)
            indices = list(self._sampler)
            for b in range(self.batches_per_epoch):
                yield [(epoch, i) for i in indices[b * self.batch_size:(b + 1) * self.batch_size]]


class RecordOrderBatchSampler(Sampler):
    """batch_sampler over epochs start..epochs-1 in record order: lists of (epoch, shard rank, ordinal) for
    DistillDataset, never mixing two epochs. Run epoch e reads the stored epoch epochs[e % len(epochs)]
    with training epoch t = e (so a stored epoch read again is shuffled anew when window >= 1).

    dataset: a DistillDataset or a SoftLabels. num_replicas/rank default to torch.distributed's. Every rank
    takes ceil(N / W) records of an epoch (the last ranks wrap to the first records, as DistributedSampler
    pads), so all ranks take the same number of steps. workers: the DataLoader's num_workers (see the
    module docstring). Within an epoch a last partial batch is kept unless drop_last."""

    def __init__(self, dataset, batch_size, epochs, start_epoch=0, num_replicas=None, rank=None, window=0,
                 seed=0, drop_last=True, workers=0):
        if batch_size < 1 or epochs < start_epoch:
            raise ValueError("batch_size must be >= 1 and epochs >= start_epoch")
        self.labels = getattr(dataset, "labels", dataset)
        self.batch_size, self.drop_last = int(batch_size), drop_last
        self.epochs, self.start_epoch = int(epochs), int(start_epoch)
        self.world, self.rank = int(num_replicas or _world()), _rank(rank)
        self.window, self.seed, self.workers = int(window), int(seed), max(1, int(workers))
        for epoch in self.labels.epochs:              # a request no stored epoch can answer fails here
            check_request(self._records(epoch), self.world, self.rank)

    def stored_epoch(self, epoch):
        epochs = self.labels.epochs
        return epochs[int(epoch) % len(epochs)]

    def order(self, epoch):
        """(shard ranks, ordinals) of run epoch `epoch` for this rank."""
        return self.labels.record_order(self.stored_epoch(epoch), self.world, self.rank, self.window, self.seed,
                                        train_epoch=epoch)

    def _records(self, stored_epoch):
        return sum(e.records for e in self.labels.dataset.manifest.shards if e.epoch == stored_epoch)

    def batches_in(self, epoch):
        """Number of batches of run epoch `epoch` (equal on every rank)."""
        share = -(-self._records(self.stored_epoch(epoch)) // self.world)
        return share // self.batch_size if self.drop_last else -(-share // self.batch_size)

    def __len__(self):
        return sum(self.batches_in(e) for e in range(self.start_epoch, self.epochs))

    def __iter__(self):
        for epoch in range(self.start_epoch, self.epochs):
            ranks, ordinals = self.order(epoch)
            for b in _dealt(self.batches_in(epoch), self.workers):
                part = slice(b * self.batch_size, min((b + 1) * self.batch_size, len(ranks)))
                yield [(epoch, r, o) for r, o in zip(ranks[part].tolist(), ordinals[part].tolist())]


def _dealt(count, workers):
    """Batch numbers 0..count-1 in the order that hands the worker of slot c (batch i of the epoch goes to
    slot i mod workers: one worker per slot, whatever the DataLoader's count before the epoch) a contiguous
    stretch: the stretches are count // workers long, the first count % workers one longer."""
    if workers <= 1:
        return range(count)
    sizes = [count // workers + (c < count % workers) for c in range(workers)]
    starts = [sum(sizes[:c]) for c in range(workers)]
    return [starts[c] + step for step in range(max(sizes)) for c in range(workers) if step < sizes[c]]


def _world():
    import torch.distributed as dist
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _rank(rank):
    if rank is not None:
        return rank
    import torch.distributed as dist
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
