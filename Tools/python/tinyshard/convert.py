"""Convert teacher logits saved in the official TinyViT layout into a TinyShard dataset.

Official layout: logits_top{K}_epoch{E}/rank{r}-keys.txt (a key per line) and rank{r}-values.bin
(records int32 seed | K x int16 class index | K x float16 probability, little-endian). Records
keep the official order and their seed (augmentation kind `seed`). Each rank keeps its own records
(FORMAT.md 2): a key in several ranks of one epoch (the distributed sampler's padding) has a record in
each rank's shard, and a lookup picks one by the reading rank as the official reader does. A key
repeated within one rank's files keeps its first record, as the official writer would have dropped
the repeat.
"""

import os
import re

import numpy as np

from .augment import encode_seed
from .files import file_size_and_crc
from .keys import DEFAULT_VERSION, KeyTable, write_keys
from .manifest import KEYS_NAME, write_manifest
from .writer import ShardWriter

_EPOCH_DIR = re.compile(r"logits_top(\d+)_epoch(\d+)")
_RANK_FILE = re.compile(r"rank(\d+)-values\.bin")


def official_epochs(folder):
    """[(epoch, K, path)] of the logits_top{K}_epoch{E} folders in `folder`, by epoch."""
    found = []
    for name in os.listdir(folder):
        match = _EPOCH_DIR.fullmatch(name)
        if match and os.path.isdir(os.path.join(folder, name)):
            found.append((int(match.group(2)), int(match.group(1)), os.path.join(folder, name)))
    return sorted(found)


def official_ranks(epoch_folder, k):
    """[(rank, keys, records)] of one epoch folder, by rank. Class indices are read as
    unsigned 16-bit (identical to the official int16 below 32768 classes)."""
    dtype = np.dtype([("seed", "<i4"), ("index", "<u2", (k,)), ("value", "<f2", (k,))])
    ranks = []
    for name in os.listdir(epoch_folder):
        match = _RANK_FILE.fullmatch(name)
        if not match:
            continue
        rank = int(match.group(1))
        with open(os.path.join(epoch_folder, f"rank{rank}-keys.txt"), encoding="utf-8") as f:
            keys = [line.strip() for line in f if line.strip()]
        records = np.fromfile(os.path.join(epoch_folder, name), dtype=dtype)
        if len(records) != len(keys):
            raise ValueError(f"{epoch_folder} rank {rank}: {len(keys)} keys, "
                             f"{len(records)} records")
        ranks.append((rank, keys, records))
    return sorted(ranks, key=lambda item: item[0])


def convert_official(source, target, classes, records_per_block=None, teacher="unknown",
                     key_table_version=DEFAULT_VERSION):
    """Write a dataset (keys.tsk, one shard per epoch and rank, manifest.json) into `target`."""
    epochs = [(epoch, k, official_ranks(path, k)) for epoch, k, path in official_epochs(source)]
    if not epochs:
        raise ValueError(f"no logits_top{{K}}_epoch{{E}} folders in {source}")
    all_keys = sorted({key for _, _, ranks in epochs for _, keys, _ in ranks for key in keys})
    os.makedirs(target, exist_ok=True)
    keys_path = os.path.join(target, KEYS_NAME)
    write_keys(keys_path, all_keys, version=key_table_version)
    del all_keys
    table = KeyTable.open(keys_path)
    checksum = file_size_and_crc(keys_path)[1]
    provenance = {"teacher": teacher, "teacher_checksum": "", "dataset_checksum": checksum,
                  "augmentation_code_version": "tinyvit-official-seed",
                  "writer": "tinyshard-python convert_official"}
    shard_files = []
    for epoch, k, ranks in epochs:
        for rank, keys, records in ranks:
            ids = table.sample_ids(keys)
            _, first = np.unique(ids, return_index=True)       # a repeat within the rank: its first record
            kept = np.sort(first)
            name = f"epoch{epoch:04d}-rank{rank:03d}.tshard"
            with ShardWriter(os.path.join(target, name), classes, k, augmentation_kind="seed",
                             epoch=epoch, rank=rank, records_per_block=records_per_block,
                             provenance=provenance) as writer:
                for sample_id, record in zip(ids[kept].tolist(), records[kept]):
                    writer.append(sample_id, record["index"], record["value"],
                                  encode_seed(int(record["seed"])))
            shard_files.append(name)
    return write_manifest(target, shard_files)
