"""Batching DistillDataset items: images stacked, dense soft labels built for the whole batch at once.

With `target="sparse"`, each item carries only its record's K class indices, K values and residual
(a few hundred bytes instead of C floats); `DistillCollate` then makes the batch's (n, C) float32
targets with one fill and one `scatter_`. The items of one DataLoader batch (DistillDataset.__getitems__)
share one set of arrays, which the collate uses as they are: no per-item tensors, no stacking (per-item
tensors and torch.stack alone cost ~2 us a row, more than the whole dense build at K=10). In a
DataLoader worker the batch is allocated in shared memory directly, as torch's default_collate does, so
it is not copied again on its way to the main process.
"""

import numpy as np
import torch
from torch.utils.data import default_collate, get_worker_info


class SparseTarget:
    """One item's stored target: row `row` of a batch's (indices int64 (n, K), values float32 (n, K),
    residual float32 (n,)) arrays. Unpacks as (indices, values, residual) of the row."""

    __slots__ = ("arrays", "row")

    def __init__(self, arrays, row):
        self.arrays, self.row = arrays, row

    @property
    def indices(self):
        return self.arrays[0][self.row]

    @property
    def values(self):
        return self.arrays[1][self.row]

    @property
    def residual(self):
        return self.arrays[2][self.row]

    def __iter__(self):
        return iter((self.indices, self.values, self.residual))

    def __reduce__(self):            # pickle the row alone, not the batch it shares
        indices, values, residual = self
        return SparseTarget, ((indices[None], values[None], np.asarray(residual)[None]), 0)

    def dense(self, classes):
        """float32 (C,) tensor of this target."""
        indices, values, residual = (torch.from_numpy(np.ascontiguousarray(a[self.row:self.row + 1]))
                                     for a in self.arrays)
        return dense_targets(indices, values, residual, classes)[0]


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
        return images, self.targets([item[1] for item in batch])

    def targets(self, targets):
        """(n, C) float32 from n dense rows, SparseTargets, or (indices, values, residual) triples."""
        if isinstance(targets[0], torch.Tensor):
            return default_collate(targets)
        shared = targets[0].arrays if isinstance(targets[0], SparseTarget) else None
        if shared is not None and len(shared[2]) == len(targets) and all(
                isinstance(t, SparseTarget) and t.arrays is shared and t.row == row
                for row, t in enumerate(targets)):
            indices, values, residual = shared          # one __getitems__ batch, in order
        else:
            rows = [tuple(t) for t in targets]
            indices = np.stack([np.asarray(r[0]) for r in rows])
            values = np.stack([np.asarray(r[1], dtype=np.float32) for r in rows])
            residual = np.array([float(r[2]) for r in rows], dtype=np.float32)
        as_tensor = lambda a, dtype: torch.as_tensor(np.ascontiguousarray(a, dtype=dtype))  # noqa: E731
        return dense_targets(as_tensor(indices, np.int64), as_tensor(values, np.float32),
                             as_tensor(residual, np.float32), self.classes)
