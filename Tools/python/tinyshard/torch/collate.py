"""Batching DistillDataset items: images stacked, dense soft labels built for the whole batch at once.

With `target="sparse"`, each item carries only its record's K class indices, K values and residual
(a few hundred bytes instead of C floats through the worker queue); `DistillCollate` then makes the
batch's (n, C) float32 targets with one fill and one `scatter_`. In a DataLoader worker the batch is
allocated in shared memory directly, as torch's default_collate does, so it is not copied again on its
way to the main process.
"""

import torch
from torch.utils.data import default_collate, get_worker_info


def _empty(reference, shape):
    """An uninitialised float32 tensor; in a worker, backed by shared memory."""
    numel = 1
    for side in shape:
        numel *= side
    if get_worker_info() is not None:
        storage = reference._typed_storage()._new_shared(numel, device=reference.device)
        return reference.new(storage).resize_(*shape)
    return torch.empty(shape, dtype=reference.dtype, device=reference.device)


def dense_targets(indices, values, residual, classes):
    """(n, C) float32: row i is residual[i] everywhere but indices[i, j], which hold values[i, j]."""
    n = residual.shape[0]
    out = _empty(residual, (n, classes))
    out.copy_(residual.unsqueeze(1).expand(n, classes))
    out.scatter_(1, indices, values)
    return out


class DistillCollate:
    """collate_fn for DistillDataset: (images (n, 3, H, W), targets (n, C) float32).

    Items with dense targets are stacked; items with sparse targets (indices, values, residual) are
    expanded in one scatter. Picklable (spawned workers get a copy)."""

    def __init__(self, classes):
        self.classes = int(classes)

    def __call__(self, batch):
        images = default_collate([item[0] for item in batch])
        targets = [item[1] for item in batch]
        if isinstance(targets[0], torch.Tensor):
            return images, default_collate(targets)
        indices = torch.stack([t[0] for t in targets])
        values = torch.stack([t[1] for t in targets])
        residual = torch.stack([t[2] for t in targets])
        return images, dense_targets(indices, values, residual, self.classes)
