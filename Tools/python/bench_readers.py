#!/usr/bin/env python3
"""Python reader records/s next to the numpy reader of the official layout, one table, one run.

    python3 Tools/python/bench_readers.py [--seconds S] [--work DIR]

Data: the same synthetic teacher as the shared fixtures (../shared/fixtures/make_official_logits.py),
100,000 images at K=10/C=1000 and 10,000 at K=100/C=21841, one epoch, one rank (the Swift benchmark,
tinyshard-bench, uses the same sets). Each set is converted with this package's converter. Access is
one record at a time by key in a shuffled order (how the official loader reads), plus this reader's
sequential iteration (how a training loop that replays the teacher's order reads).
"""

import argparse
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from official_numpy_reader import OfficialEpoch  # noqa: E402
from tinyshard import Dataset  # noqa: E402
from tinyshard.convert import convert_official  # noqa: E402

GENERATOR = os.path.join(HERE, "..", "..", "..", "shared", "fixtures", "make_official_logits.py")
SETS = [("in1k_top10", 10, 1000, 100_000, "index"), ("in22k_top100", 100, 21841, 10_000, "wnid")]


def rate(keys, fetch, seconds):
    """Records/s of fetch(key) over `keys`, repeated for at least `seconds`, after one warm-up pass
    (which fills the caches: both readers then hold every record they need in memory)."""
    for key in keys:
        fetch(key)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for key in keys:
            fetch(key)
        done += len(keys)
    return done / (time.perf_counter() - start)


def sequential_rate(reader, seconds):
    """Records/s of iterating a shard front to back (sparse records)."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in reader:
            done += 1
    return done / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--work", default="/tmp/tinyshard-pybench")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    print("| data | records | python sparse, random key | python dense, random key | python sparse, sequential"
          " | numpy official sparse, random key | numpy official dense, random key |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for name, k, classes, images, key_style in SETS:
        source = os.path.join(args.work, f"{name}-{images}")
        if not os.path.isdir(os.path.join(source, f"logits_top{k}_epoch0")):
            subprocess.run([sys.executable, GENERATOR, "--out", source, "--k", str(k), "--classes", str(classes),
                            "--images", str(images), "--epochs", "1", "--ranks", "1", "--keys", key_style,
                            "--seed", "1"], check=True, stdout=subprocess.DEVNULL)
        target = os.path.join(args.work, f"{name}-dataset")
        if not os.path.exists(os.path.join(target, "manifest.json")):
            convert_official(source, target, classes)
        dataset = Dataset(target, cache_blocks=1 << 20)   # every block cached, as numpy holds every record
        keys = dataset.keys_in_epoch(0)
        keys = [keys[i] for i in rng.permutation(len(keys))][:20_000]
        ours_sparse = rate(keys, lambda key: dataset.get(0, key), args.seconds)
        ours_dense = rate(keys[:5000], lambda key: dataset.dense_row(0, key), args.seconds)
        reader = dataset.reader(dataset.manifest.shards[0])
        ours_sequential = sequential_rate(reader, args.seconds)
        official = OfficialEpoch(os.path.join(source, f"logits_top{k}_epoch0"), k)
        numpy_sparse = rate(keys, official.sparse, args.seconds)
        numpy_dense = rate(keys[:5000], lambda key: official.dense(key, classes), args.seconds)
        print(f"| {name} (K={k}, C={classes}) | {len(reader):,} | {ours_sparse:,.0f} | {ours_dense:,.0f} | "
              f"{ours_sequential:,.0f} | {numpy_sparse:,.0f} | {numpy_dense:,.0f} |")


if __name__ == "__main__":
    main()
