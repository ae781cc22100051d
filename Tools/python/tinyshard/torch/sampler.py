"""Batches of (epoch, index) items for a whole run, so one DataLoader iteration spans every epoch.

A DataLoader restarts its workers' prefetching at each `iter(loader)`, so with one iteration per epoch
the first batches of every epoch are waited for (a few hundred milliseconds an epoch on a small
dataset: most of the data wait of a short epoch). RunBatchSampler yields every epoch's batches in one
pass, each epoch ordered exactly as a DistributedSampler with set_epoch(epoch) orders it (same seed,
shuffle, padding and rank split), and DistillDataset accepts (epoch, index) items, so the workers prepare
the next epoch's first batches while the current one ends, and no worker depends on set_epoch state.
"""

import math

from torch.utils.data import DistributedSampler, Sampler


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


def _world():
    import torch.distributed as dist
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _rank(rank):
    if rank is not None:
        return rank
    import torch.distributed as dist
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
