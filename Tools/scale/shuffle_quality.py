#!/usr/bin/env python3
"""Batch class mix of the record-order sampler (Spec/RECORD-ORDER.md) against a uniform shuffle.

    python Tools/scale/shuffle_quality.py DATASET --class-of top1 --batch 256 --world 8 --windows 0,1,4,16
    python Tools/scale/shuffle_quality.py DATASET --class-of store:PATH.tsimg ...

For each window w, every rank r < W of the world reads its share of a stored epoch through
`SoftLabels(DATASET).in_record_order(epoch, W, r, window=w, seed=S).batches(B, drop_last=True)`; the
class of each record of each batch is taken from the batch itself (top1: the stored index with the
largest stored value of the record's top-K, i.e. `indices[:, 0]` of a sorted shard; store:PATH: the
label that the image store gives the batch's sample id's key). The reference is a uniform random
permutation of the same epoch's N records, dealt as the sampler deals (W contiguous shares of
q = ceil(N / W), wrapping) and cut into the same batches; `--uniform-draws` permutations per epoch.

With --control, two negative controls: the same sampler positions (window by window) applied to the
epoch's records re-ordered by ascending sample id ("key": what a pass that stored its records in key
order would give) and by class ("sorted": the worst stored order); they show what the statistics
detect, and what a window repairs, when the stored order is not random.

Per batch: distinct classes, the largest class count, the total-variation distance between the batch's
class histogram and the epoch's, the same-class pairs in the batch (sum of h(h-1)/2), and for each
record the fraction whose next record in the batch has the same class. Printed per configuration: the
mean (with its standard error over batches, treating batches as independent) and the 95th percentile
of each, and the neighbour same-class rate pooled over all neighbour pairs. JSON with --json.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from tinyshard.labels import SoftLabels  # noqa: E402


def top1(batch):
    """The stored class index of each record's largest stored value (the first on ties)."""
    at = np.argmax(batch.values.astype(np.float32), axis=1)
    return batch.indices[np.arange(len(at)), at].astype(np.int64)


def store_labels(labels, path):
    """int64 class of every sample id of the dataset: the image store's label of the id's key."""
    from tinyshard import ImageStore
    store = ImageStore(path)
    by_key = dict(zip(store.keys(), store.labels().tolist()))
    keys = list(labels.keys.all_keys())
    missing = [k for k in keys if k not in by_key]
    if missing:
        raise SystemExit(f"{len(missing)} of the dataset's {len(keys)} keys are not in {path} "
                         f"(first: {missing[0]!r})")
    return np.array([by_key[k] for k in keys], dtype=np.int64), store.classes


class Stats:
    """Per-batch statistics of a configuration, accumulated batch by batch."""

    def __init__(self, epoch_p):
        self.epoch_p = epoch_p
        self.distinct, self.largest, self.tv, self.pairs = [], [], [], []
        self.neighbour_same = 0
        self.neighbour_pairs = 0

    def add(self, classes):
        values, counts = np.unique(classes, return_counts=True)
        n = len(classes)
        p = self.epoch_p[values]
        self.distinct.append(len(values))
        self.largest.append(int(counts.max()))
        # TV = 1/2 sum_c |h_c/n - p_c| = 1/2 (sum over classes in the batch of |h_c/n - p_c| + mass of the others)
        self.tv.append(0.5 * (np.abs(counts / n - p).sum() + (1.0 - p.sum())))
        self.pairs.append(int((counts * (counts - 1) // 2).sum()))
        self.neighbour_same += int((classes[1:] == classes[:-1]).sum())
        self.neighbour_pairs += n - 1

    def summary(self):
        out = {"batches": len(self.distinct)}
        for name in ("distinct", "largest", "tv", "pairs"):
            a = np.asarray(getattr(self, name), dtype=np.float64)
            out[name] = {"mean": float(a.mean()), "se": float(a.std(ddof=1) / np.sqrt(len(a))) if len(a) > 1 else 0.0,
                         "p95": float(np.percentile(a, 95))}
        out["neighbour_same"] = self.neighbour_same / max(self.neighbour_pairs, 1)
        out["neighbour_same_count"] = self.neighbour_same
        out["neighbour_pairs"] = self.neighbour_pairs
        return out


def epoch_classes(labels, epoch, class_of_id):
    """(class, sample id) of every record of the epoch, by position (shards in ascending rank, ordinals
    in order): the world-of-one, window-0 record order is exactly the positions 0 .. N - 1."""
    reader = labels.in_record_order(epoch, 1, 0, window=0)
    parts, ids = [], []
    for batch in reader.batches(1 << 16):
        parts.append(top1(batch) if class_of_id is None else class_of_id[batch.ids])
        ids.append(batch.ids)
    return np.concatenate(parts), np.concatenate(ids)


def positions(labels, epoch, world, rank, window, seed):
    """The sampler's output as epoch positions (record_order's (shard rank, ordinal) pairs)."""
    entries = labels._view(epoch).entries
    lookup = np.zeros(max(e.rank for e in entries) + 1, dtype=np.int64)
    lookup[[e.rank for e in entries]] = np.cumsum([0] + [e.records for e in entries])[:-1]
    ranks, ordinals = labels.record_order(epoch, world, rank, window, seed)
    return lookup[ranks] + ordinals


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset")
    parser.add_argument("--class-of", default="top1", help="top1 | store:PATH")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--world", type=int, default=8)
    parser.add_argument("--windows", default="0,1,4,16")
    parser.add_argument("--epochs", default=None, help="stored epochs to read (comma list; default: all)")
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    parser.add_argument("--uniform-draws", type=int, default=1, help="uniform permutations per epoch")
    parser.add_argument("--json", default=None, help="write the summary here")
    parser.add_argument("--control", action="store_true",
                        help="also negative controls: the same sampler over the epoch's records as if they were "
                             "stored in ascending sample id (key) or sorted by class (sorted)")
    args = parser.parse_args()

    started = time.time()
    labels = SoftLabels(args.dataset)
    class_of_id, classes = None, labels.classes
    if args.class_of.startswith("store:"):
        class_of_id, classes = store_labels(labels, args.class_of[len("store:"):])
    elif args.class_of != "top1":
        parser.error("--class-of is top1 or store:PATH")
    windows = [int(w) for w in args.windows.split(",")]
    epochs = labels.epochs if args.epochs is None else [int(e) for e in args.epochs.split(",")]
    rng = np.random.default_rng(12345)

    stats = {}
    for epoch in epochs:
        by_position, ids = epoch_classes(labels, epoch, class_of_id)
        n = len(by_position)
        epoch_p = np.bincount(by_position, minlength=classes) / n
        q = -(-n // args.world)
        for draw in range(args.uniform_draws):
            order = rng.permutation(n)
            s = stats.setdefault("uniform", Stats(None))
            s.epoch_p = epoch_p
            for r in range(args.world):
                share = order[(r * q + np.arange(q)) % n]
                for start in range(0, q - q % args.batch, args.batch):
                    s.add(by_position[share[start:start + args.batch]])
        for w in windows:
            s = stats.setdefault(f"w={w}", Stats(None))
            s.epoch_p = epoch_p
            for r in range(args.world):
                reader = labels.in_record_order(epoch, args.world, r, window=w, seed=args.seed)
                for batch in reader.batches(args.batch, drop_last=True):
                    s.add(top1(batch) if class_of_id is None else class_of_id[batch.ids])
        if args.control:
            controls = {"key": by_position[np.argsort(ids, kind="stable")],
                        "sorted": np.sort(by_position, kind="stable")}
            for w in windows:
                orders = [positions(labels, epoch, args.world, r, w, args.seed) for r in range(args.world)]
                for name, stored in controls.items():
                    s = stats.setdefault(f"{name} w={w}", Stats(None))
                    s.epoch_p = epoch_p
                    for order in orders:
                        for start in range(0, len(order) - len(order) % args.batch, args.batch):
                            s.add(stored[order[start:start + args.batch]])
        print(f"epoch {epoch}: {n} records, {time.time() - started:.0f} s", file=sys.stderr)

    summary = {"dataset": os.path.abspath(args.dataset), "class_of": args.class_of, "classes": int(classes),
               "batch": args.batch, "world": args.world, "epochs": epochs, "seed": args.seed,
               "uniform_draws": args.uniform_draws, "seconds": round(time.time() - started, 1),
               "results": {name: s.summary() for name, s in stats.items()}}
    # Expected neighbour same-class rate of a uniform draw with replacement: sum_c p_c^2 (last epoch's p).
    summary["sum_p2_last_epoch"] = float((epoch_p ** 2).sum())

    header = (f"{'order':>10} {'batches':>7} | {'distinct mean±se':>18} {'p95':>6} | {'largest mean±se':>16} {'p95':>4} | "
              f"{'TV mean±se':>16} {'p95':>6} | {'pairs mean':>10} {'p95':>5} | {'neigh same':>10}")
    print(header)
    for name, r in summary["results"].items():
        d, l, t, p = r["distinct"], r["largest"], r["tv"], r["pairs"]
        print(f"{name:>10} {r['batches']:>7} | {d['mean']:>10.3f}±{d['se']:<7.3f} {d['p95']:>6.1f} | "
              f"{l['mean']:>8.3f}±{l['se']:<7.3f} {l['p95']:>4.0f} | {t['mean']:>8.4f}±{t['se']:<7.4f} {t['p95']:>6.4f} | "
              f"{p['mean']:>10.2f} {p['p95']:>5.0f} | {r['neighbour_same']:>10.5f} "
              f"({r['neighbour_same_count']}/{r['neighbour_pairs']})")
    print(f"sum p_c^2 (epoch {epochs[-1]}): {summary['sum_p2_last_epoch']:.6f}; {summary['seconds']} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
