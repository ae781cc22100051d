"""RandomResizedCrop's resize, as torchvision computes it on a float image with antialiasing.

torchvision's `resized_crop(img, top, left, h, w, size, BICUBIC, antialias=True)` cuts the integer box
out and resizes it with torch's antialiased separable filter, which is PIL's algorithm: for scale
s = in/out, output i has centre c = s (i + 0.5), taps from max(int(c - support + 0.5), 0) to
min(int(c + support + 0.5), in) with support = filter support * max(s, 1), weights
filter((j - c + 0.5) / max(s, 1)) normalised to sum 1; horizontal pass, then vertical, in floating
point without intermediate rounding; the result is rounded half to even and clamped to 0..255.

Pillow's mode "F" (float32) resampler is exactly that algorithm with its sums in float64, so each
channel is resized by PIL as a float image (the Swift replay, Sources/Augment/ResizedCrop.swift, sums in
float32: the two differ by ~1e-5 grey levels before rounding). PIL's uint8 resize is *not* used: it
rounds between the passes (~0.2 grey levels off torchvision's float path).
"""

import numpy as np
from PIL import Image

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
    resample = _FILTERS[interpolation]
    out = np.empty((out_h, out_w, 3), dtype=np.float32)
    for c in range(3):
        channel = Image.fromarray(np.ascontiguousarray(crop[:, :, c], dtype=np.float32), mode="F")
        out[:, :, c] = np.asarray(channel.resize((out_w, out_h), resample=resample))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
