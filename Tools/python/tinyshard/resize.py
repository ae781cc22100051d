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

The result is a PIL RGB image (`resized_crop_image`), as the RandAugment ops that follow take one: the
crop goes to PIL straight from the source's memory and its bands are split and widened to float32 by
PIL, so the only numpy work per view is the rounding (no strided numpy copies of interleaved pixels,
which cost more than the PIL resize of a channel).
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


def _rgb(image, x, y, w, h):
    """The box of a uint8 (H, W, 3) array as a PIL RGB image, decoded row by row from the array's own
    memory (PIL's raw decoder with the source's row stride) instead of a numpy copy of the box."""
    image = np.ascontiguousarray(image)
    stride = image.shape[1] * 3
    start = y * stride + x * 3
    rows = memoryview(image).cast("B")[start:start + (h - 1) * stride + w * 3]
    return Image.frombuffer("RGB", (w, h), rows, "raw", "RGB", stride, 1)


def _rgb_of_planes(planes):
    """uint8 (3, H, W) -> PIL RGB image (PIL interleaves the bands; numpy's transpose copy is slower)."""
    height, width = planes.shape[1:]
    return Image.merge("RGB", [Image.frombuffer("L", (width, height), plane, "raw", "L", 0, 1)
                               for plane in planes])


def _rounded_planes(out):
    """float32 (3, H, W) -> uint8, rounded half to even and clamped, in place before the cast."""
    np.rint(out, out=out)
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def _dense(image, x, y, w, h, out_h, out_w, interpolation):
    crop = image[y:y + h, x:x + w, :]
    rows = crop.astype(np.float32).transpose(2, 0, 1) @ filter_matrix(w, out_w, interpolation).T
    return _rounded_planes(filter_matrix(h, out_h, interpolation) @ rows)     # (3, out_h, out_w)


def _pil_float(image, x, y, w, h, out_h, out_w, interpolation):
    resample = _FILTERS[interpolation]
    out = np.empty((3, out_h, out_w), dtype=np.float32)
    for c, band in enumerate(_rgb(image, x, y, w, h).split()):
        resized = band.convert("F").resize((out_w, out_h), resample=resample)
        out[c] = np.frombuffer(resized.tobytes(), dtype=np.float32).reshape(out_h, out_w)
    return _rounded_planes(out)


def resized_crop_image(image, box, output_size, interpolation="bicubic"):
    """uint8 (H, W, 3) `image`, box (x, y, w, h) in source pixels, output_size (height, width) -> the
    resized crop as a PIL RGB image."""
    x, y, w, h = (int(v) for v in box)
    out_h, out_w = (int(v) for v in output_size)
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > image.shape[1] or y + h > image.shape[0]:
        raise ValueError(f"crop box x {x} y {y} w {w} h {h} is not inside the "
                         f"{image.shape[1]}x{image.shape[0]} image")
    if out_h < 1 or out_w < 1:
        raise ValueError(f"output size {out_w}x{out_h} must be at least 1x1")
    if (w, h) == (out_w, out_h):
        return _rgb(image, x, y, w, h)     # scale 1: every weight is 0 or 1
    evaluate = _dense if h * w * out_w * 3 + out_h * h * out_w * 3 <= DENSE_LIMIT else _pil_float
    return _rgb_of_planes(evaluate(image, x, y, w, h, out_h, out_w, interpolation))


def resized_crop(image, box, output_size, interpolation="bicubic"):
    """The same resized crop as a uint8 (height, width, 3) array."""
    return np.array(resized_crop_image(image, box, output_size, interpolation))
