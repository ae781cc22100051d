#!/usr/bin/env python3
"""What a PyTorch training process meets when it opens a TinyShard dataset: one measurement per call,
printed as one JSON object (Tools/scale/scale_ladder.py runs each in a fresh interpreter).

    python3 Tools/scale/python_probe.py open DATASET
    python3 Tools/scale/python_probe.py worker DATASET
    python3 Tools/scale/python_probe.py keys DATASET OFFICIAL_EPOCH_FOLDER
    python3 Tools/scale/python_probe.py rows DATASET OFFICIAL_EPOCH_FOLDER [--seconds S] [--rounds N]

open    SoftLabels(DATASET) in this fresh process and one key -> id -> dense row: seconds and resident MB
        (the interpreter with numpy and tinyshard imported is measured first, so the open's own cost shows).
        The first row builds the epoch's sample table (FORMAT.md 1.3); memory is split into anonymous and
        file-backed (page cache of the mapped shards, shared between processes) resident pages.
worker  the same SoftLabels opened in a parent, then a forked child (a DataLoader worker) asks for one row:
        the child's seconds to its first row (it maps the files again) and the anonymous memory it adds.
keys    every key of the official epoch's keys files (read before the clock starts) -> sample ids in one
        vectorised call (KeyTable.sample_ids); checks each id maps back to its key on a sample.
rows    dense float32 rows of epoch 0, K and C from the dataset, in batches of 256 into a reused buffer:
        in the record-order sampler's order (rank 0 of 8, window 4; Spec/RECORD-ORDER.md) and in random
        order, next to the official layout's numpy reader (Tools/python/official_numpy_reader.py) in random
        order, interleaved in rounds in this one process (medians of the rounds); and the fill ceiling: rows/s
        of only writing one value into every float of the batch, a bound no dense reader can pass. Random
        rows are measured once the block cache has been filled once (its first fill is reported apart).
        Prints which zlib the reader used (zlib-ng or the standard library's: TINYSHARD_ZLIB).
"""

import argparse
import json
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

import numpy as np  # noqa: E402

BATCH = 256


def resident_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def rss_parts():
    """(anonymous MB, file-backed MB) of this process's resident set: file-backed pages are the page cache
    of mapped shards, shared by every process that maps them and dropped under memory pressure; anonymous
    pages are what the process itself costs."""
    parts = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("RssAnon:", "RssFile:")):
                name, value = line.split(":")
                parts[name] = int(value.split()[0]) / 1e3
    return parts["RssAnon"], parts["RssFile"]


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def first_key(labels):
    return labels.keys[len(labels.keys) // 2]


def probe_open(folder):
    from tinyshard.labels import SoftLabels
    base = resident_mb()
    base_anon, _ = rss_parts()
    start = time.perf_counter()
    labels = SoftLabels(folder, epoch=0)
    opened = time.perf_counter() - start
    opened_mb = resident_mb()
    key = first_key(labels)
    start = time.perf_counter()
    row = labels.dense(np.array([labels.sample_id(key)]))
    first_row = time.perf_counter() - start
    assert row.shape == (1, labels.classes)
    anon, file_backed = rss_parts()
    return {"interpreter_mb": base, "open_s": opened, "open_rss_mb": opened_mb, "open_added_mb": opened_mb - base,
            "first_row_s": first_row, "first_row_anon_added_mb": anon - base_anon, "first_row_file_mb": file_backed,
            "peak_rss_mb": peak_mb()}


def probe_worker(folder):
    from tinyshard.labels import SoftLabels
    labels = SoftLabels(folder, epoch=0)
    key = first_key(labels)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read)
        anon_at_fork, _ = rss_parts()
        start = time.perf_counter()
        row = labels.dense(np.array([labels.sample_id(key)]))
        seconds = time.perf_counter() - start
        anon, file_backed = rss_parts()
        result = {"worker_first_row_s": seconds, "worker_rss_mb": resident_mb(), "worker_anon_added_mb": anon - anon_at_fork,
                  "worker_file_mb": file_backed, "worker_rows": int(row.shape[0])}
        os.write(write, json.dumps(result).encode())
        os._exit(0)
    os.close(write)
    chunks = []
    while True:
        chunk = os.read(read, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    _, status = os.waitpid(child, 0)
    if status != 0 or not chunks:
        raise SystemExit(f"the forked worker failed (status {status})")
    result = json.loads(b"".join(chunks))
    result["parent_rss_mb"] = resident_mb()
    return result


def official_keys(epoch_folder):
    """Every key of the epoch's ranks, first appearance kept (a padded key is in two ranks)."""
    keys, seen = [], set()
    for name in sorted(os.listdir(epoch_folder)):
        if name.endswith("-keys.txt"):
            with open(os.path.join(epoch_folder, name)) as f:
                for line in f:
                    key = line.rstrip("\n")
                    if key not in seen:
                        seen.add(key)
                        keys.append(key)
    return keys


def probe_keys(folder, epoch_folder):
    from tinyshard.dataset import Dataset
    keys = official_keys(epoch_folder)
    table = Dataset(folder).keys
    before = resident_mb()
    start = time.perf_counter()
    ids = table.sample_ids(keys)
    seconds = time.perf_counter() - start
    rng = np.random.default_rng(3)
    for position in rng.integers(0, len(keys), 1000).tolist():
        if table[int(ids[position])] != keys[position]:
            raise SystemExit(f"sample id {int(ids[position])} does not map back to {keys[position]!r}")
    return {"keys": len(keys), "key_to_id_s": seconds, "keys_per_s": len(keys) / seconds,
            "key_to_id_added_mb": resident_mb() - before}


def probe_rows(folder, epoch_folder, seconds, rounds):
    from official_numpy_reader import OfficialEpoch
    from tinyshard.labels import SoftLabels
    labels = SoftLabels(folder, epoch=0)
    classes, k = labels.classes, labels.k
    out = np.empty((BATCH, classes), np.float32)
    ids = labels.ids_in_epoch()
    start = time.perf_counter()
    official = OfficialEpoch(epoch_folder, k)
    official_open = time.perf_counter() - start
    keys = labels.keys
    rng = np.random.default_rng(0)

    def record_order():
        reader = labels.in_record_order(0, 8, 0, window=4)
        done, begin = 0, time.perf_counter()
        for batch in reader.batches(BATCH, drop_last=True):
            batch.dense(out)
            done += len(batch)
            if time.perf_counter() - begin > seconds:
                break
        return done / (time.perf_counter() - begin)

    def random_ours(picks):
        begin = time.perf_counter()
        for pick in picks:
            labels.dense(pick, out=out)
        return BATCH * len(picks) / (time.perf_counter() - begin)

    def random_official(names):
        begin = time.perf_counter()
        for batch in names:
            np.stack([official.dense(key, classes) for key in batch])
        return BATCH * len(names) / (time.perf_counter() - begin)

    def fill_ceiling():
        # Only writing the batch: one scalar into every float of BATCH dense rows. No reader can hand out
        # dense rows faster than memory takes these writes (C = 21,841: 87 KB a row).
        done, begin = 0, time.perf_counter()
        while time.perf_counter() - begin < min(seconds, 1.0):
            out.fill(0.5)
            done += BATCH
        return done / (time.perf_counter() - begin)

    # Random requests at their steady state: every byte slot of the block cache (cache_bytes, 256 MB by
    # default) used once. At 14.2 M keys the cache's first fill, ~140 requests of 256, ran at ~0.6x the
    # later rate; "random_first_rows_per_s" reports it.
    random_ours([rng.choice(ids, BATCH, replace=False)])
    slots = labels._slab.random().slots
    warm_up = [rng.choice(ids, BATCH, replace=False) for _ in range(-(-slots // BATCH) + 2)]
    first_fill = random_ours(warm_up)
    ordered, ours, theirs, ceiling = [], [], [], []
    for _ in range(rounds):
        ceiling.append(fill_ceiling())
        ordered.append(record_order())
        picks = [rng.choice(ids, BATCH, replace=False) for _ in range(8)]
        names = [[keys[i] for i in pick.tolist()] for pick in picks]
        ours.append(random_ours(picks))
        theirs.append(random_official(names))
    return {"dense_fill_ceiling_rows_per_s": float(np.median(ceiling)),
            "record_order_dense_rows_per_s": float(np.median(ordered)),
            "random_dense_rows_per_s": float(np.median(ours)),
            "official_random_dense_rows_per_s": float(np.median(theirs)),
            "random_vs_official": float(np.median(ours) / np.median(theirs)),
            "random_first_rows_per_s": first_fill, "random_cache_slots": slots,
            "official_open_s": official_open, "rows_peak_rss_mb": peak_mb()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["open", "worker", "keys", "rows"])
    parser.add_argument("dataset")
    parser.add_argument("official", nargs="?", help="the official epoch folder (logits_top{K}_epoch0)")
    parser.add_argument("--seconds", type=float, default=2.0, help="record order: seconds per pass")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.what in ("keys", "rows") and not args.official:
        parser.error(f"{args.what} needs the official epoch folder")
    if args.what == "open":
        result = probe_open(args.dataset)
    elif args.what == "worker":
        result = probe_worker(args.dataset)
    elif args.what == "keys":
        result = probe_keys(args.dataset, args.official)
    else:
        result = probe_rows(args.dataset, args.official, args.seconds, args.rounds)
    from tinyshard._zlib import BACKEND
    result["zlib"] = BACKEND
    print(json.dumps(result))


if __name__ == "__main__":
    main()
