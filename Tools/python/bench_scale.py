#!/usr/bin/env python3
"""Reading at ImageNet scale, one process, one thread, one run (the numbers of the record-order work).

    python3 Tools/python/bench_scale.py --k100 DS100 --official100 OFF100 [--k10 DS10] [--seconds S]

DS100: a converted K = 100, C = 21,841 pass (>= 10^6 records in epoch 0, records_per_block 128); OFF100 its
official-layout source folder (logits_top100_epoch0/...); DS10 a K = 10, C = 1,000 pass (records_per_block
1024). Make them with Tools/scale/make_official.py and `tinyshard convert official ... --records-per-block R`.

1. Decode: µs per record of checking + inflating a block (read_block) and of decoding it (decode_block, one
   block per call), over the first blocks of epoch 0's first shard. Runs against any version of the package
   (PYTHONPATH), so the same command measures before and after a change.
2. Dense rows, memory bound: np.full of a (256, C) float32 batch, and filling a reused (256, C) buffer.
3. Random access: SoftLabels.dense of batches of 256 random sample ids of epoch 0 (a cache far smaller than
   the epoch), next to the official-layout numpy reader (Tools/python/official_numpy_reader.py: one dense row
   per key, stacked, as the official loader builds a batch), interleaved in rounds; and what one random row
   costs, by part (block CRC, inflating the five sections, decoding the rows, the dense fill).
4. Record order (needs tinyshard.record_order): rank 0 of 8's record order of epoch 0, windows 0 and 4,
   RecordOrderReader batches of 256: dense rows/s into a reused buffer, and sparse rows/s.
5. With --r-sets DS,DS,... --r-official OFF: random access against records_per_block, on conversions of
   one official-layout source OFF with several R (rows per CPU second, the official reader interleaved).
"""

import argparse
import os
import sys
import time
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from official_numpy_reader import OfficialEpoch  # noqa: E402
from tinyshard import Dataset  # noqa: E402
from tinyshard.codec import decode_block  # noqa: E402
from tinyshard.labels import SoftLabels, scatter_dense  # noqa: E402
from tinyshard.layout import read_block  # noqa: E402

BATCH = 256


def best_of(work, repeats=5):
    """Least wall time of `repeats` calls of work() (the machine is shared: the least is the least disturbed)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def decode_table(folders):
    from tinyshard import codec
    batched = hasattr(codec, "RecordBytes")          # this version decodes rows of several blocks in one call
    print("## 1. Block decode (least of 5 passes)\n")
    print("| data | R | blocks | read_block (CRC + inflate), µs/record | decode_block, one block per call, "
          "µs/record | decode_records, 2048 records per call, µs/record |")
    print("|---|---:|---:|---:|---:|---:|")
    for folder in folders:
        dataset = Dataset(folder)
        reader = dataset.reader(sorted(dataset.manifest.shards, key=lambda e: (e.epoch, e.rank))[0])
        blocks = range(min(64, reader.layout.blocks))
        raws = [read_block(reader._buf, reader.layout, b) for b in blocks]
        records = sum(raw.n for raw in raws)
        read = best_of(lambda: [read_block(reader._buf, reader.layout, b) for b in blocks])
        decode = best_of(lambda: [decode_block(reader.header, r.first, r.n, r.sections) for r in raws])
        h = reader.header
        many = "n/a"
        if batched:
            per_call = max(1, 2048 // h.records_per_block)
            groups = [codec.RecordBytes.concatenate([codec.record_bytes(h, r.n, r.sections) for r in raws[i:i + per_call]])
                      for i in range(0, len(raws), per_call)]
            many = f"{1e6 * best_of(lambda: [codec.decode_records(h, 0, g) for g in groups]) / records:.2f}"
        print(f"| K={h.k}, C={h.classes} | {h.records_per_block} | {len(raws)} | {1e6 * read / records:.2f} | "
              f"{1e6 * decode / records:.2f} | {many} |", flush=True)


def fill_table(classes):
    print(f"\n## 2. The memory bound: a ({BATCH}, {classes}) float32 batch (least of 20)\n")
    out = np.empty((BATCH, classes), np.float32)
    residual = np.random.default_rng(0).random(BATCH).astype(np.float32)
    fresh = best_of(lambda: np.full((BATCH, classes), 0.25, np.float32), 20)
    reused = best_of(lambda: out.fill(0.25), 20)
    rows = best_of(lambda: out.__setitem__(Ellipsis, residual[:, None]), 20)
    print("| operation | rows/s | GB/s written |\n|---|---:|---:|")
    for name, seconds in (("np.full, a new array each time", fresh), ("fill of a reused buffer", reused),
                          ("each row its residual, reused buffer (scatter_dense's fill)", rows)):
        print(f"| {name} | {BATCH / seconds:,.0f} | {BATCH * classes * 4 / seconds / 1e9:.1f} |", flush=True)


def random_table(folder, official_folder, cache_bytes, rounds, batches_per_round):
    print(f"\n## 3. Random access, K = 100: batches of {BATCH} random sample ids of epoch 0 "
          f"({rounds} interleaved rounds of {batches_per_round} batches each)\n")
    labels = SoftLabels(folder, cache_bytes=cache_bytes, epoch=0)
    ids = labels.ids_in_epoch()
    classes, k = labels.classes, labels.k
    official = OfficialEpoch(os.path.join(official_folder, f"logits_top{k}_epoch0"), k)
    keys = labels.keys
    rng = np.random.default_rng(0)
    out = np.empty((BATCH, classes), np.float32)
    for _ in range(batches_per_round):                  # the cache at its steady state first
        labels.dense(rng.choice(ids, BATCH, replace=False), out=out)
    ours, theirs = [], []
    for _ in range(rounds):
        picks = [rng.choice(ids, BATCH, replace=False) for _ in range(batches_per_round)]
        names = [[keys[i] for i in pick.tolist()] for pick in picks]
        start = time.perf_counter()
        for pick in picks:
            labels.dense(pick, out=out)
        ours.append(BATCH * len(picks) / (time.perf_counter() - start))
        start = time.perf_counter()
        for batch in names:
            np.stack([official.dense(key, classes) for key in batch])
        theirs.append(BATCH * len(picks) / (time.perf_counter() - start))
    print(f"epoch 0: {len(ids):,} records; SoftLabels cache {cache_bytes >> 20} MiB\n")
    print("| reader | rows/s, median of rounds (min-max) |\n|---|---:|")
    for name, rates in (("SoftLabels.dense (by sample id, reused out)", ours),
                        ("official numpy reader (dense row per key, stacked)", theirs)):
        print(f"| {name} | {np.median(rates):,.0f} ({min(rates):,.0f}-{max(rates):,.0f}) |")
    print(f"\nratio of medians: {np.median(ours) / np.median(theirs):.2f}x\n")
    return labels, ids


def parts_table(labels, ids):
    """What one random row costs, by part, measured on the blocks of random rows."""
    dataset = labels.dataset
    entries = sorted((e for e in dataset.manifest.shards if e.epoch == 0), key=lambda e: e.rank)
    readers = [dataset.reader(e) for e in entries]
    rng = np.random.default_rng(1)
    picks = [(readers[int(rng.integers(len(readers)))], None) for _ in range(BATCH)]
    picks = [(r, int(rng.integers(r.layout.blocks))) for r, _ in picks]
    payloads = []
    for r, b in picks:
        offset, length = int(r.layout.block_offsets[b]), int(r.layout.block_lengths[b])
        payloads.append(bytes(r._buf[offset + 32:offset + length]))
    crc = best_of(lambda: [zlib.crc32(p) for p in payloads])
    read = best_of(lambda: [read_block(r._buf, r.layout, b) for r, b in picks])
    sample = rng.choice(ids, BATCH, replace=False)
    labels.dense(sample)                              # their blocks are in the slab now, rows decoded
    slab = labels._slab
    _, _, rows = labels._rows(sample, None)

    def decode_again():
        slab.decoded[rows] = False
        slab._decode(rows)
    decode = best_of(decode_again)
    indices, values, residual = slab.indices[rows], slab.values[rows], slab.residual[rows]
    out = np.empty((BATCH, labels.classes), np.float32)
    fill = best_of(lambda: scatter_dense(indices, values, residual, labels.classes, out))
    print("| part (per random row: one block met, one row asked) | µs |\n|---|---:|")
    for name, seconds in (("block payload CRC-32", crc), ("read_block: frame, CRCs, inflate 5 sections", read),
                          ("decode the row (256 rows in one call)", decode), ("dense fill + scatter (reused out)", fill)):
        print(f"| {name} | {1e6 * seconds / BATCH:.1f} |", flush=True)


def record_order_table(folders, seconds, repeats):
    from tinyshard.labels import RecordOrderReader  # noqa: F401  (record order is there)
    print(f"\n## 4. Record order: rank 0 of 8, epoch 0, batches of {BATCH} (RecordOrderReader; best of {repeats} "
          f"passes of up to {seconds:g} s each, a new reader per pass)\n")
    print("| data | window | records a pass | dense rows/s (reused out) | sparse rows/s | dense, rows per CPU second | "
          "sparse, rows per CPU second |\n|---|---:|---:|---:|---:|---:|---:|")
    for folder in folders:
        labels = SoftLabels(folder, epoch=0)
        out = np.empty((BATCH, labels.classes), np.float32)
        for window in (0, 4):
            rates, cpu = [0.0, 0.0], [0.0, 0.0]
            for _ in range(repeats):
                for column, dense in enumerate((True, False)):
                    reader = labels.in_record_order(0, 8, 0, window=window)
                    done, start, started = 0, time.perf_counter(), time.process_time()
                    for batch in reader.batches(BATCH, drop_last=True):
                        if dense:
                            batch.dense(out)
                        done += len(batch)
                        if time.perf_counter() - start > seconds:
                            break
                    rates[column] = max(rates[column], done / (time.perf_counter() - start))
                    cpu[column] = max(cpu[column], done / (time.process_time() - started))
            per_block = labels.dataset.reader(labels.dataset.manifest.shards[0]).header.records_per_block
            print(f"| K={labels.k}, C={labels.classes}, R={per_block} | {window} | {done:,} | {rates[0]:,.0f} | "
                  f"{rates[1]:,.0f} | {cpu[0]:,.0f} | {cpu[1]:,.0f} |", flush=True)


def r_table(folders, official_folder, cache_bytes):
    print(f"\n## 5. Random access against records per block (batches of {BATCH}, cache {cache_bytes >> 20} MiB; "
          "rows per CPU second, medians of 3 interleaved rounds of 8 batches)\n")
    print("| R | bytes/record | SoftLabels.dense | official numpy reader | ratio |\n|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(2)
    official = None
    for folder in folders:
        labels = SoftLabels(folder, cache_bytes=cache_bytes, epoch=0)
        if official is None:
            official = OfficialEpoch(os.path.join(official_folder, f"logits_top{labels.k}_epoch0"), labels.k)
        ids, keys, classes = labels.ids_in_epoch(), labels.keys, labels.classes
        size = sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder))
        out = np.empty((BATCH, classes), np.float32)
        for _ in range(4):
            labels.dense(rng.choice(ids, BATCH, replace=False), out=out)
        ours, theirs = [], []
        for _ in range(3):
            picks = [rng.choice(ids, BATCH, replace=False) for _ in range(8)]
            names = [[keys[i] for i in pick.tolist()] for pick in picks]
            start = time.process_time()
            for pick in picks:
                labels.dense(pick, out=out)
            ours.append(BATCH * len(picks) / (time.process_time() - start))
            start = time.process_time()
            for batch in names:
                np.stack([official.dense(key, classes) for key in batch])
            theirs.append(BATCH * len(picks) / (time.process_time() - start))
        per_block = labels.dataset.reader(labels.dataset.manifest.shards[0]).header.records_per_block
        print(f"| {per_block} | {size / len(ids):.1f} | {np.median(ours):,.0f} | {np.median(theirs):,.0f} | "
              f"{np.median(ours) / np.median(theirs):.2f}x |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k100", required=True)
    parser.add_argument("--official100", required=True)
    parser.add_argument("--k10")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--cache-mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="passes of each record-order measurement")
    parser.add_argument("--batches", type=int, default=20, help="batches per round of the random-access table")
    parser.add_argument("--decode-only", action="store_true", help="table 1 only (for an older package)")
    parser.add_argument("--random-only", action="store_true", help="table 3 only (for an older package)")
    parser.add_argument("--r-sets", help="comma-separated conversions of one source with several R (table 5)")
    parser.add_argument("--r-official", help="the official-layout source of --r-sets")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores); "
          f"numpy {np.__version__}, zlib {zlib.ZLIB_RUNTIME_VERSION}\n")
    folders = [args.k10, args.k100] if args.k10 else [args.k100]
    if not args.random_only:
        decode_table(folders)
    if not args.decode_only:
        if not args.random_only:
            fill_table(21841)
        labels, ids = random_table(args.k100, args.official100, args.cache_mib << 20, args.rounds, args.batches)
        if not args.random_only:
            parts_table(labels, ids)
            record_order_table(folders, args.seconds, args.repeats)
    if args.r_sets:
        r_table(args.r_sets.split(","), args.r_official, 8 << 20)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
