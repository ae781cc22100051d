#!/usr/bin/env python3
"""Example: save a teacher's predictions as a TinyShard shard (top-K of the softmax).

Needs PyTorch; exits with a message where it is not installed.
Usage: python3 example_torch_writer.py OUT.tshard   (runs a small random demo teacher)
"""

import os
import sys

try:
    import torch
except ImportError:
    sys.exit("example_torch_writer.py needs PyTorch, which is not installed here "
             "(pip install torch).")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tinyshard.augment import encode_seed  # noqa: E402
from tinyshard.writer import ShardWriter  # noqa: E402


@torch.no_grad()
def write_teacher_shard(model, batches, path, classes, k, temperature=1.0, epoch=0, rank=0,
                        provenance=None):
    """`batches` yields (images, sample ids, augmentation seeds); each record stores the K most
    probable classes of softmax(logits / T), in descending order, with the sample's seed."""
    model.eval()
    with ShardWriter(path, classes, k, temperature=temperature, sorted=True,
                     augmentation_kind="seed", epoch=epoch, rank=rank,
                     provenance=provenance) as writer:
        for images, sample_ids, seeds in batches:
            probabilities = torch.softmax(model(images).float() / temperature, dim=-1)
            values, indices = probabilities.topk(k, dim=-1, sorted=True)
            for sample_id, seed, index, value in zip(sample_ids.tolist(), seeds.tolist(),
                                                     indices.cpu().numpy(),
                                                     values.cpu().numpy()):
                writer.append(sample_id, index, value, encode_seed(seed))


def main(path):
    torch.manual_seed(0)
    classes, k, count = 1000, 10, 64
    teacher = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, classes))
    images = torch.randn(count, 3, 32, 32)
    seeds = torch.randint(0, 2 ** 31, (count,), dtype=torch.int64)
    batches = [(images[i:i + 16], torch.arange(i, i + 16), seeds[i:i + 16])
               for i in range(0, count, 16)]
    write_teacher_shard(teacher, batches, path, classes, k,
                        provenance={"teacher": "random linear demo"})
    print(f"wrote {count} records to {path}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
