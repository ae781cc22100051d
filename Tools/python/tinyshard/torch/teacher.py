"""The teacher pass from PyTorch, under torch.distributed: every rank writes its own (epoch, rank) shard of
the samples its DistributedSampler gave it, rank 0 writes the key table first and the manifest last,
after a barrier, so a folder with a manifest is a finished dataset (Spec/FORMAT.md sections 1, 5, 6).

    writer = TeacherPassWriter(folder, keys, classes=1000, k=10, output_size=(224, 224))
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        with writer.shard(epoch) as shard:
            for images, sample_ids, codes in loader:
                shard.add(sample_ids, logits=model(images), codes=codes)
    writer.finish()                       # barrier; rank 0 writes manifest.json; barrier

A DistributedSampler pads the last round by repeating samples, so a sample can be in two ranks' shards
of one epoch; readers take the lowest rank's record (FORMAT.md section 2), as the official TinyViT
reader does. Within one shard a sample is written once (a repeat is counted in `skipped`).
"""

import os

import numpy as np
import torch
import torch.distributed as dist

from ..files import write_atomically
from ..keys import encode_keys
from ..manifest import KEYS_NAME, write_manifest
from ..writer import ShardWriter
from .. import format as F


def shard_name(epoch, rank):
    """The file name of the (epoch, rank) shard, as the Swift DatasetWriter names it."""
    return f"epoch{epoch:04d}-rank{rank:03d}.tshard"


def _rank_and_world(rank, world_size):
    if rank is not None and world_size is not None:
        return int(rank), int(world_size)
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def top_k(logits, k, temperature=1.0):
    """(indices int64 (n, k), probabilities float32 (n, k)) of softmax(logits / T), descending, ties to
    the lower class (the Swift teacher pass's rule); the softmax is taken in float64."""
    probabilities = torch.softmax(logits.detach().double() / temperature, dim=-1).float().cpu().numpy()
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(probabilities, order, axis=1)


class ShardOfEpoch:
    """One rank's shard of one epoch, open for appends."""

    def __init__(self, writer, epoch):
        self.writer = writer
        self.epoch = epoch
        self.path = os.path.join(writer.folder, shard_name(epoch, writer.rank))
        self._shard = ShardWriter(self.path, writer.classes, writer.k, temperature=writer.temperature,
                                  sorted=True, augmentation_kind=writer.augmentation_kind,
                                  output_size=writer.output_size, epoch=epoch, rank=writer.rank,
                                  records_per_block=writer.records_per_block,
                                  provenance=writer.provenance)
        self._seen = set()
        self.skipped = 0

    def add(self, sample_ids, logits=None, probabilities=None, codes=None):
        """Append a batch: sample ids (n,), the teacher's logits (n, C) (softmax and top-K taken
        here) or its top-K already as (indices, values), and the augmentation codes (n, A) uint8
        (A = 80 for params, 4 for seed, none for kind none)."""
        ids = np.asarray(sample_ids.cpu() if isinstance(sample_ids, torch.Tensor) else sample_ids,
                         dtype=np.int64).reshape(-1)
        if logits is not None:
            if logits.shape != (len(ids), self.writer.classes):
                raise ValueError(f"logits of shape {tuple(logits.shape)} for {len(ids)} samples of "
                                 f"{self.writer.classes} classes")
            indices, values = top_k(logits, self.writer.k, self.writer.temperature)
        elif probabilities is not None:
            indices, values = (np.asarray(p) for p in probabilities)
        else:
            raise ValueError("give logits or probabilities")
        if codes is None:
            codes = np.zeros((len(ids), 0), dtype=np.uint8)
        codes = np.asarray(codes.cpu() if isinstance(codes, torch.Tensor) else codes, dtype=np.uint8)
        for row, sample in enumerate(ids.tolist()):
            if sample in self._seen:
                self.skipped += 1
                continue
            self._seen.add(sample)
            self._shard.append(sample, indices[row], values[row], codes[row].tobytes())

    @property
    def records(self):
        return self._shard.records

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self._shard.close()
            self.writer._finished.add(self.epoch)
        else:
            self._shard.abort()
        return False


class TeacherPassWriter:
    """Writes one rank's part of a dataset folder; see the module docstring.

    keys: every sample key of the dataset (any order; the key table sorts them and a sample's id is
    its position). augmentation: "params" with output_size (height, width), or "seed", or "none".
    rank and world_size default to torch.distributed's (0 and 1 without a process group)."""

    def __init__(self, folder, keys, classes, k, output_size=None, augmentation_kind=None,
                 temperature=1.0, records_per_block=1024, provenance=None, rank=None,
                 world_size=None):
        self.folder = os.fspath(folder)
        self.rank, self.world_size = _rank_and_world(rank, world_size)
        self.classes, self.k = int(classes), int(k)
        self.augmentation_kind = augmentation_kind or ("params" if output_size is not None else "none")
        self.output_size = tuple(output_size) if output_size is not None else None
        self.temperature = float(temperature)
        self.records_per_block = int(records_per_block)
        self.keys = sorted(keys, key=lambda key: key.encode("utf-8"))
        self._ids = {key: i for i, key in enumerate(self.keys)}
        table = encode_keys(self.keys)             # every rank computes the same bytes
        self.provenance = {"dataset_checksum": f"{F.crc32(table):08x}", "augmentation_code_version": "1",
                           "writer": "tinyshard-python TeacherPassWriter"}
        self.provenance.update(provenance or {})
        self._finished = set()
        os.makedirs(self.folder, exist_ok=True)
        if self.rank == 0:
            write_atomically(os.path.join(self.folder, KEYS_NAME), table)

    def sample_ids(self, keys):
        return np.array([self._ids[key] for key in keys], dtype=np.int64)

    def shard(self, epoch):
        """This rank's shard of `epoch`, as a context manager (committed on a clean exit, abandoned
        on an exception)."""
        return ShardOfEpoch(self, int(epoch))

    def finish(self):
        """Barrier; rank 0 lists every rank's shards of the epochs it wrote in manifest.json (each must
        exist: a rank that did not finish an epoch is an error here); barrier. Returns the manifest on
        rank 0, None elsewhere."""
        distributed = dist.is_available() and dist.is_initialized() and self.world_size > 1
        if distributed:
            dist.barrier()
        manifest = None
        if self.rank == 0:
            names = [shard_name(epoch, rank) for epoch in sorted(self._finished)
                     for rank in range(self.world_size)]
            missing = [name for name in names if not os.path.exists(os.path.join(self.folder, name))]
            if missing:
                raise FileNotFoundError(f"{self.folder}: shards not written by their ranks: "
                                        f"{', '.join(missing)}")
            manifest = write_manifest(self.folder, names)   # measures keys.tsk's CRC from the file
            if manifest.keys.crc32 != self.provenance["dataset_checksum"]:
                raise RuntimeError(f"{self.folder}: keys.tsk changed while the pass ran")
        if distributed:
            dist.barrier()
        return manifest
