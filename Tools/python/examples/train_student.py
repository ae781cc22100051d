#!/usr/bin/env python3
"""Train a timm student from stored teacher records (a teacher pass's shards), with DDP.

    torchrun --nproc_per_node 2 train_student.py --images digits.tsimg --shards shards --out run \\
        --model tiny_vit_5m_224 --model-args '{"embed_dims": [16, 32, 32, 48], ...}' --epochs 10

Each item is a stored sample: its image with the record's augmentation replayed and its soft label
(the K stored probabilities, the rest spread evenly). Training epoch e reads the stored epoch
epochs[e % len(epochs)]. By default in record order (Spec/RECORD-ORDER.md): each rank reads its share of
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

from common import create_model, evaluate, fail, init_distributed, mean_over_ranks
from tinyshard import ImageStore, ImageStoreError, ShardError
from tinyshard.labels import LabelError
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", required=True, help="image store (.tsimg)")
    parser.add_argument("--shards", required=True, help="dataset folder of a teacher pass")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--model", default="tiny_vit_5m_224", help="timm model name")
    parser.add_argument("--model-args", help="JSON object of timm constructor overrides")
    parser.add_argument("--classes", type=int, help="the model's classes (default: the store's)")
    parser.add_argument("--epochs", type=int, default=10)
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
        data = DistillDataset(store, args.shards, classes=classes, target="sparse")
        size = data.output_size[0]
        model = create_model(args.model, classes, args.model_args)
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
                           "batch": args.batch, "records": len(data), "order": args.order,
                           "window": args.window if args.order == "record" else None,
                           "sampler": args.sampler}, f, indent=1)
        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
    except (ShardError, LabelError, ImageStoreError, OSError, RuntimeError, ValueError) as exc:
        fail(exc)


if __name__ == "__main__":
    main()
