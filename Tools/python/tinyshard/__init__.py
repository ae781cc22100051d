"""TinyShard: a pure-Python (numpy) implementation of Spec/FORMAT.md and Spec/IMAGESTORE.md.

The main entry points, re-exported here: ShardWriter, ShardReader, Dataset, verify_shard,
verify_dataset and ShardError (the format); ImageStore (the image store); SoftLabels (dense and sparse
targets by epoch and key for training loops). Replay of augmentation codes (tinyshard.replay, needs
Pillow) and the PyTorch glue (tinyshard.torch, needs torch) are imported on demand, so this core
needs numpy alone."""

__version__ = "0.1.0"

from .dataset import Dataset
from .errors import ERROR_CODES, ShardError
from .imagestore import ImageStore, ImageStoreError
from .imagestore_writer import ImageStoreWriter, write_image_store
from .labels import LabelError, SoftLabels
from .reader import Record, ShardReader
from .verify import Problem, verify_dataset, verify_shard
from .writer import ShardWriter

__all__ = ["Dataset", "ERROR_CODES", "ImageStore", "ImageStoreError", "ImageStoreWriter", "LabelError", "Problem", "Record", "ShardError",
           "ShardReader", "ShardWriter", "SoftLabels", "verify_dataset", "verify_shard", "write_image_store"]
