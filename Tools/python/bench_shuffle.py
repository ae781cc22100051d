#!/usr/bin/env python3
"""Batch class mix of the record-order sampler (Spec/RECORD-ORDER.md) against a uniform shuffle, one table.

    python3 Tools/python/bench_shuffle.py DATASET [--batch 256] [--world 8] [--windows 0,1,4,16]

DATASET: a converted pass (ImageNet-1k shape: K = 10, C = 1000, >= 10^6 records an epoch, >= 2 epochs,
8 ranks, e.g. Tools/scale/make_official.py then `tinyshard convert official`). The class of a record is its
teacher's top-1 class (the first stored entry of a sorted shard). For every stored epoch and every rank of
--world, the rank's record order is cut into batches of --batch; per batch: the number of distinct top-1
classes, the largest class's share of the batch, and the total-variation distance between the batch's class
histogram and the epoch's (0.5 * sum |h_batch - h_epoch|). Rows: record order with each window, and a uniform
random permutation of the epoch (dealt to ranks as DistributedSampler deals it), with the same batch size.
"Re-read" is for a stored epoch read a second time (training epoch t + E after t): the share of record pairs
sharing a batch in the first reading that share one again in the second, over all ranks' batches (a uniform
shuffle: about batch / records; window 0 reads the same batches again: 1).
"""

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from tinyshard.labels import SoftLabels  # noqa: E402


def top1_classes(labels, epoch):
    """{shard rank: int32 array of each record's top-1 class, by ordinal}, read in stored order."""
    reader = labels.in_record_order(epoch)                  # world 1, window 0: every record as stored
    classes = np.empty(len(reader), dtype=np.int32)
    for start in range(0, len(reader), 1 << 16):
        batch = reader.batch(start, min(start + (1 << 16), len(reader)))
        classes[start:start + len(batch)] = batch.indices[:, 0]
    out = {}
    for rank in np.unique(reader.ranks).tolist():
        mine = reader.ranks == rank
        out[rank] = np.empty(int(mine.sum()), dtype=np.int32)
        out[rank][reader.ordinals[mine]] = classes[mine]
    return out


def batch_stats(classes, batch, epoch_share, class_count):
    """(distinct classes, largest share, TV distance) per full batch of a sequence of classes."""
    full = len(classes) // batch
    rows = np.sort(classes[:full * batch].reshape(full, batch), axis=1)
    changes = rows[:, 1:] != rows[:, :-1]
    distinct = changes.sum(axis=1) + 1
    counts = np.zeros((full, class_count), dtype=np.int32)
    np.add.at(counts, (np.repeat(np.arange(full), batch), rows.reshape(-1)), 1)
    largest = counts.max(axis=1) / batch
    tv = 0.5 * np.abs(counts / batch - epoch_share).sum(axis=1)
    return distinct, largest, tv


def pair_repeat(first, second, batch, records):
    """Share of record pairs that share a batch in the first reading and again in the second. Each reading
    is a list of every rank's record numbers in reading order (batches are per rank; full batches only)."""
    def batch_of(reading):
        out = np.full(records, -1, np.int64)
        base = 0
        for mine in reading:
            full = len(mine) // batch
            out[mine[:full * batch]] = base + np.arange(full * batch) // batch
            base += full
        return out, base
    (b1, count), (b2, _) = batch_of(first), batch_of(second)
    both = (b1 >= 0) & (b2 >= 0)
    _, together = np.unique(b1[both] * (count + 1) + b2[both], return_counts=True)
    return float((together * (together - 1) // 2).sum() / (count * batch * (batch - 1) // 2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--world", type=int, default=8)
    parser.add_argument("--windows", default="0,1,4,16")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    labels = SoftLabels(args.dataset, cache_bytes=64 << 20)
    windows = [int(w) for w in args.windows.split(",")]
    stored = labels.epochs
    rows = {name: [] for name in [f"record order, window {w}" for w in windows] + ["uniform shuffle"]}
    repeats = {name: [] for name in rows}
    total_records = 0
    started = time.perf_counter()
    for epoch in stored:
        top1 = top1_classes(labels, epoch)
        ranks_sorted = sorted(top1)
        offset = np.cumsum([0] + [len(top1[r]) for r in ranks_sorted])
        everything = np.concatenate([top1[r] for r in ranks_sorted])
        total_records += len(everything)
        class_count = labels.classes
        share = np.bincount(everything, minlength=class_count) / len(everything)
        starts = np.zeros(max(ranks_sorted) + 1, dtype=np.int64)       # shard rank -> first position
        starts[ranks_sorted] = offset[:-1]
        for w in windows:
            name = f"record order, window {w}"
            readings = [[], []]
            for rank in range(args.world):
                for reading, t in zip(readings, (epoch, epoch + len(stored))):   # the stored epoch read twice
                    shard_ranks, ordinals = labels.record_order(epoch, args.world, rank, w, args.seed, t)
                    reading.append(starts[shard_ranks] + ordinals)
                rows[name].append(batch_stats(everything[readings[0][-1]], args.batch, share, class_count))
            repeats[name].append(pair_repeat(*readings, args.batch, len(everything)))
        rng = np.random.default_rng([args.seed, epoch])
        readings = [rng.permutation(len(everything)) for _ in range(2)]
        q = -(-len(everything) // args.world)
        dealt = [[np.concatenate([r, r[:args.world * q - len(r)]])[rank::args.world] for rank in range(args.world)]
                 for r in readings]                             # DistributedSampler's deal: rank::world
        for mine in dealt[0]:
            rows["uniform shuffle"].append(batch_stats(everything[mine], args.batch, share, class_count))
        repeats["uniform shuffle"].append(pair_repeat(*dealt, args.batch, len(everything)))
    print(f"{len(stored)} stored epochs, {total_records:,} records, C = {labels.classes}, K = {labels.k}; "
          f"batches of {args.batch} on each of {args.world} ranks; {time.perf_counter() - started:.0f} s\n")
    print("| order | batches | distinct top-1 classes, mean (min) | largest class share, mean (max) | "
          "TV distance to the epoch, mean (max) | re-read: pairs batched together again |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, parts in rows.items():
        distinct = np.concatenate([p[0] for p in parts])
        largest = np.concatenate([p[1] for p in parts])
        tv = np.concatenate([p[2] for p in parts])
        print(f"| {name} | {len(distinct):,} | {distinct.mean():.1f} ({distinct.min()}) | "
              f"{100 * largest.mean():.2f}% ({100 * largest.max():.2f}%) | {tv.mean():.4f} ({tv.max():.4f}) | "
              f"{np.mean(repeats[name]):.4f} |")


if __name__ == "__main__":
    main()
