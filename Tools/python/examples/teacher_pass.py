#!/usr/bin/env python3
"""Teacher pass from PyTorch: a timm model labels augmented views of an image store and every rank
writes its (epoch, rank) shard; rank 0 writes the key table first and the manifest last.

    torchrun --nproc_per_node 2 teacher_pass.py --images digits.tsimg --out shards \\
        --model tiny_vit_5m_224 --checkpoint teacher.pth --img-size 32 --epochs 3 --k 5

Without torchrun it runs as one process. For each epoch and training image (images whose key hashes
below --held-out are the evaluation split and are left out, as in `tinyshard teacher`): draw the view's
parameters from (seed, epoch, sample) with tinyshard.sampler (a port of the Swift sampler: the same
seed gives the same codes as `tinyshard teacher --seed`), replay them (tinyshard.replay, normalised as
timm does), run the teacher in eval mode, keep the top-K of softmax(logits / T) with the 80-byte code.
The samples are split between ranks by DistributedSampler (shuffled per epoch, padded as it pads).
"""

import argparse
import os
import sys
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from common import create_model, fail, init_distributed
from tinyshard import ImageStore, ImageStoreError, ShardError, verify_dataset
from tinyshard.augment import encode_params
from tinyshard.labels import LabelError
from tinyshard.replay import replay_normalized
from tinyshard.sampler import AugmentationSampler, Recipe
from tinyshard.split import held_out_split
from tinyshard.torch import TeacherPassWriter


class TeacherViews(Dataset):
    """(normalised view, sample id, 80-byte code) of each training image in the current epoch."""

    def __init__(self, store, indices, sample_ids, sampler, size):
        self.store, self.indices, self.sample_ids = store, indices, sample_ids
        self.sampler, self.size, self.epoch = sampler, size, 0
        self.image_of = {int(s): i for i, s in enumerate(sample_ids)}      # sample id -> store index

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        index = self.indices[i]
        sample = int(self.sample_ids[index])
        params = self.sampler.parameters(
            self.epoch, sample, self.store.size(index), len(self.store),
            lambda partner: self.store.size(self.image_of[partner]))
        code = encode_params(params, (self.size, self.size))
        partner = None if params.mix is None else self.store.image(self.image_of[params.mix.partner_id])
        view = replay_normalized(code, self.store.image(index), (self.size, self.size), partner)
        return torch.from_numpy(view), sample, torch.frombuffer(bytearray(code), dtype=torch.uint8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", required=True, help="image store (.tsimg)")
    parser.add_argument("--out", required=True, help="dataset folder to write")
    parser.add_argument("--model", default="tiny_vit_5m_224", help="timm model name")
    parser.add_argument("--model-args", help="JSON object of timm constructor overrides")
    parser.add_argument("--checkpoint", help="teacher weights (torch.save state_dict or .safetensors)")
    parser.add_argument("--img-size", type=int, default=224, help="side of the augmented views")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers per rank")
    parser.add_argument("--seed", type=int, default=0, help="run seed of parameters and sample order")
    parser.add_argument("--held-out", type=float, default=0.2, help="fraction of keys left out")
    parser.add_argument("--mix", action="store_true", help="draw mixup/cutmix too (tinyvit-mix)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per rank (0: default)")
    args = parser.parse_args()
    rank, world = init_distributed()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        store = ImageStore(args.images)
        if store.classes < 1:
            raise SystemExit(f"{args.images}: the store names no classes; the teacher's count is needed")
        keys = store.keys()
        train, _ = held_out_split(keys, args.held_out)
        model = create_model(args.model, store.classes, args.model_args, args.checkpoint).eval()
        writer = TeacherPassWriter(args.out, keys, store.classes, min(args.k, store.classes),
                                   output_size=(args.img_size, args.img_size),
                                   temperature=args.temperature,
                                   provenance={"teacher": args.model, "run_seed": str(args.seed)})
        recipe = Recipe.tinyvit_mix() if args.mix else Recipe.tinyvit()
        views = TeacherViews(store, train, writer.sample_ids(keys),
                             AugmentationSampler(args.seed, (args.img_size, args.img_size), recipe),
                             args.img_size)
        sampler = DistributedSampler(views, shuffle=True, seed=args.seed) if world > 1 else None
        start = time.time()
        for epoch in range(args.epochs):
            views.epoch = epoch
            if sampler is not None:
                sampler.set_epoch(epoch)
            loader = DataLoader(views, batch_size=args.batch, sampler=sampler,
                                shuffle=sampler is None, num_workers=args.workers,
                                generator=torch.Generator().manual_seed(args.seed + epoch))
            with writer.shard(epoch) as shard, torch.no_grad():
                for images, sample_ids, codes in loader:
                    shard.add(sample_ids, logits=model(images), codes=codes)
            print(f"rank {rank}: epoch {epoch}: {shard.records} records"
                  + (f" ({shard.skipped} repeats skipped)" if shard.skipped else ""), flush=True)
        manifest = writer.finish()
        if rank == 0:
            problems = verify_dataset(args.out)
            total = sum(s.records for s in manifest.shards)
            size = sum(s.bytes for s in manifest.shards)
            print(f"wrote {total} records in {len(manifest.shards)} shards to {args.out} "
                  f"({size / max(total, 1):.1f} bytes/record, {time.time() - start:.1f} s); verify: "
                  f"{'clean' if not problems else f'{len(problems)} problems'}")
            if problems:
                sys.exit(1)
    except (ShardError, LabelError, ImageStoreError, OSError, RuntimeError, ValueError) as exc:
        fail(exc)


if __name__ == "__main__":
    main()
