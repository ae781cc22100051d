"""TinyShard: a pure-Python (numpy) implementation of Spec/FORMAT.md.

The main entry points, re-exported here: ShardWriter, ShardReader, Dataset, verify_shard,
verify_dataset and ShardError."""

from .dataset import Dataset
from .errors import ERROR_CODES, ShardError
from .reader import Record, ShardReader
from .verify import Problem, verify_dataset, verify_shard
from .writer import ShardWriter

__all__ = ["Dataset", "ERROR_CODES", "Problem", "Record", "ShardError", "ShardReader",
           "ShardWriter", "verify_dataset", "verify_shard"]
