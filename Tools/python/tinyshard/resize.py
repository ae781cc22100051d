"""RandomResizedCrop's resize, as torchvision computes it on a float image with antialiasing.

torchvision's `resized_crop(img, top, left, h, w, size, BICUBIC, antialias=True)` cuts the integer box
out and resizes it with torch's antialiased separable filter, which is PIL's algorithm: for scale
s = in/out, output i has centre c = s (i + 0.5), taps from max(int(c - support + 0.5), 0) to
min(int(c + support + 0.5), in) with support = filter support * max(s, 1), weights
filter((j - c + 0.5) / max(s, 1)) normalised to sum 1; horizontal pass, then vertical, in floating
point without intermediate rounding; the result is rounded half to even and clamped to 0..255.

Two equivalent evaluations, chosen by cost: small resizes multiply by the two dense weight matrices
(float32, cached per size pair; PIL's per-call overhead dominates there), larger ones use Pillow's mode
"F" (float32) resampler, which is exactly that algorithm with its sums in float64, on each channel. The
Swift replay (Sources/Augment/ResizedCrop.swift) sums the taps in float32 in order; all three differ by
~1e-5 grey levels before rounding. PIL's uint8 resize is *not* used: it rounds between the passes
(~0.2 grey levels off torchvision's float path).
"""

import functools

import numpy as np
from PIL import Image

# Below this many multiply-adds a resize is done with dense weight matrices in numpy.
DENSE_LIMIT = 2_000_000


def _cubic(x):
    a = -0.5
    x = np.abs(x)
    return np.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                    np.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, 0.0))


def _triangle(x):
    x = np.abs(x)
    return np.where(x < 1, 1 - x, 0.0)


@functools.lru_cache(maxsize=512)
def filter_matrix(in_size, out_size, interpolation="bicubic"):
    """(out, in) float32 weights of one axis, torch's `_compute_indices_min_size_weights_aa`."""
    weight, support = (_cubic, 2.0) if interpolation == "bicubic" else (_triangle, 1.0)
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support *= filter_scale
    matrix = np.zeros((out_size, in_size), dtype=np.float64)
    for i in range(out_size):
        centre = scale * (i + 0.5)
        low = max(int(centre - support + 0.5), 0)
        high = min(int(centre + support + 0.5), in_size)
        taps = weight((np.arange(low, high) - centre + 0.5) / filter_scale)
        total = taps.sum()
        if total != 0:
            matrix[i, low:high] = taps / total
    out = matrix.astype(np.float32)
    out.flags.writeable = False
    return out

_FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


def resized_crop(image, box, output_size, interpolation="bicubic"):
    """uint8 (H, W, 3) `image`, box (x, y, w, h) in source pixels, output_size (height, width) ->
    uint8 (height, width, 3)."""
    x, y, w, h = (int(v) for v in box)
    out_h, out_w = (int(v) for v in output_size)
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > image.shape[1] or y + h > image.shape[0]:
        raise ValueError(f"crop box x {x} y {y} w {w} h {h} is not inside the "
                         f"{image.shape[1]}x{image.shape[0]} image")
    if out_h < 1 or out_w < 1:
        raise ValueError(f"output size {out_w}x{out_h} must be at least 1x1")
    crop = image[y:y + h, x:x + w, :]
    if (w, h) == (out_w, out_h):
        return np.ascontiguousarray(crop)     # scale 1: every weight is 0 or 1
    if h * w * out_w * 3 + out_h * h * out_w * 3 <= DENSE_LIMIT:
        rows = crop.astype(np.float32).transpose(2, 0, 1) @ filter_matrix(w, out_w, interpolation).T
        out = filter_matrix(h, out_h, interpolation) @ rows           # (3, out_h, out_w)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8).transpose(1, 2, 0).copy()
    resample = _FILTERS[interpolation]
    out = np.empty((out_h, out_w, 3), dtype=np.float32)
    for c in range(3):
        channel = Image.fromarray(np.ascontiguousarray(crop[:, :, c], dtype=np.float32), mode="F")
        out[:, :, c] = np.asarray(channel.resize((out_w, out_h), resample=resample))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
