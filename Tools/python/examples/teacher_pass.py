#!/usr/bin/env python3
"""Teacher pass from PyTorch: a timm model labels augmented views of an image store and every rank
writes its (epoch, rank) shard; rank 0 writes pass.json and the key table first and commits the manifest
after every epoch all ranks finished (Spec/PASS.md).

    torchrun --nproc_per_node 2 teacher_pass.py --images digits.tsimg --out shards \\
        --model tiny_vit_5m_224 --checkpoint teacher.pth --img-size 32 --epochs 3 --k 5

Without torchrun it runs as one process. For each epoch and training image (images whose key hashes
below --held-out are the evaluation split and are left out, as in `tinyshard teacher`): draw the view's
parameters from (seed, epoch, sample) with tinyshard.sampler (a port of the Swift sampler: the same
seed gives the same codes as `tinyshard teacher --seed`), replay them (tinyshard.replay, normalised as
timm does), run the teacher in eval mode, keep the top-K of softmax(logits / T) with the 80-byte code.
The samples are split between ranks by DistributedSampler (shuffled per epoch with --seed, padded as it
pads), also for one process, so that an epoch's order is a function of the seed alone.

SIGTERM, SIGINT or SIGUSR1 stop every rank after the same batch: complete blocks stay in each
`.partial`, the rest of the block goes to a `.tail`, and the run exits (status 128 + signal) with a line
saying how to continue. The same command with --resume continues (also after a crash or SIGKILL, from
the last complete block) and ends with the bytes of a pass that never stopped, given the same --threads;
--resume with a larger --epochs adds epochs. A teacher without --checkpoint is drawn from --seed, so
that every run of the command has the same one.
"""

import argparse
import hashlib
import json
import os
import signal
import struct
import sys
import time
from dataclasses import asdict

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

from common import add_model_arguments, arch_settings, create_model, fail, init_distributed, view_size
from tinyshard import ImageStore, ImageStoreError, ShardError, verify_dataset
from tinyshard.augment import encode_params
from tinyshard.labels import LabelError
from tinyshard.replay import replay_normalized
from tinyshard.sampler import AugmentationSampler, Recipe
from tinyshard.split import held_out_split
from tinyshard.torch import PassError, ShareSampler, TeacherPassWriter, model_sha256
from tinyshard.torch.teacher import file_sha256
from tinyshard.format import default_records_per_block


class TeacherViews(Dataset):
    """(normalised view, sample id, 80-byte code) of each training image in the current epoch."""

    def __init__(self, store, indices, sample_ids, sampler, size):
        self.store, self.indices, self.sample_ids = store, indices, sample_ids
        self.sampler, self.size, self.epoch = sampler, size, 0
        self.image_of = {int(s): i for i, s in enumerate(sample_ids)}      # sample id -> store index
        # Mix partners are training images only, as in the Swift pass (SAMPLER.md 8): their sample ids, ascending.
        self.partners = np.sort(np.asarray(sample_ids)[np.asarray(indices, dtype=np.int64)])

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        index = self.indices[i]
        sample = int(self.sample_ids[index])
        params = self.sampler.parameters(
            self.epoch, sample, self.store.size(index),
            partner_size=lambda partner: self.store.size(self.image_of[partner]), partners=self.partners)
        code = encode_params(params, (self.size, self.size))
        partner = None if params.mix is None else self.store.image(self.image_of[params.mix.partner_id])
        view = replay_normalized(code, self.store.image(index), (self.size, self.size), partner)
        return torch.from_numpy(view), sample, torch.frombuffer(bytearray(code), dtype=torch.uint8)




def images_line(store):
    """The store in the pass's fingerprint: count, classes and the metadata CRC-32 (Spec/IMAGESTORE.md,
    header offset 32), which covers every key, label, size and class name."""
    with open(store.path, "rb") as f:
        crc = struct.unpack("<I", f.read(64)[32:36])[0]
    return f"{len(store)} images, {store.classes} classes, metadata crc32 {crc:08x}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", required=True, help="image store (.tsimg)")
    parser.add_argument("--out", required=True, help="dataset folder to write")
    add_model_arguments(parser)
    parser.add_argument("--checkpoint", help="teacher weights (torch.save state_dict or .safetensors)")
    parser.add_argument("--img-size", type=int, help="side of the augmented views (default: the --arch "
                                                      "config's img_size, else 224)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--records-per-block", type=int,
                        help="records per shard block (default: the largest power of two R with R*K <= 2048)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers per rank")
    parser.add_argument("--seed", type=int, default=0, help="run seed of parameters, sample order and a "
                        "teacher without --checkpoint")
    parser.add_argument("--held-out", type=float, default=0.2, help="fraction of keys left out")
    parser.add_argument("--mix", action="store_true", help="draw mixup/cutmix too (tinyvit-mix)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per rank (0: default; a "
                        "resumed pass ends identical given the same threads)")
    parser.add_argument("--resume", action="store_true", help="continue the pass in --out (Spec/PASS.md)")
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
        torch.manual_seed(args.seed)           # weights drawn without --checkpoint: the same every run
        model = create_model(args.model, store.classes, args.model_args, args.checkpoint, arch=args.arch).eval()
        args.img_size = view_size(args.img_size, arch_settings(args.arch, store.classes)[1] if args.arch else None)
        teacher_name = os.path.basename(args.arch) if args.arch else args.model
        teacher_sha256 = file_sha256(args.checkpoint) if args.checkpoint else model_sha256(model)
        recipe = Recipe.tinyvit_mix() if args.mix else Recipe.tinyvit()
        recipe_name = "tinyvit-mix" if args.mix else "tinyvit"
        # The recipe as the sampler reads it: its fields as canonical JSON (sorted keys, no spaces).
        recipe_sha256 = hashlib.sha256(json.dumps(asdict(recipe), sort_keys=True,
                                                  separators=(",", ":")).encode()).hexdigest()
        k = min(args.k, store.classes)
        records_per_block = args.records_per_block or default_records_per_block(k)
        fingerprint = {"teacher": teacher_name, "teacher_sha256": teacher_sha256, "recipe": recipe_name,
                       "recipe_sha256": recipe_sha256, "images": images_line(store), "seed": str(args.seed),
                       "image_size": str(args.img_size), "held_out_fraction": repr(args.held_out)}
        writer = TeacherPassWriter(
            args.out, keys, store.classes, k, output_size=(args.img_size, args.img_size),
            temperature=args.temperature, records_per_block=records_per_block,
            provenance={"teacher": teacher_name, "teacher_checksum": "sha256:" + teacher_sha256,
                        "run_seed": str(args.seed), "recipe": recipe_name, "recipe_sha256": recipe_sha256,
                        "held_out_fraction": repr(args.held_out)},
            epochs=args.epochs, batch_size=args.batch, fingerprint=fingerprint, resume=args.resume)
        writer.stop_on_signals()
        all_ids = writer.sample_ids(keys)
        views = TeacherViews(store, train, all_ids,
                             AugmentationSampler(args.seed, (args.img_size, args.img_size), recipe),
                             args.img_size)
        share = ShareSampler(views, num_replicas=world, rank=rank, seed=args.seed)
        train_ids = all_ids[np.asarray(train, dtype=np.int64)]      # sample id of each view index
        start, committed, computed = time.time(), 0, 0
        for epoch in range(args.epochs):
            views.epoch = epoch
            order = share.set_epoch(epoch)
            with writer.shard(epoch, train_ids[np.asarray(order, dtype=np.int64)]) as shard, torch.no_grad():
                share.start = shard.start      # a resumed shard: from the batch of its first missing record
                loader = DataLoader(views, batch_size=args.batch, sampler=share, num_workers=args.workers)
                for images, sample_ids, codes in loader:
                    logits = model(images) if shard.needs(len(sample_ids)) else None
                    shard.add(sample_ids, logits=logits, codes=codes)
                    if writer.stop_agreed():
                        break
            computed += shard.records_written
            if shard.records_written or not shard.finished:
                print(f"rank {rank}: epoch {epoch}: {shard.records} records"
                      + (f" ({shard.kept} kept from an interrupted run)" if shard.kept else "")
                      + (f" ({shard.skipped} repeats skipped)" if shard.skipped else "")
                      + ("" if shard.finished else " before the stop"), flush=True)
            if not shard.finished:
                break
            manifest = writer.commit(epoch)
            committed = epoch + 1
            if committed < args.epochs and writer.stop_agreed():
                break
        if committed < args.epochs:
            if rank == 0:
                cause = (f"stopped by {signal_name(writer.stop_signal)}" if writer.stop_signal
                         else "stopped by a request on another rank")
                print(f"{cause} after {committed} committed epoch{'s' if committed != 1 else ''}; continue "
                      "with the same command and --resume", flush=True)
            if dist.is_initialized():
                dist.destroy_process_group()
            sys.exit(128 + (writer.stop_signal or signal.SIGTERM))
        if dist.is_initialized():
            # Every rank leaves the group before it exits, as train_student.py does: a gloo group left to the
            # interpreter's exit while a peer still works can abort the process (SIGABRT, "terminate called
            # without an active exception": once in a local CI run of the torchrun resume test).
            dist.barrier()
            dist.destroy_process_group()
        if rank == 0:
            problems = verify_dataset(args.out)
            total = sum(s.records for s in manifest.shards)
            size = sum(s.bytes for s in manifest.shards)
            kept = total - computed * world
            print(f"wrote {total} records in {len(manifest.shards)} shards to {args.out} "
                  f"({size / max(total, 1):.1f} bytes/record, {time.time() - start:.1f} s"
                  + (f", about {kept} kept from an interrupted run" if kept > 0 else "")
                  + f"); verify: {'clean' if not problems else f'{len(problems)} problems'}")
            if problems:
                sys.exit(1)
    except (ShardError, LabelError, ImageStoreError, PassError, OSError, RuntimeError, ValueError) as exc:
        fail(exc)


def signal_name(number):
    return signal.Signals(number).name


if __name__ == "__main__":
    main()
