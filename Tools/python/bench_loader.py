#!/usr/bin/env python3
"""What a PyTorch training loop gets from tinyshard, measured in one run (docs/benchmarks.md and docs/distributed.md).

    .venv/bin/python Tools/python/bench_loader.py [--seconds S] [--rounds N] [--work DIR] [--no-ddp]
                                                  [--only dense|replay|ddp]

1. Dense target batches: batch 256 of random samples, one process, one thread, every block cached (as
   the official reader holds every record): SoftLabels.dense by sample id and by key, and DistillCollate
   (sparse items -> dense batch, torch) next to the official-layout numpy reader of the same data
   (Tools/python/official_numpy_reader.py: a dense row per key, stacked, as the official loader and
   default_collate build a batch). Data: the synthetic teacher of the shared fixtures, 100,000 records
   at K=10/C=1000 and 10,000 at K=100/C=21841 (the sets of bench_readers.py and tinyshard-bench).
2. Replay: views/s of one process (one thread), 500x375 sources -> 224x224, TinyViT's recipe drawn by
   tinyshard.sampler (with and without mixup/cutmix), uint8 and normalised; next to timm's own training
   transform of the same recipe (RandomResizedCrop + flip + RandAugment + RandomErasing, PIL). The three
   take turns for --rounds rounds and each cell is the median round (load drifts on a shared machine).
3. DDP student on the digits (examples/train_student.py, 2 gloo processes, 2 loader workers each): the
   share of step time spent waiting for data, per sampler (RecordOrderBatchSampler / RunBatchSampler /
   DistributedSampler).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)                    # official_numpy_reader (a script beside the package)

from official_numpy_reader import OfficialEpoch  # noqa: E402
from tinyshard.convert import convert_official  # noqa: E402
from tinyshard.labels import SoftLabels  # noqa: E402

GENERATOR = os.path.join(ROOT, "..", "shared", "fixtures", "make_official_logits.py")
SETS = [("in1k_top10", 10, 1000, 100_000, "index"), ("in22k_top100", 100, 21841, 10_000, "wnid")]
BATCH = 256


def rate(work, seconds):
    """Calls of work() per second, after one warm-up call, for at least `seconds`."""
    work()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        work()
        done += 1
    return done / (time.perf_counter() - start)


def interleaved_rates(works, seconds, rounds):
    """The median over `rounds` rounds of each work's calls per second, the works taking turns within
    a round for seconds / rounds each, so that load drifting on a shared machine hits all of them."""
    rates = [[] for _ in works]
    for _ in range(rounds):
        for measured, work in zip(rates, works):
            measured.append(rate(work, seconds / rounds))
    return [statistics.median(measured) for measured in rates]


def dataset_for(work, name, k, classes, images, key_style):
    source = os.path.join(work, f"{name}-{images}")
    if not os.path.isdir(os.path.join(source, f"logits_top{k}_epoch0")):
        subprocess.run([sys.executable, GENERATOR, "--out", source, "--k", str(k), "--classes", str(classes),
                        "--images", str(images), "--epochs", "1", "--ranks", "1", "--keys", key_style,
                        "--seed", "1"], check=True, stdout=subprocess.DEVNULL)
    target = os.path.join(work, f"{name}-dataset")
    if not os.path.exists(os.path.join(target, "manifest.json")):
        convert_official(source, target, classes)
    return source, target


def dense_table(args):
    import torch
    from tinyshard.torch import DistillCollate, SparseTarget
    torch.set_num_threads(1)          # one worker, one thread
    print(f"## Dense target batches (batch {BATCH}, random samples, one process; rows/s)\n")
    print("| data | records | SoftLabels.dense, by sample id | SoftLabels.dense, by key | sparse items + "
          "DistillCollate (torch tensor) | numpy official reader, dense rows stacked | by id vs numpy |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for name, k, classes, images, key_style in SETS:
        source, target = dataset_for(args.work, name, k, classes, images, key_style)
        labels = SoftLabels(target, cache_bytes=1 << 30)
        ids = labels.ids_in_epoch()
        batches = [rng.choice(ids, BATCH) for _ in range(64)]
        key_batches = [[labels.keys[i] for i in b] for b in batches]
        labels.dense(ids)                                      # every block decoded once
        labels.sample_ids(key_batches[0])                      # the key index built once
        state = {"n": 0}

        def cycling(fn):
            def work():
                fn(state["n"] % len(batches))
                state["n"] += 1
            return work
        by_id = rate(cycling(lambda b: labels.dense(batches[b])), args.seconds) * BATCH
        by_key = rate(cycling(lambda b: labels.dense_by_key(key_batches[b])), args.seconds) * BATCH
        collate = DistillCollate(classes)

        blank = torch.zeros(1)

        def collated(b):
            """A DataLoader batch as DistillDataset.__getitems__ makes it (items sharing the batch's sparse
            arrays) through DistillCollate into a dense torch tensor."""
            shared = labels.sparse(batches[b])
            collate([(blank, SparseTarget(shared, i)) for i in range(BATCH)])
        through_torch = rate(cycling(collated), args.seconds) * BATCH
        official = OfficialEpoch(os.path.join(source, f"logits_top{k}_epoch0"), k)

        def official_batch(b):
            np.stack([official.dense(key, classes) for key in key_batches[b]])
        numpy_rows = rate(cycling(official_batch), args.seconds) * BATCH
        print(f"| {name} (K={k}, C={classes}) | {len(ids):,} | {by_id:,.0f} | {by_key:,.0f} | "
              f"{through_torch:,.0f} | {numpy_rows:,.0f} | {by_id / numpy_rows:.1f}x |", flush=True)


def replay_table(args):
    from PIL import Image
    from tinyshard.augment import encode_params
    from tinyshard.replay import replay, replay_normalized
    from tinyshard.sampler import AugmentationSampler, Recipe
    rng = np.random.default_rng(1)
    # Smooth "photos": random low-resolution colour fields enlarged (JPEG-like content, not noise).
    sources = [np.asarray(Image.fromarray(rng.integers(0, 256, (15, 20, 3), dtype=np.uint8)).resize(
        (500, 375), Image.Resampling.BICUBIC)) for _ in range(8)]
    print("\n## Replay per worker (one process, one thread; 500x375 -> 224x224; views/s)\n")
    print("| recipe | tinyshard replay, uint8 | tinyshard replay, normalised float | timm training transform "
          "(same recipe, PIL) |")
    print("|---|---:|---:|---:|")
    for label, recipe in (("TinyViT (crop, flip, RandAugment m9, erase 0.25)", Recipe.tinyvit()),
                          ("TinyViT + mixup/cutmix", Recipe.tinyvit_mix())):
        sampler = AugmentationSampler(0, (224, 224), recipe)
        codes = []
        for i in range(256):
            params = sampler.parameters(0, i, (500, 375), 8, lambda _: (500, 375))
            codes.append((encode_params(params, (224, 224)), i % 8, params.mix.partner_id % 8 if params.mix else None))
        state = {"n": 0}

        def one(fn):
            def work():
                code, source, partner = codes[state["n"] % len(codes)]
                fn(code, sources[source], (224, 224), None if partner is None else sources[partner])
                state["n"] += 1
            return work
        works = [one(replay), one(replay_normalized)]
        timm = timm_transform(sources, mixed=recipe.mix is not None)
        if timm is not None:
            works.append(timm[0])
        rates = interleaved_rates(works, args.seconds, args.rounds)
        timm_cell = "n/a (no timm)"
        if timm is not None:
            failed = timm[1]["failed"]
            timm_cell = f"{rates[2]:,.0f}" + (f" ({failed} raised)" if failed else "")
        print(f"| {label} | {rates[0]:,.0f} | {rates[1]:,.0f} | {timm_cell} |", flush=True)


def timm_transform(sources, mixed):
    """(work, state): one sample through timm's create_transform for TinyViT's recipe on PIL images
    (mixing, which timm does per batch on tensors, costs one more view per sample: counted by two views
    per sample); state["failed"] counts the views that raised. None without timm."""
    try:
        import torch
        from PIL import Image
        from timm.data import create_transform
    except ImportError:
        return None
    torch.set_num_threads(1)          # one worker, one thread (ToTensor, Normalize, RandomErasing)
    transform = create_transform(224, is_training=True, auto_augment="rand-m9-mstd0.5-inc1",
                                 re_prob=0.25, re_mode="pixel", interpolation="bicubic")
    images = [Image.fromarray(s) for s in sources]
    state = {"n": 0, "failed": 0}

    def view(image):
        try:
            transform(image)
        except ValueError:            # timm's posterize at magnitude 10 (0 bits) fails on Pillow >= 10
            state["failed"] += 1

    def work():
        view(images[state["n"] % len(images)])
        if mixed:
            view(images[(state["n"] + 1) % len(images)])
        state["n"] += 1
    return work, state


def ddp_table(args):
    import torch  # noqa: F401  (the examples need it)
    from tinyshard.importers import import_digits
    work = os.path.join(args.work, "ddp")
    os.makedirs(work, exist_ok=True)
    store = os.path.join(work, "digits.tsimg")
    if not os.path.exists(store):
        import_digits(os.path.join(ROOT, "Tools", "data", "digits.csv.gz"), store, upscale=4)
    student = json.dumps({"embed_dims": [16, 32, 32, 48], "depths": [1, 1, 1, 1], "num_heads": [1, 1, 1, 2],
                          "window_sizes": [4, 4, 2, 1]})
    shards = os.path.join(work, "shards")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    if not os.path.exists(os.path.join(shards, "manifest.json")):
        subprocess.run(launch + [os.path.join(HERE, "examples", "teacher_pass.py"), "--images", store, "--out", shards,
                                 "--model", "tiny_vit_5m_224", "--model-args", student, "--img-size", "32",
                                 "--epochs", "4", "--k", "5", "--threads", "1", "--mix"],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"\n## DDP student on the digits (2 gloo processes x 1 thread, 2 loader workers each, "
          f"{args.ddp_epochs} epochs of 1,416 records, TinyViT student of {student}; each row: "
          f"{args.ddp_repeats} runs, mean (min-max))\n")
    print("| loader | batch per rank | data wait, share of step time (epochs 2..) | first epoch | "
          "step time (ms) |")
    print("|---|---:|---:|---:|---:|")
    variants = [("record", False, "RecordOrderBatchSampler (record order, window 4) + Prefetcher"),
                ("run", False, "RunBatchSampler + Prefetcher"), ("run", True, "RunBatchSampler, no thread"),
                ("distributed", False, "DistributedSampler + set_epoch + Prefetcher"),
                ("distributed", True, "DistributedSampler + set_epoch, no thread")]
    for batch in (64, 32):
        results = {v: [] for v in variants}
        for _ in range(args.ddp_repeats):                  # interleaved, so load drifts hit all alike
            for variant in variants:
                sampler, no_thread, _ = variant
                run = os.path.join(work, "run")
                subprocess.run(launch + [os.path.join(HERE, "examples", "train_student.py"), "--images", store,
                                         "--shards", shards, "--out", run, "--model", "tiny_vit_5m_224",
                                         "--model-args", student, "--epochs", str(args.ddp_epochs), "--batch",
                                         str(batch), "--workers", "2", "--threads", "1", "--cycle-epochs"]
                               + (["--order", "distributed", "--sampler", sampler] if sampler != "record" else [])
                               + (["--no-thread"] if no_thread else []),
                               check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                epochs = json.load(open(os.path.join(run, "metrics.json")))["epochs"]
                later = epochs[1:] or epochs
                seconds = sum(e["seconds"] for e in later)
                results[variant].append((sum(e["data_wait_share"] * e["seconds"] for e in later) / seconds,
                                         epochs[0]["data_wait_share"],
                                         1000 * seconds / sum(e["steps"] for e in later)))
        for variant in variants:
            rows = np.array(results[variant])
            cell = lambda col, scale=100, digits=1: (f"{scale * rows[:, col].mean():.{digits}f} "  # noqa: E731
                                                     f"({scale * rows[:, col].min():.{digits}f}-"
                                                     f"{scale * rows[:, col].max():.{digits}f})")
            print(f"| {variant[2]} | {batch} | {cell(0)}% | {cell(1)}% | {cell(2, 1, 0)} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5, help="turns of the replay table's three columns")
    parser.add_argument("--only", choices=("dense", "replay", "ddp"), help="one section")
    parser.add_argument("--work", default="/tmp/tinyshard-pybench")
    parser.add_argument("--no-ddp", action="store_true", help="skip the DDP student (about a minute)")
    parser.add_argument("--ddp-epochs", type=int, default=8)
    parser.add_argument("--ddp-repeats", type=int, default=3)
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at start: {load:.2f} ({os.cpu_count()} cores)\n")
    if args.only in (None, "dense"):
        dense_table(args)
    if args.only in (None, "replay"):
        replay_table(args)
    if args.only == "ddp" or (args.only is None and not args.no_ddp):
        ddp_table(args)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nload average at end: {load:.2f}")


if __name__ == "__main__":
    main()
