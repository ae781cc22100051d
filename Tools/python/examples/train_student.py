#!/usr/bin/env python3
"""Train a timm student from stored teacher records (a teacher pass's shards), with DDP.

    torchrun --nproc_per_node 2 train_student.py --images digits.tsimg --shards shards --out run \\
        --model tiny_vit_5m_224 --model-args '{"embed_dims": [16, 32, 32, 48], ...}' --epochs 10
    torchrun ... train_student.py ... --arch student.json --k 5     # the Swift CLI's CONFIG.json; top 5

Each item is a stored sample: its image with the record's augmentation replayed and its soft label
(the K stored probabilities, the rest spread evenly; with `--k k` only the first k of each record, FORMAT.md
7, as a pass stored with K = k would give). Training epoch e reads stored epoch e: more epochs than stored
need `--cycle-epochs` (epoch e then reads stored epoch e mod S, as `tinyshard train --cycle-epochs`).
The model: timm's `--model` with `--model-args` overrides, or `--arch CONFIG.json`, the Swift CLI's
TinyViT config (its img_size must be the stored views' size). A sample that two ranks' shards hold
(DistributedSampler padding) is read from this rank's own shard first (FORMAT.md 2's reading rank).
By default in record order (Spec/RECORD-ORDER.md): each rank reads its share of
the stored records in stored order, shuffled inside windows of `--window` blocks, through
RecordOrderBatchSampler, so every block is decoded once per epoch. `--order distributed` reads in the order
of a DistributedSampler with set_epoch(e) instead: through RunBatchSampler, which yields (epoch, index)
batches for the whole run in one DataLoader iteration (the workers never restart between epochs), or with
`--sampler distributed` through a DistributedSampler and DistillDataset.set_epoch with one iteration per
epoch. Batches come from DataLoader workers
with sparse targets expanded by DistillCollate in one scatter, taken out of the DataLoader by a
Prefetcher thread (`--no-thread`: by the training loop itself).
Loss: soft-target cross entropy. The held-out split (key hash < --held-out, never in the shards) is
evaluated with the whole image resized. Prints per epoch: loss, held-out top-1, and how much of the step
time the loop waited for data; writes RUN/model.pth and RUN/metrics.json (rank 0).
"""

import argparse
import json
import math
import os
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
import warnings

from common import add_model_arguments, arch_settings, create_model, evaluate, fail, init_distributed, mean_over_ranks
from tinyshard import ImageStore, ImageStoreError, ShardError
from tinyshard.labels import LabelError, SoftLabels, pass_epochs
from tinyshard.split import held_out_split
from tinyshard.torch import DistillCollate, DistillDataset, Prefetcher, RecordOrderBatchSampler, RunBatchSampler

# DDP notes that the depthwise convolutions' gradient strides differ from its buckets (harmless).
warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")


def epochs_of(loader, steps, prefetch_thread):
    """(epoch, [batches]) in order: one iteration of a whole-run batch sampler's loader, cut at epoch ends
    (steps[e] batches in epoch e)."""
    iterator = Prefetcher(loader) if prefetch_thread else iter(loader)
    for epoch, count in enumerate(steps):
        yield epoch, (next(iterator) for _ in range(count))


def check_epochs(shards, stored, epochs, cycle):
    """A run of `epochs` epochs needs that many stored ones, or --cycle-epochs: a LabelError naming the stored
    count (and, while a teacher pass is still writing, the count it was asked for), as the Swift trainer."""
    if epochs <= stored or cycle:
        return
    asked = pass_epochs(shards)
    running = (f"; its teacher pass is asked for {asked} and has committed {stored} so far"
               if asked is not None and asked > stored else "")
    raise LabelError("mismatch", f"the dataset holds {stored} epoch{'s' if stored != 1 else ''}{running}; training "
                     f"for {epochs} needs --cycle-epochs to read the stored epochs again in order", file=shards)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", required=True, help="image store (.tsimg)")
    parser.add_argument("--shards", required=True, help="dataset folder of a teacher pass")
    parser.add_argument("--out", required=True, help="run folder")
    add_model_arguments(parser)
    parser.add_argument("--classes", type=int, help="the model's classes (default: the store's)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--k", type=int, help="train from the first k stored entries of each record (1..K; "
                                              "default K): K chosen after the pass")
    parser.add_argument("--cycle-epochs", action="store_true",
                        help="train more epochs than stored: epoch e reads stored epoch e mod S")
    parser.add_argument("--batch", type=int, default=64, help="per rank")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers per rank")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--held-out", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads per rank (0: default)")
    parser.add_argument("--prefetch", type=int, default=4, help="batches each worker prepares ahead")
    parser.add_argument("--no-thread", action="store_true",
                        help="take batches from the workers on the training thread (no Prefetcher)")
    parser.add_argument("--order", choices=("record", "distributed"), default="record",
                        help="record: record order (each block decoded once); distributed: DistributedSampler's")
    parser.add_argument("--window", type=int, default=4,
                        help="record order: shuffle window, in blocks (0: the stored order as it is)")
    parser.add_argument("--sampler", choices=("run", "distributed"), default="run",
                        help="with --order distributed: run: one DataLoader iteration for all epochs; "
                             "distributed: one per epoch")
    args = parser.parse_args()
    if args.order == "record" and args.sampler != "run":
        parser.error("--sampler distributed needs --order distributed")
    rank, world = init_distributed()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    try:
        store = ImageStore(args.images)
        classes = args.classes or store.classes
        labels = SoftLabels(args.shards, k=args.k, rank=rank)
        check_epochs(args.shards, len(labels.epochs), args.epochs, args.cycle_epochs)
        data = DistillDataset(store, labels, classes=classes, target="sparse")
        size = data.output_size[0]
        if args.arch is not None:
            _, arch_size = arch_settings(args.arch, classes)
            if arch_size is not None and (arch_size, arch_size) != tuple(data.output_size):
                raise ValueError(f"{args.arch}: [mismatch] img_size is {arch_size}, the stored views are "
                                 f"{data.output_size[0]}x{data.output_size[1]}")
        model = create_model(args.model, classes, args.model_args, arch=args.arch)
        ddp = DistributedDataParallel(model) if world > 1 else model
        collate = DistillCollate(data.classes)
        if args.order == "record" or args.sampler == "run":
            if args.order == "record":
                batches = RecordOrderBatchSampler(data, args.batch, args.epochs, num_replicas=world, rank=rank,
                                                  window=args.window, seed=args.seed, drop_last=True,
                                                  workers=args.workers)
                steps = [batches.batches_in(e) for e in range(args.epochs)]
            else:
                batches = RunBatchSampler(data, args.batch, args.epochs, num_replicas=world, rank=rank,
                                          seed=args.seed, drop_last=True)
                steps = [batches.batches_per_epoch] * args.epochs
            loader = DataLoader(data, batch_sampler=batches, num_workers=args.workers, collate_fn=collate,
                                prefetch_factor=args.prefetch if args.workers else None)
            run = epochs_of(loader, steps, args.workers > 0 and not args.no_thread)
        else:
            sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=args.seed,
                                         drop_last=True)
            loader = DataLoader(data, batch_size=args.batch, sampler=sampler, num_workers=args.workers,
                                collate_fn=collate, drop_last=True, persistent_workers=args.workers > 0,
                                prefetch_factor=args.prefetch if args.workers else None)
            steps = [len(loader)] * args.epochs

            def per_epoch():
                for epoch in range(args.epochs):
                    data.set_epoch(epoch)
                    sampler.set_epoch(epoch)
                    yield epoch, (Prefetcher(loader) if args.workers > 0 and not args.no_thread
                                  else iter(loader))
            run = per_epoch()
        if rank == 0:
            print(f"order: record order (Spec/RECORD-ORDER.md), window {args.window} blocks, {world} rank(s); "
                  "--order distributed for DistributedSampler's order" if args.order == "record" else
                  "order: DistributedSampler's (--order distributed)", flush=True)
        if rank == 0 and labels.k < labels.stored_k:
            print(f"targets: the top {labels.k} of the {labels.stored_k} stored entries of each record", flush=True)
        total_steps = sum(steps)
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1))))
        _, held_out = held_out_split(store.keys(), args.held_out)
        metrics = []
        for epoch, batches_of_epoch in run:
            ddp.train()
            wait = busy = loss_sum = 0.0
            count = 0
            tick = time.perf_counter()
            for images, targets in batches_of_epoch:
                ready = time.perf_counter()
                loss = torch.sum(-targets * F.log_softmax(ddp(images), dim=-1), dim=-1).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                done = time.perf_counter()
                wait += ready - tick
                busy += done - tick
                loss_sum += float(loss.detach())
                count += 1
                tick = time.perf_counter()
            wait_share = mean_over_ranks(wait / max(busy, 1e-9))
            top1 = evaluate(model, store, held_out, size) if rank == 0 else None
            row = {"epoch": epoch, "loss": mean_over_ranks(loss_sum / max(count, 1)), "top1": top1,
                   "data_wait_share": wait_share, "steps": count, "seconds": busy}
            metrics.append(row)
            if rank == 0:
                print(f"epoch {epoch + 1}: loss {row['loss']:.4f}  held-out top-1 {100 * top1:.2f}%  "
                      f"data wait {100 * wait_share:.1f}% of step time ({count} steps, {busy:.1f} s)",
                      flush=True)
        if rank == 0:
            os.makedirs(args.out, exist_ok=True)
            torch.save(model.state_dict(), os.path.join(args.out, "model.pth"))
            with open(os.path.join(args.out, "metrics.json"), "w") as f:
                json.dump({"epochs": metrics, "world_size": world, "workers": args.workers,
                           "batch": args.batch, "records": len(data), "order": args.order, "k": labels.k,
                           "stored_epochs": len(labels.epochs), "cycle_epochs": args.cycle_epochs,
                           "window": args.window if args.order == "record" else None,
                           "sampler": args.sampler}, f, indent=1)
        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
    except (ShardError, LabelError, ImageStoreError, OSError, RuntimeError, ValueError) as exc:
        fail(exc)


if __name__ == "__main__":
    main()
