"""Augmentation codes (FORMAT.md section 4): the `seed` kind (an i32) and `params` version 1
(80 bytes: a view, a mix and a partner view).

The rules are written once (`_all_rules`), over the fields of the codes as columns: numpy arrays in
`params_problems`, which the reader and the verifier run on whole blocks, or plain ints in
`check_params_code`, which the writer and the single-code encoder/decoder run on one code (a replay
per image: Python ints cost a tenth of numpy's per-call overhead on one-row arrays). The rules only use
operators that mean the same on both (comparisons, `&`, `|`, `+`, shifts; never `~`).
"""

import struct
from dataclasses import dataclass

import numpy as np

from .errors import ShardError

PARAMS_BYTES = 80
SEED_BYTES = 4
OP_COUNT = 3
MAX_OP_ID = 14
MAX_MAGNITUDE = 1000            # hundredths: 10.00
MIX_NONE, MIX_MIXUP, MIX_CUTMIX = 0, 1, 2

OP_NAMES = ("AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing",
            "SolarizeIncreasing", "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing",
            "BrightnessIncreasing", "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel",
            "TranslateYRel")

_VIEW = np.dtype([("src_w", "<u2"), ("src_h", "<u2"), ("x", "<u2"), ("y", "<u2"),
                  ("w", "<u2"), ("h", "<u2"), ("flags", "u1"), ("reserved", "u1"),
                  ("ops", "<u2", (OP_COUNT,)), ("erase", "<u2", (4,)), ("erase_seed", "<u4")])
_MIX = np.dtype([("mode", "u1"), ("reserved", "u1"), ("q", "<u2"), ("partner", "<u4"),
                 ("box", "<u2", (4,))])
_PARAMS = np.dtype([("view", _VIEW), ("mix", _MIX), ("partner_view", _VIEW)])
assert _VIEW.itemsize == 32 and _MIX.itemsize == 16 and _PARAMS.itemsize == PARAMS_BYTES

_VIEW_STRUCT = struct.Struct("<6HBB3H4HI")
_MIX_STRUCT = struct.Struct("<BBHI4H")


# --------------------------------------------------------------------------------------------
# Validation


def _box_rules(box, output_size, what):
    """(bad, message) rules for an x, y, w, h box that must lie inside output_size."""
    height, width = output_size
    x, y, w, h = box
    return [((w < 1) | (h < 1), f"{what} width and height must be >= 1"),
            ((x + w > width) | (y + h > height), f"{what} must lie inside output_size")]


def _view_rules(view, output_size, what):
    src_w, src_h, x, y, w, h = (view[name] for name in ("src_w", "src_h", "x", "y", "w", "h"))
    flags = view["flags"]
    count = (flags >> 2) & 3
    rules = [((src_w < 1) | (src_h < 1), f"{what}: source size must be >= 1"),
             ((w < 1) | (h < 1), f"{what}: crop width and height must be >= 1"),
             ((x + w > src_w) | (y + h > src_h), f"{what}: crop must lie inside the source"),
             (flags >= 16, f"{what}: flag bits 4-7 must be 0"),
             (view["reserved"] != 0, f"{what}: reserved byte must be 0")]
    for slot, op in enumerate(view["ops"]):
        used = count > slot
        rules.append((used & ((op & 31) > MAX_OP_ID), f"{what}: op {slot} id must be 0-14"))
        rules.append((used & ((op >> 6) > MAX_MAGNITUDE),
                      f"{what}: op {slot} magnitude must be 0-1000 hundredths"))
        rules.append(((count <= slot) & (op != 0), f"{what}: op slot {slot} past the op count must be 0"))
    erase = (flags & 2) != 0
    for bad, message in _box_rules(view["erase"], output_size, f"{what}: erase box"):
        rules.append((erase & bad, message))
    ex, ey, ew, eh = view["erase"]
    rules.append((((flags & 2) == 0) & ((ex != 0) | (ey != 0) | (ew != 0) | (eh != 0)
                                         | (view["erase_seed"] != 0)),
                  f"{what}: erase box and seed must be 0 when erase is absent"))
    return rules


def _all_rules(view, mix, partner, output_size):
    """Every rule of section 4 in order, as (bad, message), over the fields of _array_fields or
    _code_fields."""
    mode = mix["mode"]
    mixing = (mode == MIX_MIXUP) | (mode == MIX_CUTMIX)
    cutmix = mode == MIX_CUTMIX
    rules = _view_rules(view, output_size, "view")
    rules += [(mode > MIX_CUTMIX, "mix mode must be 0, 1 or 2"),
              (mix["reserved"] != 0, "mix reserved byte must be 0"),
              ((mode == MIX_NONE) & mix["tail_nonzero"], "with mix mode 0, bytes 34-79 must be 0")]
    for bad, message in _box_rules(mix["box"], output_size, "cutmix box"):
        rules.append((cutmix & bad, message))
    bx, by, bw, bh = mix["box"]
    rules.append(((mode != MIX_CUTMIX) & ((bx != 0) | (by != 0) | (bw != 0) | (bh != 0)),
                  "cutmix box must be 0 unless cutmix"))
    for bad, message in _view_rules(partner, output_size, "partner view"):
        rules.append((mixing & bad, message))
    return rules


def _array_fields(codes):
    """(view, mix, partner view) field columns of an (n, 80) uint8 array; sizes and boxes as int64, so
    that sums do not wrap."""
    structured = codes.view(_PARAMS).reshape(len(codes))

    def view_fields(view):
        fields = {name: view[name].astype(np.int64) for name in ("src_w", "src_h", "x", "y", "w", "h")}
        fields.update(flags=view["flags"], reserved=view["reserved"], erase_seed=view["erase_seed"],
                      ops=tuple(view["ops"][:, slot] for slot in range(OP_COUNT)),
                      erase=tuple(view["erase"][:, i].astype(np.int64) for i in range(4)))
        return fields
    mix = structured["mix"]
    mix_fields = {"mode": mix["mode"], "reserved": mix["reserved"],
                  "box": tuple(mix["box"][:, i].astype(np.int64) for i in range(4)),
                  "tail_nonzero": np.any(codes[:, 34:] != 0, axis=1)}
    return view_fields(structured["view"]), mix_fields, view_fields(structured["partner_view"])


def _code_fields(code):
    """The same fields of one 80-byte code, as Python ints."""
    def view_fields(data):
        values = _VIEW_STRUCT.unpack(data)
        return {"src_w": values[0], "src_h": values[1], "x": values[2], "y": values[3], "w": values[4],
                "h": values[5], "flags": values[6], "reserved": values[7], "ops": values[8:11],
                "erase": values[11:15], "erase_seed": values[15]}
    mode, reserved, _lam, _partner, *box = _MIX_STRUCT.unpack(code[32:48])
    mix = {"mode": mode, "reserved": reserved, "box": box, "tail_nonzero": any(code[34:])}
    return view_fields(code[:32]), mix, view_fields(code[48:80])


def params_problems(codes, output_size):
    """Check n params codes (an (n, 80) uint8 array) against every rule of section 4.

    Returns [(row, message)] for the invalid rows, each with the first rule it breaks."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    if codes.ndim != 2 or codes.shape[1] != PARAMS_BYTES:
        raise ValueError("params codes must be an (n, 80) uint8 array")
    if len(codes) == 0:
        return []
    first_message = {}
    for bad, message in _all_rules(*_array_fields(codes), output_size):
        if bad.any():
            for row in np.flatnonzero(bad).tolist():
                first_message.setdefault(row, message)
    return sorted(first_message.items())


# --------------------------------------------------------------------------------------------
# Single codes


@dataclass(frozen=True)
class Op:
    """One RandAugment op: id (0-14, OP_NAMES), magnitude in hundredths (0-1000), sign."""

    op_id: int
    magnitude: int
    negate: bool = False

    def word(self):
        if not (0 <= self.op_id <= MAX_OP_ID and 0 <= self.magnitude <= MAX_MAGNITUDE):
            raise ShardError("bad-augmentation", f"op {self} is out of range")
        return self.op_id | (int(bool(self.negate)) << 5) | (self.magnitude << 6)

    @classmethod
    def from_word(cls, word):
        return cls(op_id=word & 31, magnitude=word >> 6, negate=bool(word & 32))


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class View:
    """A RandomResizedCrop box in source pixels, a flip, up to 3 ops and an optional erase box
    (output pixels) with the seed of its per-pixel noise."""

    source_width: int
    source_height: int
    crop: Box
    flip: bool = False
    ops: tuple = ()
    erase: Box = None
    erase_seed: int = 0


@dataclass(frozen=True)
class Mix:
    """Mixup (mode 1) or cutmix (mode 2) with a partner sample; lam_q is lambda * 65535."""

    mode: int
    lam_q: int
    partner_id: int
    partner_view: View
    box: Box = None


@dataclass(frozen=True)
class Params:
    view: View
    mix: Mix = None


def _pack_view(view):
    if len(view.ops) > OP_COUNT:
        raise ShardError("bad-augmentation", f"a view holds at most {OP_COUNT} ops")
    flags = int(bool(view.flip)) | (int(view.erase is not None) << 1) | (len(view.ops) << 2)
    words = [op.word() for op in view.ops] + [0] * (OP_COUNT - len(view.ops))
    erase = view.erase or Box(0, 0, 0, 0)
    crop = view.crop
    return _VIEW_STRUCT.pack(view.source_width, view.source_height, crop.x, crop.y, crop.w,
                             crop.h, flags, 0, *words, erase.x, erase.y, erase.w, erase.h,
                             view.erase_seed)


def _pack_mix(mix):
    if mix is None:
        return bytes(48)
    box = mix.box or Box(0, 0, 0, 0)
    return (_MIX_STRUCT.pack(mix.mode, 0, mix.lam_q, mix.partner_id, box.x, box.y, box.w, box.h)
            + _pack_view(mix.partner_view))


def check_params_code(code, output_size):
    """Raise ShardError('bad-augmentation') unless `code` is a valid 80-byte params code."""
    if len(code) != PARAMS_BYTES:
        raise ShardError("bad-augmentation", f"params code is {len(code)} bytes, not 80")
    for bad, message in _all_rules(*_code_fields(bytes(code)), output_size):
        if bad:
            raise ShardError("bad-augmentation", message)


def encode_params(params, output_size):
    """Params -> the 80-byte code; raises ShardError('bad-augmentation') if it breaks a rule."""
    try:
        code = _pack_view(params.view) + _pack_mix(params.mix)
    except struct.error as exc:
        raise ShardError("bad-augmentation", f"a field does not fit its width: {exc}") from None
    check_params_code(code, output_size)
    return code


def _unpack_view(data):
    (src_w, src_h, x, y, w, h, flags, _reserved, *rest) = _VIEW_STRUCT.unpack(data)
    words, erase_box, erase_seed = rest[:3], rest[3:7], rest[7]
    count = (flags >> 2) & 3
    return View(source_width=src_w, source_height=src_h, crop=Box(x, y, w, h),
                flip=bool(flags & 1), ops=tuple(Op.from_word(wd) for wd in words[:count]),
                erase=Box(*erase_box) if flags & 2 else None, erase_seed=erase_seed)


def decode_params(code, output_size):
    """The 80-byte code -> Params, after checking every rule (so re-encoding is exact)."""
    check_params_code(code, output_size)
    code = bytes(code)
    mode, _reserved, lam_q, partner, bx, by, bw, bh = _MIX_STRUCT.unpack(code[32:48])
    mix = None
    if mode != MIX_NONE:
        mix = Mix(mode=mode, lam_q=lam_q, partner_id=partner,
                  partner_view=_unpack_view(code[48:80]),
                  box=Box(bx, by, bw, bh) if mode == MIX_CUTMIX else None)
    return Params(view=_unpack_view(code[:32]), mix=mix)


def encode_seed(seed):
    """The `seed` kind's code: the official TinyViT seed as a little-endian i32."""
    try:
        return struct.pack("<i", seed)
    except struct.error:
        raise ShardError("bad-augmentation", f"seed {seed} does not fit an i32") from None


def decode_seed(code):
    return struct.unpack("<i", bytes(code))[0]


def unpack_params(code):
    """The 80-byte code -> Params without checking the rules: for codes a reader has already checked
    (SoftLabels and ShardReader check every record of a block they decode). Use decode_params for
    codes of unknown origin."""
    code = bytes(code)
    if len(code) != PARAMS_BYTES:
        raise ShardError("bad-augmentation", f"params code is {len(code)} bytes, not 80")
    mode, _reserved, lam_q, partner, bx, by, bw, bh = _MIX_STRUCT.unpack(code[32:48])
    mix = None
    if mode != MIX_NONE:
        mix = Mix(mode=mode, lam_q=lam_q, partner_id=partner, partner_view=_unpack_view(code[48:80]),
                  box=Box(bx, by, bw, bh) if mode == MIX_CUTMIX else None)
    return Params(view=_unpack_view(code[:32]), mix=mix)
