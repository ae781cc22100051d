"""The 15 RandAugment ops of Spec/FORMAT.md section 4, applied with PIL exactly as timm's
`timm.data.auto_augment` applies them (the Swift replay, Sources/Augment, is pixel-exact with these).

A stored op is (id, magnitude in hundredths, negate). The argument each op gets is timm's
level-to-argument mapping with the stored sign in place of `_randomly_negate`, computed with the same
float64 expressions as Sources/Augment/ImageOperation.swift:

| op | argument (level = magnitude / 10) |
|---|---|
| Rotate | +-30 level degrees |
| PosterizeIncreasing | 4 - int(4 level) bits |
| SolarizeIncreasing | threshold 256 - min(256, int(256 level)) |
| SolarizeAdd | add min(128, int(110 level)) below 128 |
| Color/Contrast/Brightness/SharpnessIncreasing | max(0.1, 1 +- 0.9 level) |
| ShearX/Y | +-0.3 level |
| TranslateX/YRel | +-0.45 level of the width/height |

Geometric ops resample bilinearly with fill (124, 116, 104) (the spec's choice; timm's default fill is
the same ImageNet mean).
"""

import functools

from PIL import Image, ImageEnhance, ImageOps

DEFAULT_FILL = (124, 116, 104)
_BILINEAR = Image.Resampling.BILINEAR
_AFFINE = Image.Transform.AFFINE


def _posterize(img, bits, fill):
    """PIL's posterize table, also for 0 bits (every value to 0: magnitude 10 of PosterizeIncreasing),
    which Pillow >= 10 refuses."""
    if bits >= 8:
        return img
    mask = ~((1 << (8 - max(bits, 0))) - 1) & 0xFF
    return img.point([i & mask for i in range(256)] * 3)


def _solarize_add(img, add, fill, threshold=128):
    table = [min(255, i + add) if i < threshold else i for i in range(256)]
    return img.point(table * 3)


def _affine(img, matrix, fill):
    return img.transform(img.size, _AFFINE, matrix, resample=_BILINEAR, fillcolor=fill)


# timm's op functions with their concrete argument: f(img, argument, fill) -> img.
OPERATIONS = {
    "auto_contrast": lambda img, _, fill: ImageOps.autocontrast(img),
    "equalize": lambda img, _, fill: ImageOps.equalize(img),
    "invert": lambda img, _, fill: ImageOps.invert(img),
    "rotate": lambda img, degrees, fill: img.rotate(degrees, resample=_BILINEAR, fillcolor=fill),
    "posterize": _posterize,
    "solarize": lambda img, threshold, fill: ImageOps.solarize(img, threshold),
    "solarize_add": _solarize_add,
    "color": lambda img, factor, fill: ImageEnhance.Color(img).enhance(factor),
    "contrast": lambda img, factor, fill: ImageEnhance.Contrast(img).enhance(factor),
    "brightness": lambda img, factor, fill: ImageEnhance.Brightness(img).enhance(factor),
    "sharpness": lambda img, factor, fill: ImageEnhance.Sharpness(img).enhance(factor),
    "shear_x": lambda img, factor, fill: _affine(img, (1, factor, 0, 0, 1, 0), fill),
    "shear_y": lambda img, factor, fill: _affine(img, (1, 0, 0, factor, 1, 0), fill),
    "translate_x_rel": lambda img, pct, fill: _affine(img, (1, 0, pct * img.size[0], 0, 1, 0), fill),
    "translate_y_rel": lambda img, pct, fill: _affine(img, (1, 0, 0, 0, 1, pct * img.size[1]), fill),
}

# Spec op id -> (timm function, argument of (level, sign)).
_BY_ID = (
    ("auto_contrast", lambda level, sign: None),
    ("equalize", lambda level, sign: None),
    ("invert", lambda level, sign: None),
    ("rotate", lambda level, sign: sign * level * 30),
    ("posterize", lambda level, sign: 4 - int(level * 4)),
    ("solarize", lambda level, sign: 256 - min(256, int(level * 256))),
    ("solarize_add", lambda level, sign: min(128, int(level * 110))),
    ("color", lambda level, sign: max(0.1, 1.0 + sign * level * 0.9)),
    ("contrast", lambda level, sign: max(0.1, 1.0 + sign * level * 0.9)),
    ("brightness", lambda level, sign: max(0.1, 1.0 + sign * level * 0.9)),
    ("sharpness", lambda level, sign: max(0.1, 1.0 + sign * level * 0.9)),
    ("shear_x", lambda level, sign: sign * level * 0.3),
    ("shear_y", lambda level, sign: sign * level * 0.3),
    ("translate_x_rel", lambda level, sign: sign * level * 0.45),
    ("translate_y_rel", lambda level, sign: sign * level * 0.45),
)


def op_argument(op_id, magnitude_hundredths, negate):
    """(timm function name, its argument) of a stored op."""
    if not 0 <= op_id < len(_BY_ID):
        raise ValueError(f"op id {op_id} is not 0-14")
    name, argument = _BY_ID[op_id]
    level = (magnitude_hundredths / 100) / 10
    return name, argument(level, -1.0 if negate else 1.0)


# The per-value ops whose PIL table is a closed form (the table ImageOps builds), as one band's table.
_TABLES = {
    "invert": lambda _: [255 - i for i in range(256)],
    "posterize": lambda bits: [i & (0xFF if bits >= 8 else ~((1 << (8 - max(bits, 0))) - 1) & 0xFF)
                               for i in range(256)],
    "solarize": lambda threshold: [i if i < threshold else 255 - i for i in range(256)],
    "solarize_add": lambda add: [min(255, i + add) if i < 128 else i for i in range(256)],
}


@functools.lru_cache(maxsize=64)
def _rgb_table(name, argument):
    """The 768 entries `Image.point` takes for RGB; cached, since building the list costs more than the
    lookup."""
    return _TABLES[name](argument) * 3


def apply_op(image, op_id, magnitude_hundredths, negate, fill=DEFAULT_FILL):
    """One stored op on a PIL RGB image -> a new image."""
    name, argument = op_argument(op_id, magnitude_hundredths, negate)
    if name in _TABLES:
        return image.point(_rgb_table(name, argument))
    return OPERATIONS[name](image, argument, fill)
