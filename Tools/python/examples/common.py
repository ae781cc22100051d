"""What the two examples share: the process group, the timm model (from a timm name and constructor
overrides, or from the Swift CLI's CONFIG.json), the evaluation view, one-line errors."""

import datetime
import inspect
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


class ArchError(ValueError):
    """A model description the installed timm cannot build as given: one line naming the file (or
    --model-args) and the key."""


# The Swift CLI's CONFIG.json (`--arch`, the `config.json` of a `tinyshard train` run): TinyViTConfiguration's
# JSON keys (Sources/TinyViT/Configuration.swift), timm's constructor names plus `img_size`, the nominal input
# size, which timm 1.0's TinyVit does not take. These four are required there, the others have defaults.
ARCH_REQUIRED = ("embed_dims", "depths", "num_heads", "window_sizes")
ARCH_INTEGERS = ("num_classes", "in_chans", "local_conv_size", "img_size")
ARCH_NUMBERS = ("mlp_ratio", "mbconv_expand_ratio", "drop_path_rate")
# Where Swift's default differs from timm's, Swift's, so that one file builds one model on both sides (a
# config without drop_path_rate trains with none in Swift; timm's default is 0.1).
ARCH_DEFAULTS = {"drop_path_rate": 0.0}
# Constructor parameters no JSON value can give.
NOT_FROM_JSON = {"act_layer", "device", "dtype", "self"}


def _tinyvit_class():
    from timm.models.tiny_vit import TinyVit
    return TinyVit


def _timm_version():
    import timm
    return timm.__version__


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_arch(config, bad):
    """TinyViTConfiguration.validate()'s rules, as one-line errors (timm would fail on some with a raw
    traceback, and build others that Swift refuses)."""
    for key in ARCH_REQUIRED:
        if key not in config:
            raise bad(f"key {key}: missing (a TinyViT config needs {', '.join(ARCH_REQUIRED)})")
        value = config[key]
        if not isinstance(value, list) or not all(_is_int(v) for v in value):
            raise bad(f"key {key}: must be a list of integers, got {json.dumps(value)}")
    for key in ARCH_INTEGERS:
        if key in config and not (_is_int(config[key]) and config[key] > 0):
            raise bad(f"key {key}: must be a positive integer, got {json.dumps(config[key])}")
    for key in ARCH_NUMBERS:
        if key in config and not (isinstance(config[key], (int, float)) and not isinstance(config[key], bool)):
            raise bad(f"key {key}: must be a number, got {json.dumps(config[key])}")
    dims, depths, heads, windows = (config[key] for key in ARCH_REQUIRED)
    stages = len(depths)
    if stages < 1:
        raise bad("key depths: is empty")
    if not len(dims) == len(heads) == len(windows) == stages:
        raise bad(f"keys embed_dims, num_heads, window_sizes: need one entry per stage ({stages})")
    if min(dims) <= 0 or min(depths) < 0 or min(heads) <= 0 or min(windows) <= 0:
        raise bad("dims, heads and windows must be positive, depths >= 0")
    if dims[0] % 2:
        raise bad("key embed_dims: embed_dims[0] must be even (the patch embedding halves it)")
    for i in range(1, stages):
        if dims[i] % heads[i]:
            raise bad(f"key num_heads: embed_dims[{i}] = {dims[i]} is not divisible by num_heads[{i}] = {heads[i]}")
    for key in ("mlp_ratio", "mbconv_expand_ratio"):
        if key in config and config[key] <= 0:
            raise bad(f"key {key}: must be positive")
    if config.get("local_conv_size", 3) % 2 != 1:
        raise bad("key local_conv_size: must be odd")
    if not 0 <= config.get("drop_path_rate", 0) < 1:
        raise bad("key drop_path_rate: must be in [0, 1)")


def arch_settings(path, classes, constructor=None):
    """(constructor keyword arguments, img_size or None) for the Swift CLI's CONFIG.json at `path` on the
    installed timm's TinyVit (or `constructor`): the keys its signature takes, Swift's defaults where timm's
    differ, num_classes reconciled with `classes` (the store's: a mismatch is an ArchError), img_size
    passed only to a constructor that takes it (timm 1.0's does not: the size is then the caller's view size
    when it has no size flag of its own). Any other key the constructor does not take is an ArchError
    naming it: a setting silently dropped would build another model than the file describes."""
    constructor = constructor or _tinyvit_class()

    def bad(message, code="bad-config"):
        return ArchError(f"{path}: [{code}] {message}")

    from tinyshard.errors import ShardError
    from tinyshard.format import parse_json_object
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ArchError(f"{path}: [io] cannot read the config: {exc.strerror or exc}") from None
    try:
        # The project's one JSON grammar (what the Swift CLI reads it with): no duplicate keys, no NaN.
        config = parse_json_object(data, code="bad-header")
    except ShardError as exc:
        raise bad(f"not a JSON object of the spec's grammar: {exc.message}") from None
    _check_arch(config, bad)
    settings = {}
    takes = {name for name, p in inspect.signature(constructor).parameters.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - NOT_FROM_JSON
    img_size = config.pop("img_size", None)
    if img_size is not None and "img_size" in takes:
        settings["img_size"] = img_size
    named = config.pop("num_classes", None)
    if named is not None and named != classes:
        raise bad(f"num_classes is {named}, the store has {classes} classes", code="mismatch")
    for key, value in config.items():
        if key not in takes:
            name = getattr(constructor, "__name__", "the model")
            raise bad(f"key {key}: the installed timm {_timm_version()}'s {name} does not take it")
        settings[key] = value
    for key, value in ARCH_DEFAULTS.items():
        if key in takes:
            settings.setdefault(key, value)
    settings["num_classes"] = classes
    return settings, img_size


def view_size(size_flag, arch_size, default=224):
    """The side of the views an example renders: its own size flag when given, else the --arch config's
    img_size (which timm 1.0's TinyVit does not take), else `default`."""
    if size_flag is not None:
        return size_flag
    return arch_size if arch_size is not None else default


def add_model_arguments(parser):
    """--model, --model-args and --arch (the model options both examples take)."""
    parser.add_argument("--model", default="tiny_vit_5m_224", help="timm model name (not with --arch)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--model-args", help="JSON object of timm constructor overrides")
    group.add_argument("--arch", help="the Swift CLI's CONFIG.json (tinyshard --arch; a train run's config.json): "
                                      "a TinyViT of the installed timm built as it describes")


def create_model(name, classes, model_args=None, checkpoint=None, arch=None):
    """A timm model with `classes` outputs: with `arch` (a path), the TinyViT the Swift CLI's CONFIG.json
    describes (arch_settings; `name` is then not used); else timm's `name` with model_args, a JSON object of
    constructor overrides (e.g. a small TinyViT: {"embed_dims": [16, 32, 32, 48], "depths": [1, 1, 1, 1],
    ...}), whose num_classes, if any, must be `classes`. checkpoint: a state_dict saved with torch.save or
    safetensors."""
    import timm

    if arch is not None:
        settings, _ = arch_settings(arch, classes)
        model = _tinyvit_class()(**settings)
    else:
        overrides = json.loads(model_args or "{}")
        if not isinstance(overrides, dict):
            raise ArchError(f"--model-args: [bad-config] must be a JSON object, got {model_args}")
        named = overrides.pop("num_classes", classes)
        if named != classes:
            raise ArchError(f"--model-args: [mismatch] num_classes is {named}, the store has {classes} classes")
        try:
            model = timm.create_model(name, pretrained=False, num_classes=classes, **overrides)
        except TypeError as exc:
            # timm hands unknown overrides to the model's constructor, which fails with a raw TypeError.
            raise ArchError(f"--model-args: [bad-config] timm {_timm_version()} cannot build {name} with "
                            f"these overrides: {exc} (the Swift CLI's CONFIG.json goes to --arch)") from None
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

