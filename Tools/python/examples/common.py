"""What the two examples share: the process group, the timm model, the evaluation view, one-line errors."""

import datetime
import json
import os
import sys

import torch
import torch.distributed as dist

from tinyshard.replay import normalize
from tinyshard.resize import resized_crop


def init_distributed():
    """(rank, world size): a process group from torchrun's environment (gloo on CPU, nccl on GPUs), or
    a single process when not launched by torchrun."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return 0, 1
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=5))
    return dist.get_rank(), dist.get_world_size()


def create_model(name, classes, model_args=None, checkpoint=None):
    """A timm model with `classes` outputs; model_args is a JSON object of constructor overrides (e.g. a
    small TinyViT: {"embed_dims": [16, 32, 32, 48], "depths": [1, 1, 1, 1], ...}); checkpoint a
    state_dict saved with torch.save or safetensors."""
    import timm

    model = timm.create_model(name, pretrained=False, num_classes=classes, **json.loads(model_args or "{}"))
    if checkpoint:
        if checkpoint.endswith(".safetensors"):
            from safetensors.torch import load_file
            state = load_file(checkpoint)
        else:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    return model


def eval_view(image, size):
    """The evaluation transform of the Swift trainer: the whole image resized to size x size
    (torchvision's antialiased bicubic), normalised."""
    height, width = image.shape[:2]
    return torch.from_numpy(normalize(resized_crop(image, (0, 0, width, height), (size, size))))


@torch.no_grad()
def evaluate(model, store, indices, size, batch=256):
    """Top-1 accuracy of `model` on store images `indices` (their labels)."""
    model.eval()
    correct = 0
    for start in range(0, len(indices), batch):
        part = indices[start:start + batch]
        x = torch.stack([eval_view(store.image(i), size) for i in part])
        labels = torch.tensor([store.label(i) for i in part])
        correct += int((model(x).argmax(1) == labels).sum())
    return correct / max(1, len(indices))


def one_line(exc):
    """The one-line message of a tinyshard error, also when a DataLoader worker re-raised it (torch
    wraps it with the worker's traceback; the error's own line is the last)."""
    text = str(exc).strip()
    last = text.splitlines()[-1] if text else type(exc).__name__
    for prefix in ("tinyshard.errors.ShardError: ", "tinyshard.labels.LabelError: ",
                   "tinyshard.imagestore.ImageStoreError: "):
        if last.startswith(prefix):
            return last[len(prefix):]
    return last


def fail(exc):
    print(f"error: {one_line(exc)}", file=sys.stderr)
    if dist.is_initialized():
        dist.destroy_process_group()
    sys.exit(1)


def mean_over_ranks(value):
    if not dist.is_initialized():
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t[0]) / dist.get_world_size()

