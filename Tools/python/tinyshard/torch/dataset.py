"""DistillDataset: a student's training views and soft labels from stored teacher records.

Item i is a sample that has a record in the dataset: its image (from any indexable image source) with
the record's stored augmentation replayed (tinyshard.replay, normalised as timm does), and its soft
label. Epoch e of the run reads the stored epoch epochs[e % len(epochs)], as the Swift trainer does:
either `set_epoch(e)` then plain indices (like DistributedSampler.set_epoch), or (e, i) items, which
RunBatchSampler yields for a whole run in one DataLoader iteration, or (e, shard rank, ordinal) items, a
record addressed where it is stored, which RecordOrderBatchSampler yields (record order: a worker decodes
each block once, and no sample table is built).

Safe with DataLoader workers (the image store and the shards are mapped lazily in each worker; the
epoch is shared memory, so persistent workers follow set_epoch) and with DistributedSampler (items are
a pure function of (epoch, index)).
"""

import os

import numpy as np
import torch

from ..erasing import IMAGENET_MEAN, IMAGENET_STD
from ..labels import LabelError, SoftLabels, scatter_dense
from ..replay import ReplayError, replay_normalized
from .collate import SparseTarget


def source_keys(images):
    """The sample keys of an image source, aligned with its indices: an ImageStore's keys, a
    torchvision ImageFolder's paths relative to its root (with '/', as the importers key them), or
    the source's own `keys` list/method."""
    keys = getattr(images, "keys", None)
    if callable(keys):
        return list(keys())
    if keys is not None:
        return list(keys)
    samples, root = getattr(images, "samples", None), getattr(images, "root", None)
    if samples is not None and root is not None:
        return [os.path.relpath(path, root).replace(os.sep, "/") for path, _ in samples]
    raise TypeError("cannot tell the keys of this image source: give keys=[...] (one per index)")


def load_image(images, index):
    """Image `index` of a source as uint8 (H, W, 3): ImageStore arrays, (PIL image, label) pairs of a
    torchvision dataset built without a transform, PIL images, uint8 HWC arrays or CHW tensors."""
    item = images.image(index) if hasattr(images, "image") else images[index]
    if isinstance(item, tuple):
        item = item[0]
    if isinstance(item, torch.Tensor):
        item = item.permute(1, 2, 0).numpy() if item.ndim == 3 and item.shape[0] == 3 else item.numpy()
    elif not isinstance(item, np.ndarray):
        item = np.asarray(item.convert("RGB"))        # a PIL image
    if item.dtype != np.uint8 or item.ndim != 3 or item.shape[2] != 3:
        raise TypeError(f"image {index} is {item.dtype} {item.shape}; replay needs uint8 (H, W, 3) RGB")
    return item


class DistillDataset(torch.utils.data.Dataset):
    """(normalised view float32 (3, H, W), target) per stored sample.

    images: an ImageStore, a torchvision ImageFolder (without transform) or any indexable source
    with `keys`. shards: a dataset folder or a SoftLabels. classes: the model's class count (checked
    against the shards). target: "dense" (float32 (C,) tensor) or "sparse" (a SparseTarget: unpacks as
    indices int64 (K,), values float32 (K,), residual float32; DistillCollate expands a batch of them
    in one scatter)."""

    def __init__(self, images, shards, keys=None, classes=None, target="dense", epoch=0,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, cache_bytes=None):
        if target not in ("dense", "sparse"):
            raise ValueError("target must be 'dense' or 'sparse'")
        self.images = images
        if isinstance(shards, SoftLabels):
            self.labels = shards
        else:
            self.labels = SoftLabels(shards) if cache_bytes is None else SoftLabels(shards, cache_bytes=cache_bytes)
        if classes is not None:
            self.labels.check_classes(classes)
        self.classes = self.labels.classes
        self.target = target
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.output_size = self._output_size()
        keys = list(keys) if keys is not None else source_keys(images)
        ids = np.full(len(keys), -1, dtype=np.int64)
        table = self.labels.keys
        for i, key in enumerate(keys):
            found = table.sample_id(key)
            if found is not None:
                ids[i] = found
        # image_of[sample id] = index in the source (mix partners are found through it).
        self._image_of = np.full(len(table), -1, dtype=np.int64)
        self._image_of[ids[ids >= 0]] = np.flatnonzero(ids >= 0)
        in_epoch = np.zeros(len(table), dtype=bool)
        in_epoch[self.labels.ids_in_epoch(self.labels.epochs[0])] = True
        #: sample ids of the items, ascending: the source's images that have a record
        self.sample_ids = np.flatnonzero(in_epoch & (self._image_of >= 0))
        self.image_indices = self._image_of[self.sample_ids]
        self.set_epoch(epoch)

    def _output_size(self):
        dataset = self.labels.dataset
        sizes = set()
        for entry in dataset.manifest.shards:
            header = dataset.reader(entry).header
            if header.augmentation_kind != "params":
                raise LabelError("no-params", f"records carry no augmentation parameters (kind "
                                 f"{header.augmentation_kind}); a student needs a teacher pass's "
                                 "params shards", file=os.path.join(dataset.folder, entry.file))
            sizes.add(tuple(header.output_size))
        if len(sizes) != 1:
            raise LabelError("mixed-output-size", f"the shards replay to different output sizes "
                             f"{sorted(sizes)}", file=dataset.folder)
        return sizes.pop()

    def __len__(self):
        return len(self.sample_ids)

    @property
    def epoch(self):
        return self.labels.epoch

    def set_epoch(self, epoch):
        """Use the stored epoch epochs[epoch % len(epochs)] from now on (in every worker)."""
        epochs = self.labels.epochs
        self.labels.set_epoch(epochs[int(epoch) % len(epochs)])

    def _partner(self, code, key, epoch):
        if code[32] == 0:
            return None
        partner = int(np.frombuffer(code[36:40].tobytes(), "<u4")[0])
        index = self._image_of[partner] if partner < len(self._image_of) else -1
        if index < 0:
            raise LabelError("missing-partner", f"epoch {epoch}, key {key!r}: mix partner sample "
                             f"{partner} is not an image of the source", file=self.labels.folder)
        return load_image(self.images, int(index))

    def _stored_epoch(self, item):
        """(stored epoch, index) of an item: an index (the epoch of set_epoch) or (run epoch, index)."""
        if isinstance(item, tuple):
            epoch, index = item
            epochs = self.labels.epochs
            return epochs[int(epoch) % len(epochs)], int(index)
        return self.labels.epoch, int(item)

    def __getitem__(self, item):
        return self.__getitems__([item])[0]

    def __getitems__(self, items):
        """A batch of items with one record lookup per stored epoch (DataLoader calls this)."""
        if items and isinstance(items[0], tuple) and len(items[0]) == 3:
            return self._records_at(items)
        resolved = [self._stored_epoch(item) for item in items]
        out = [None] * len(items)
        for epoch in sorted({e for e, _ in resolved}):
            rows = [k for k, (e, _) in enumerate(resolved) if e == epoch]
            positions = np.array([resolved[k][1] for k in rows], dtype=np.int64)
            if len(positions) and (positions.min() < 0 or positions.max() >= len(self)):
                raise IndexError(f"item {int(positions.max())} outside [0, {len(self)})")
            samples = self.sample_ids[positions]
            codes, indices, values, residual = self.labels.records(samples, epoch=epoch)
            images = self.image_indices[positions]
            self._fill(out, rows, epoch, samples, images, codes, (indices, values, residual))
        return out

    def _records_at(self, items):
        """Items (run epoch, shard rank, ordinal) of record order."""
        epochs = self.labels.epochs
        out = [None] * len(items)
        by_epoch = {}
        for k, (epoch, rank, ordinal) in enumerate(items):
            by_epoch.setdefault(epochs[int(epoch) % len(epochs)], []).append((k, rank, ordinal))
        for epoch, part in by_epoch.items():
            rows = [k for k, _, _ in part]
            batch = self.labels.at([r for _, r, _ in part], [o for _, _, o in part], epoch=epoch)
            images = self._image_of[batch.ids]
            if (images < 0).any():
                sample = int(batch.ids[np.argmax(images < 0)])
                raise LabelError("missing-image", f"epoch {epoch}: sample {sample} (key "
                                 f"{self.labels.keys[sample]!r}) has a record but no image in the source",
                                 file=self.labels.folder)
            sparse = (batch.indices.astype(np.int64), batch.values.astype(np.float32), batch.residual)
            self._fill(out, rows, epoch, batch.ids, images, batch.codes, sparse)
        return out

    def _fill(self, out, rows, epoch, samples, images, codes, sparse):
        """out[rows[j]] = (view of sample j, its target); the targets of the rows share one set of arrays."""
        dense = scatter_dense(*sparse, self.classes) if self.target == "dense" else None
        for j, k in enumerate(rows):
            x = self._view(epoch, int(samples[j]), int(images[j]), codes[j])
            out[k] = (x, torch.from_numpy(dense[j]) if dense is not None else SparseTarget(sparse, j))

    def _view(self, epoch, sample, image_index, code):
        key = self.labels.keys[sample]
        try:
            view = replay_normalized(code.tobytes(), load_image(self.images, image_index), self.output_size,
                                     self._partner(code, key, epoch), mean=self.mean, std=self.std,
                                     checked=True)
        except ReplayError as exc:
            raise LabelError("mismatch", f"epoch {epoch}, key {key!r}: {exc}",
                             file=self.labels.folder) from None
        return torch.from_numpy(view)
