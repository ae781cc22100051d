"""Replay of `params` augmentation codes (Spec/FORMAT.md section 4) on uint8 images, equal to the
Swift replay (Sources/Augment/Augmenter.swift) up to float rounding of the resize.

A view is rendered in timm's order: resized crop (torchvision's float antialiased filter), horizontal
flip, the stored RandAugment ops (PIL), then random erasing with the spec's noise. Two outputs:

- `replay(code, image, output_size, partner=None)`: uint8 (H, W, 3); the erase noise mapped to uint8 and
  mixup rounded to uint8 as the Swift `render` does (what `tinyshard render` shows);
- `replay_normalized(...)`: float32 (3, H, W) in timm's domain, `(x / 255 - mean) / std`, erase noise
  and mixing in floats, as the Swift trainer feeds its model (`renderNormalized`).
"""

import numpy as np
from PIL import Image

from .augment import MIX_MIXUP, decode_params, unpack_params
from .erasing import IMAGENET_MEAN, IMAGENET_STD, _round_half_away, erase_normalized, erase_uint8
from .randaugment import DEFAULT_FILL, apply_op
from .resize import resized_crop_image


class ReplayError(ValueError):
    """Parameters that do not fit the images given (size mismatch, missing partner)."""


def _source(image, what):
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ReplayError(f"the {what} image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    return image


def render_geometry(view, image, output_size, fill=DEFAULT_FILL):
    """Crop, flip and ops of one decoded View (augment.View), no erasing: uint8 (H, W, 3)."""
    if (image.shape[1], image.shape[0]) != (view.source_width, view.source_height):
        raise ReplayError(f"the parameters are for a {view.source_width}x{view.source_height} source, "
                          f"the image is {image.shape[1]}x{image.shape[0]}")
    crop = view.crop
    out = resized_crop_image(image, (crop.x, crop.y, crop.w, crop.h), output_size)
    if view.flip:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    for op in view.ops:
        out = apply_op(out, op.op_id, op.magnitude, op.negate, fill)
    return np.array(out)


def render_view(view, image, output_size, fill=DEFAULT_FILL):
    """One view in uint8, erasing included."""
    out = render_geometry(view, image, output_size, fill)
    if view.erase is not None:
        e = view.erase
        erase_uint8(out, (e.x, e.y, e.w, e.h), view.erase_seed)
    return out


def _partner(params, partner):
    if params.mix is None:
        return None
    if partner is None:
        raise ReplayError(f"the record mixes with sample {params.mix.partner_id} but no partner "
                          "image was given")
    return _source(partner, "partner")


def _mixup(a, b, lam_q):
    """a * lam + b * (1 - lam) in float32 for the stored lambda code, written over a and b (the two
    views' own arrays)."""
    lam = np.float32(lam_q / 65535)
    a *= lam
    b *= np.float32(1) - lam
    a += b
    return a


def replay(code, image, output_size, partner=None, fill=DEFAULT_FILL, checked=False):
    """A record's 80-byte params code replayed on its uint8 (H, W, 3) source `image` (and `partner`,
    the mix partner's source, when the code mixes) -> uint8 (height, width, 3).

    output_size is the shard header's (height, width). Raises ShardError('bad-augmentation') for an
    invalid code and ReplayError when the images do not fit it."""
    output_size = tuple(int(v) for v in output_size)
    params = unpack_params(code) if checked else decode_params(code, output_size)
    image = _source(image, "source")
    other = _partner(params, partner)
    out = render_view(params.view, image, output_size, fill)
    if params.mix is None:
        return out
    mixed = render_view(params.mix.partner_view, other, output_size, fill)
    if params.mix.mode == MIX_MIXUP:
        v = _round_half_away(_mixup(out.astype(np.float32), mixed.astype(np.float32), params.mix.lam_q))
        return np.clip(v, 0, 255, out=v).astype(np.uint8)
    box = params.mix.box
    out[box.y:box.y + box.h, box.x:box.x + box.w] = mixed[box.y:box.y + box.h, box.x:box.x + box.w]
    return out


def _normalize_constants(mean, std):
    """(scale, shift), float32 (3, 1, 1) each: 1 / (255 std_c) and mean_c / std_c."""
    mean = np.asarray(mean, dtype=np.float32)
    std = np.asarray(std, dtype=np.float32)
    return ((np.float32(1) / (np.float32(255) * std)).reshape(3, 1, 1), (mean / std).reshape(3, 1, 1))


def normalize(image, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """uint8 (H, W, 3) -> float32 (3, H, W), timm's `(x / 255 - mean) / std` as the Swift replay
    computes it: v * (1 / (255 std_c)) - mean_c / std_c, two float32 operations per value (the Swift
    `Augmenter.normalize`). Arithmetic rather than a 256-entry table: numpy widens a table's uint8
    indices to intp first, which costs more than the two operations."""
    scale, shift = _normalize_constants(mean, std)
    out = np.empty((3,) + image.shape[:2], dtype=np.float32)
    np.multiply(image.transpose(2, 0, 1), scale, out=out)
    out -= shift
    return out


def _view_normalized(view, image, output_size, fill, mean, std):
    chw = normalize(render_geometry(view, image, output_size, fill), mean, std)
    if view.erase is not None:
        e = view.erase
        erase_normalized(chw, (e.x, e.y, e.w, e.h), view.erase_seed)
    return chw


def replay_normalized(code, image, output_size, partner=None, fill=DEFAULT_FILL,
                      mean=IMAGENET_MEAN, std=IMAGENET_STD, checked=False):
    """The same record as float32 (3, height, width) in timm's normalised domain: erase noise written
    as normalised values, mixup `a * lam + b * (1 - lam)` and cutmix done on floats. checked=True
    skips re-checking a code that a reader has already checked (SoftLabels does)."""
    output_size = tuple(int(v) for v in output_size)
    params = unpack_params(code) if checked else decode_params(code, output_size)
    image = _source(image, "source")
    other = _partner(params, partner)
    out = _view_normalized(params.view, image, output_size, fill, mean, std)
    if params.mix is None:
        return out
    mixed = _view_normalized(params.mix.partner_view, other, output_size, fill, mean, std)
    if params.mix.mode == MIX_MIXUP:
        return _mixup(out, mixed, params.mix.lam_q)
    box = params.mix.box
    out[:, box.y:box.y + box.h, box.x:box.x + box.w] = mixed[:, box.y:box.y + box.h,
                                                            box.x:box.x + box.w]
    return out


__all__ = ["ReplayError", "normalize", "render_geometry", "render_view", "replay", "replay_normalized"]
