"""The replay (tinyshard.replay) byte for byte against a plain evaluation of each step: the crop widened
to float32 per channel and resized by PIL's mode "F" (or the dense matrices), rounded, flipped, the ops
one by one (numpy tables or PIL), normalised by a table per channel, the erase noise evaluated from
the spec's formula, the mix in numpy expressions. The replay's faster paths must not move a single
byte, uint8 or normalised, on sampler-drawn codes (with and without mixing, photos and digits) and on
every op at its extremes."""

import os

import numpy as np
import pytest

pytest.importorskip("PIL", reason="replay needs Pillow (pip install ./Tools/python[replay])")
from PIL import Image  # noqa: E402

from conftest import AUGMENT_FIXTURES, DIGITS_CSV, load_safetensors  # noqa: E402
from tinyshard import resize  # noqa: E402
from tinyshard.augment import MIX_MIXUP, Box, Op, Params, View, decode_params, encode_params  # noqa: E402
from tinyshard.erasing import ERASE_SALT, GOLDEN, IMAGENET_MEAN, IMAGENET_STD, mix64  # noqa: E402
from tinyshard.importers import read_digits  # noqa: E402
from tinyshard.randaugment import DEFAULT_FILL, OPERATIONS, op_argument  # noqa: E402
from tinyshard.replay import replay, replay_normalized  # noqa: E402
from tinyshard.sampler import AugmentationSampler, Recipe  # noqa: E402


def plain_resized_crop(image, box, size):
    x, y, w, h = box
    out_h, out_w = size
    crop = image[y:y + h, x:x + w, :]
    if (w, h) == (out_w, out_h):
        return crop.copy()
    if h * w * out_w * 3 + out_h * h * out_w * 3 <= resize.DENSE_LIMIT:
        rows = crop.astype(np.float32).transpose(2, 0, 1) @ resize.filter_matrix(w, out_w).T
        out = (resize.filter_matrix(h, out_h) @ rows).transpose(1, 2, 0)
    else:
        out = np.empty((out_h, out_w, 3), dtype=np.float32)
        for c in range(3):
            channel = Image.fromarray(np.ascontiguousarray(crop[:, :, c], dtype=np.float32), mode="F")
            out[:, :, c] = np.asarray(channel.resize((out_w, out_h), resample=Image.Resampling.BICUBIC))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def plain_op(image, op):
    name, argument = op_argument(op.op_id, op.magnitude, op.negate)
    values = np.arange(256)
    tables = {"invert": lambda: 255 - values,
              "posterize": lambda: values & (~((1 << (8 - max(argument, 0))) - 1) & 0xFF),
              "solarize": lambda: np.where(values < argument, values, 255 - values),
              "solarize_add": lambda: np.where(values < 128, np.minimum(255, values + argument), values)}
    if name in tables:
        return tables[name]().astype(np.uint8)[image]
    return np.asarray(OPERATIONS[name](Image.fromarray(image), argument, DEFAULT_FILL))


def plain_noise(seed, count):
    """Spec section 4's erase noise, each step a separate numpy expression."""
    key = mix64(np.uint64(seed ^ ERASE_SALT))
    p = np.arange((count + 1) // 2, dtype=np.uint64)
    with np.errstate(over="ignore"):
        u1 = (mix64(key + (np.uint64(2) * p + np.uint64(1)) * GOLDEN) >> np.uint64(11)).astype(np.float64)
        u2 = (mix64(key + (np.uint64(2) * p + np.uint64(2)) * GOLDEN) >> np.uint64(11)).astype(np.float64)
    radius = np.sqrt(-2.0 * np.log1p(-(u1 * 2.0 ** -53)))
    angle = 2.0 * np.pi * (u2 * 2.0 ** -53)
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1).reshape(-1)[:count].astype(np.float32)


def plain_view(view, image, size, normalized):
    crop = view.crop
    out = plain_resized_crop(image, (crop.x, crop.y, crop.w, crop.h), size)
    if view.flip:
        out = out[:, ::-1]
    for op in view.ops:
        out = plain_op(np.ascontiguousarray(out), op)
    mean, std = IMAGENET_MEAN.reshape(3, 1, 1), IMAGENET_STD.reshape(3, 1, 1)
    if normalized:                          # a table per channel, each byte value's float32 expression
        table = np.arange(256, dtype=np.float32) * (np.float32(1) / (np.float32(255) * std)) - mean / std
        out = np.stack([table[c, 0][out[:, :, c]] for c in range(3)])
    else:
        out = out.copy()
    if view.erase is not None:
        e = view.erase
        z = plain_noise(view.erase_seed, 3 * e.w * e.h).reshape(3, e.h, e.w)
        if normalized:
            out[:, e.y:e.y + e.h, e.x:e.x + e.w] = z
        else:
            v = (z * std + mean) * np.float32(255)
            v = np.floor(v) + ((v - np.floor(v)) >= 0.5)                 # half away from zero
            out[e.y:e.y + e.h, e.x:e.x + e.w] = np.clip(v, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    return out


def plain_replay(code, image, size, partner, normalized):
    params = decode_params(code, size)
    out = plain_view(params.view, image, size, normalized)
    if params.mix is None:
        return out
    mixed = plain_view(params.mix.partner_view, partner, size, normalized)
    lam = np.float32(params.mix.lam_q / 65535)
    if params.mix.mode == MIX_MIXUP:
        v = lam * out.astype(np.float32) + (np.float32(1) - lam) * mixed.astype(np.float32)
        if normalized:
            return v
        return np.clip(np.floor(v) + ((v - np.floor(v)) >= 0.5), 0, 255).astype(np.uint8)
    b = params.mix.box
    rows, columns = slice(b.y, b.y + b.h), slice(b.x, b.x + b.w)
    if normalized:
        out[:, rows, columns] = mixed[:, rows, columns]
    else:
        out[rows, columns] = mixed[rows, columns]
    return out


def sources():
    if not os.path.isdir(AUGMENT_FIXTURES):
        pytest.skip(f"fixtures {AUGMENT_FIXTURES} absent")
    tensors = load_safetensors(os.path.join(AUGMENT_FIXTURES, "aug_reference.safetensors"))
    photos = [np.asarray(Image.fromarray(tensors[f"{name}.source"]).resize((500, 375)))
              for name in ("chelsea", "coffee", "astronaut")]
    photos.append(photos[0][:, ::-1])                   # a source that is not C-contiguous
    digits = [image for _, image, _ in read_digits(DIGITS_CSV, upscale=4, limit=5)]
    return photos, digits


def cases():
    """(code, image, output size, partner) drawn by the sampler, and each op at its extremes."""
    photos, digits = sources()
    out = []
    for images, size, count in ((photos, (224, 224), 14), (digits, (32, 32), 6), (digits, (224, 224), 4)):
        size_of = lambda i: images[i % len(images)].shape[1::-1]  # noqa: E731
        for recipe in (Recipe.tinyvit(), Recipe.tinyvit_mix()):
            sampler = AugmentationSampler(3, size, recipe)
            for i in range(count):
                params = sampler.parameters(0, i, size_of(i), len(images), size_of)
                partner = images[params.mix.partner_id % len(images)] if params.mix else None
                out.append((encode_params(params, size), images[i % len(images)], size, partner))
    photo = photos[0]
    for op_id in range(15):
        for magnitude, negate in ((1000, False), (1000, True), (0, False)):
            view = View(500, 375, Box(40, 30, 300, 260), flip=negate, ops=(Op(op_id, magnitude, negate),),
                        erase=Box(3, 5, 31, 17) if negate else None, erase_seed=op_id if negate else 0)
            out.append((encode_params(Params(view), (224, 224)), photo, (224, 224), None))
    return out


@pytest.fixture(scope="module")
def replay_cases():
    return cases()


@pytest.mark.parametrize("normalized", [False, True], ids=["uint8", "normalised"])
def test_replay_equals_the_plain_evaluation(replay_cases, normalized):
    fast = replay_normalized if normalized else replay
    for code, image, size, partner in replay_cases:
        ours = fast(code, image, size, partner)
        plain = plain_replay(code, image, size, partner, normalized)
        assert ours.dtype == plain.dtype and ours.shape == plain.shape and ours.flags.writeable
        assert ours.tobytes() == plain.tobytes(), decode_params(code, size)
