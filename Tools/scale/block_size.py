#!/usr/bin/env python3
"""Records per block (R): bytes per record against random-access speed.

    python Tools/scale/block_size.py OFFICIAL_EPOCH_DIR --classes 21841 --r 16,32,64,128,256,1024

OFFICIAL_EPOCH_DIR holds logits_top{K}_epoch{E}/rank{r}-keys.txt, rank{r}-values.bin (the official
TinyViT layout; Tools/scale/make_official.py writes one). For each R:

1. `tinyshard convert official SRC --out DST --classes C --records-per-block R` (timed);
2. bytes/record: the manifest's shard bytes summed, over its records (the key table is reported apart:
   it does not depend on R);
3. Swift: `tinyshard-bench scale DST --lookups L --rows N --random L` (JSON): random_dense_rows_per_s
   (L random records, one cursor per shard, a block decode each unless the cursor holds it) and
   record_order_dense_rows_per_s (the first N records in record order); and, because wall time on a
   loaded machine mostly measures the scheduler, random rows per CPU second: the same bench run again
   with --random 1, (L - 1) / (the difference of the two runs' user + system CPU time);
4. Python: SoftLabels(DST, cache_bytes=...).dense(ids, out=...) and .sparse(ids) over random batches of
   256 sample ids of epoch 0, for about --seconds each, median of --rounds rounds, per wall second and
   per CPU second of this process (time.process_time). The default cache is
   1 byte and the slab is emptied before each batch (unless --warm): no block survives from one batch to
   the next, as for a dataset far larger than the cache; the blocks inflated per row are counted (a
   block that several records of one batch share is inflated once, which a small dataset flatters:
   100,000 records at R = 1024 are ~100 blocks, so a batch of 256 shares many; at ImageNet scale, one
   block per row). --cache-mb gives the slab a budget.

DST is deleted after measuring (unless --keep). One JSON line per R on stdout; a table at the end.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from tinyshard.labels import SoftLabels  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BATCH = 256


def bench(binary, dst, lookups, rows, random):
    """(JSON of `tinyshard-bench scale`, the child's CPU seconds, user + system)."""
    child = subprocess.Popen([binary, "scale", dst, "--lookups", str(lookups), "--rows", str(rows),
                              "--random", str(random)], stdout=subprocess.PIPE, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"tinyshard-bench scale {dst} failed ({child.returncode})")
    return json.loads(out), usage.ru_utime + usage.ru_stime


def empty(slab):
    """Forget every block a SoftLabels slab holds (its random-request store's too), keeping its memory."""
    for store in (slab, getattr(slab, "_random", None)):
        if store is None:
            continue
        store.slot_of[:] = -1
        store.block_in[:] = -1
        if hasattr(store, "ring_of"):
            store.ring_of[:] = -1
            store.owner[:] = -1
        if hasattr(store, "decoded"):
            store.decoded[:] = False


def python_random(folder, seconds, rounds, cache_bytes, cold, seed=0):
    """Median (rows per wall second, rows per CPU second) of dense and of sparse random batches, and the
    blocks inflated per row. `cold`: the slab is emptied before each batch (no block survives from one
    batch to the next, as for a dataset far larger than any cache); blocks shared within a batch are still
    inflated once (a small dataset has few blocks, so a batch shares more of them than at scale)."""
    import tinyshard.labels as module
    inflated = [0]
    originals = {name: getattr(module, name) for name in ("read_block", "block_sections") if hasattr(module, name)}

    def counting(function):
        def counted(*a, **k):
            inflated[0] += 1
            return function(*a, **k)
        return counted

    for name, function in originals.items():           # every block check and inflation goes through one
        setattr(module, name, counting(function))
    labels = SoftLabels(folder, epoch=0, cache_bytes=cache_bytes)
    ids = labels.ids_in_epoch()
    out = np.empty((BATCH, labels.classes), np.float32)
    rng = np.random.default_rng(seed)
    done_rows = [0]
    for _ in range(2):                                               # warm-up: maps, slab allocation
        labels.dense(rng.choice(ids, BATCH, replace=False), out=out)

    def run(kind):
        """(rows per wall second, rows per CPU second of this process)."""
        done, begin, cpu = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - begin < seconds:
            pick = rng.choice(ids, BATCH, replace=False)
            if cold:
                empty(labels._slab)
            if kind == "dense":
                labels.dense(pick, out=out)
            else:
                labels.sparse(pick)
            done += BATCH
        done_rows[0] += done
        return done / (time.perf_counter() - begin), done / (time.process_time() - cpu)

    inflated[0], rows0 = 0, 0
    dense, sparse = [], []
    for _ in range(rounds):
        dense.append(run("dense"))
        sparse.append(run("sparse"))
    for name, function in originals.items():
        setattr(module, name, function)
    return ([float(x) for x in np.median(np.array(dense), axis=0)],
            [float(x) for x in np.median(np.array(sparse), axis=0)], inflated[0] / max(done_rows[0], 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="folder holding logits_top{K}_epoch{E} folders")
    parser.add_argument("--classes", type=int, required=True)
    parser.add_argument("--r", default="16,32,64,128,256,1024")
    parser.add_argument("--work", default="/tmp/block-size", help="where the converted copies go")
    parser.add_argument("--tinyshard", default=os.path.join(ROOT, ".build/release/tinyshard"))
    parser.add_argument("--bench", default=os.path.join(ROOT, ".build/release/tinyshard-bench"))
    parser.add_argument("--lookups", type=int, default=5000, help="Swift: random records (and key lookups)")
    parser.add_argument("--rows", type=int, default=100000, help="Swift: record-order rows")
    parser.add_argument("--seconds", type=float, default=2.0, help="Python: seconds per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache-mb", type=float, default=0, help="Python slab budget (0: one request's blocks)")
    parser.add_argument("--warm", action="store_true", help="Python: keep the slab between batches")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    rows = []
    for r in [int(x) for x in args.r.split(",")]:
        dst = os.path.join(args.work, f"r{r}")
        shutil.rmtree(dst, ignore_errors=True)
        os.makedirs(args.work, exist_ok=True)
        begin = time.perf_counter()
        subprocess.run([args.tinyshard, "convert", "official", args.source, "--out", dst,
                        "--classes", str(args.classes), "--records-per-block", str(r)],
                       check=True, stdout=subprocess.DEVNULL)
        convert_s = time.perf_counter() - begin
        with open(os.path.join(dst, "manifest.json")) as f:
            manifest = json.load(f)
        records = sum(s["records"] for s in manifest["shards"])
        shard_bytes = sum(s["bytes"] for s in manifest["shards"])
        # Twice, alike but for the random rows (L, then 1): the CPU time they differ by is the random rows'.
        result, cpu_full = bench(args.bench, dst, args.lookups, args.rows, args.lookups)
        _, cpu_base = bench(args.bench, dst, args.lookups, args.rows, 1)
        dense, sparse, blocks_per_row = python_random(dst, args.seconds, args.rounds,
                                                      max(1, int(args.cache_mb * (1 << 20))), not args.warm)
        row = {"r": r, "k": manifest["k"], "records": records, "shard_bytes": shard_bytes,
               "bytes_per_record": shard_bytes / records, "key_table_bytes": manifest["keys"]["bytes"],
               "convert_s": round(convert_s, 2),
               "swift_random_dense_rows_per_s": result["random_dense_rows_per_s"],
               "swift_random_dense_rows_per_cpu_s": (args.lookups - 1) / max(cpu_full - cpu_base, 1e-9),
               "swift_record_order_dense_rows_per_s": result["record_order_dense_rows_per_s"],
               "python_random_dense_rows_per_s": dense[0], "python_random_dense_rows_per_cpu_s": dense[1],
               "python_blocks_inflated_per_row": blocks_per_row,
               "python_random_sparse_rows_per_s": sparse[0], "python_random_sparse_rows_per_cpu_s": sparse[1],
               "load": os.getloadavg()[0]}
        print(json.dumps(row), flush=True)
        rows.append(row)
        if not args.keep:
            shutil.rmtree(dst)

    print("\nrows/s: per wall second (per CPU second of the reading process)")
    print("| R | R·K | bytes/record | Swift random dense rows/s | Swift record-order dense rows/s | "
          "Python random dense rows/s | Python random sparse rows/s | Python blocks/row | convert s | load |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['r']} | {row['r'] * row['k']} | {row['bytes_per_record']:.1f} | "
              f"{row['swift_random_dense_rows_per_s']:,.0f} ({row['swift_random_dense_rows_per_cpu_s']:,.0f}) | "
              f"{row['swift_record_order_dense_rows_per_s']:,.0f} | "
              f"{row['python_random_dense_rows_per_s']:,.0f} ({row['python_random_dense_rows_per_cpu_s']:,.0f}) | "
              f"{row['python_random_sparse_rows_per_s']:,.0f} ({row['python_random_sparse_rows_per_cpu_s']:,.0f}) | "
              f"{row['python_blocks_inflated_per_row']:.2f} | "
              f"{row['convert_s']:.1f} | {row['load']:.1f} |")


if __name__ == "__main__":
    main()
