"""tinyshard for PyTorch training loops (needs torch; the examples also use timm).

- SoftLabels (re-exported from tinyshard.labels): dense or sparse targets by (epoch, sample id or key).
- DistillDataset: (replayed, normalised view, soft label) per stored sample over any image source;
  DataLoader-worker and DistributedSampler safe.
- DistillCollate: a batch's dense targets in one vectorised scatter (for target="sparse").
- RunBatchSampler: every epoch's (epoch, index) batches, DistributedSampler-ordered, in one DataLoader
  iteration (no per-epoch restart of the workers' prefetching).
- RecordOrderBatchSampler: every epoch's (epoch, shard rank, ordinal) batches in record order
  (Spec/RECORD-ORDER.md): each block decoded once per epoch, any world size.
- Prefetcher: takes batches out of the DataLoader on a background thread (the hand-off from the worker
  processes off the training loop's time).
- TeacherPassWriter: each rank's (epoch, rank) shard of a teacher pass under torch.distributed, the
  manifest committed by rank 0 after every epoch; resumable (Spec/PASS.md: pass.json, stop on a signal
  with a tail, resume=True); ShareSampler feeds a rank's DistributedSampler share from a resume position.
"""

try:
    import torch as _torch  # noqa: F401
except ImportError as exc:          # pragma: no cover - the message is the point
    raise ImportError("tinyshard.torch needs PyTorch: pip install 'tinyshard[torch]'") from exc

from ..labels import LabelError, SoftLabels, scatter_dense
from ..passfolder import PassError
from .collate import DistillCollate, SparseTarget, dense_targets
from .dataset import DistillDataset, load_image, source_keys
from .prefetch import Prefetcher
from .sampler import RecordOrderBatchSampler, RunBatchSampler
from .teacher import ShareSampler, TeacherPassWriter, model_sha256, shard_name, top_k

__all__ = ["DistillCollate", "DistillDataset", "LabelError", "PassError", "Prefetcher", "RecordOrderBatchSampler",
           "RunBatchSampler", "ShareSampler", "SoftLabels", "SparseTarget", "TeacherPassWriter", "dense_targets",
           "load_image", "model_sha256", "scatter_dense", "shard_name", "source_keys", "top_k"]
