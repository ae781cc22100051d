#!/usr/bin/env python3
"""Baseline: read teacher logits in the official TinyViT layout the way the official code does.

Layout (microsoft/Cream TinyViT, save_logits.py and data/augmentation/manager.py):
  logits_top{K}_epoch{E}/rank{r}-keys.txt    one key per line
  logits_top{K}_epoch{E}/rank{r}-values.bin  records: int32 seed | K x int16 class index |
                                             K x float16 probability, little-endian
Each values file is loaded whole with numpy.fromfile into a structured dtype; a dict maps
key -> (rank, row), the lowest rank winning for a key found in several ranks. A record decodes as
the official dataset wrapper does (seed, int16 indices, float16 values, copied), and its dense
row as the official training loop does: the K values in place, every other class
(1 - sum) / (C - K), in float32.

Usage: python3 official_numpy_reader.py DIR --classes C [--seconds S]
DIR is one logits_top{K}_epoch{E} folder or a folder holding several.
"""

import argparse
import os
import re
import sys
import time

import numpy as np

_EPOCH_DIR = re.compile(r"logits_top(\d+)_epoch(\d+)")
_VALUES = re.compile(r"rank(\d+)-values\.bin")


def record_dtype(k):
    return np.dtype([("seed", "<i4"), ("index", "<i2", (k,)), ("value", "<f2", (k,))])


class OfficialEpoch:
    """One logits_top{K}_epoch{E} folder, fully loaded."""

    def __init__(self, folder, k):
        self.k = k
        self.ranks = {}                       # rank -> structured records
        self.where = {}                       # key -> (rank, row)
        for rank in sorted(int(m.group(1)) for m in map(_VALUES.fullmatch, os.listdir(folder))
                           if m):
            self.ranks[rank] = np.fromfile(os.path.join(folder, f"rank{rank}-values.bin"),
                                           dtype=record_dtype(k))
            with open(os.path.join(folder, f"rank{rank}-keys.txt")) as f:
                for row, line in enumerate(f):
                    self.where.setdefault(line.strip(), (rank, row))   # lowest rank wins

    def sparse(self, key):
        """(int16 indices, float16 values, seed) of one record, copied like the official code."""
        rank, row = self.where[key]
        record = self.ranks[rank][row]
        return record["index"].copy(), record["value"].copy(), int(record["seed"])

    def dense(self, key, classes):
        """float32 row of C: stored values in place, the rest (1 - sum) / (C - K)."""
        index, value, _ = self.sparse(key)
        value = value.astype(np.float32)
        row = np.full(classes, (1.0 - value.sum()) / (classes - self.k), dtype=np.float32)
        row[index.astype(np.int64)] = value
        return row


def find_epochs(folder):
    """[(epoch, K, path)]: `folder` itself when it is an epoch folder, else its epoch folders."""
    folder = os.path.abspath(folder)
    match = _EPOCH_DIR.fullmatch(os.path.basename(folder))
    if match:
        return [(int(match.group(2)), int(match.group(1)), folder)]
    return sorted((int(m.group(2)), int(m.group(1)), os.path.join(folder, m.group(0)))
                  for m in map(_EPOCH_DIR.fullmatch, os.listdir(folder)) if m)


def _rate(keys, fetch, seconds):
    done, start = 0, time.perf_counter()
    while True:
        for key in keys:
            fetch(key)
        done += len(keys)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def bench(folder, seconds, classes, seed=0):
    """Sparse and dense records/s, one record at a time by key in a shuffled key order."""
    rng = np.random.default_rng(seed)
    results = {}
    for epoch, k, path in find_epochs(folder):
        data = OfficialEpoch(path, k)
        keys = list(data.where)
        keys = [keys[i] for i in rng.permutation(len(keys))]
        sparse = _rate(keys, data.sparse, seconds / 2)
        dense = _rate(keys, lambda key: data.dense(key, classes), seconds / 2)
        results[epoch] = (sparse, dense)
        print(f"epoch {epoch}: {len(keys)} keys, sparse {sparse:,.0f} records/s, "
              f"dense {dense:,.0f} records/s")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--classes", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    if not find_epochs(args.folder):
        print(f"no logits_top{{K}}_epoch{{E}} folder in {args.folder}", file=sys.stderr)
        return 2
    bench(args.folder, args.seconds, args.classes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
