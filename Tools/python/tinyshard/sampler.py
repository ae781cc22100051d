"""The augmentation sampler of Spec/SAMPLER.md: parameters on the spec's grid as a pure function of
(run seed, epoch, sample id), so a PyTorch teacher pass draws exactly the codes the Swift teacher pass
draws for the same seed (Spec/vectors/sampling/augmentation-sampler.json and a cross test check it),
whichever rank or worker asks.

Randomness is SplitMix64 used as a counter-based hash: draw n of a stream with key k is
mix64(k + n * 0x9E3779B97F4A7C15); each decision (crop, flip, RandAugment, erase, mix) has its own
stream keyed by mix64(mix64(mix64(seed ^ "TINYSHAR") ^ (epoch << 32 | sample)) + stream * S)
(SAMPLER.md 2, 3). The recipes follow timm (TinyViT's `rand-m9-mstd0.5-inc1`, `reprob=0.25`,
`remode='pixel'`, mixup 0.8 / cutmix 1.0); the SAMPLER.md section named in each function gives every
step, and section 12 the differences from timm and torchvision.
"""

import math
from dataclasses import dataclass, field
from typing import Optional

from .augment import MIX_CUTMIX, MIX_MIXUP, Box, Mix, Op, Params, View

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
SIGNED_OPS = frozenset({3, 7, 8, 9, 10, 11, 12, 13, 14})     # ops with timm's _randomly_negate
STREAM_CROP, STREAM_FLIP, STREAM_RANDAUGMENT, STREAM_ERASE, STREAM_MIX = 1, 2, 3, 4, 5


def mix64(z):
    z &= MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def _round_half_away(x):
    """round_away (SAMPLER.md 0): to nearest, ties away from zero (Swift's `rounded()`)."""
    whole = math.floor(x)
    return whole + 1 if x - whole >= 0.5 else whole


class SampleRandom:
    """One stream of counter-based draws (SAMPLER.md 2)."""

    def __init__(self, seed, epoch, sample, stream):
        run = mix64(seed ^ 0x54494E5953484152)
        position = mix64(run ^ ((epoch << 32) | sample))
        self.key = mix64((position + stream * 0xD1B54A32D192ED03) & MASK64)
        self.counter = 0

    def next(self):
        self.counter += 1
        return mix64((self.key + self.counter * GOLDEN) & MASK64)

    def uniform(self, a=None, b=None):
        u = (self.next() >> 11) * 2.0 ** -53
        return u if a is None else a + (b - a) * u

    def integer(self, lower, upper):
        """Uniform in lower..upper inclusive, Lemire's unbiased multiply-shift."""
        span = upper - lower + 1
        product = self.next() * span
        if product & MASK64 < span:
            threshold = ((1 << 64) - span) % span
            while product & MASK64 < threshold:
                product = self.next() * span
        return lower + (product >> 64)

    def gauss(self, mean=0.0, std=1.0):
        u1 = self.uniform()
        u2 = self.uniform()
        return mean + std * math.sqrt(-2 * math.log1p(-u1)) * math.cos(2 * math.pi * u2)

    def gamma(self, shape):
        if shape < 1:
            boost = self.uniform() ** (1 / shape)
            return self.gamma(shape + 1) * boost
        d = shape - 1.0 / 3
        c = 1 / math.sqrt(9 * d)
        while True:
            while True:
                x = self.gauss()
                v = 1 + c * x
                if v > 0:
                    break
            v = v * v * v
            u = self.uniform()
            if u < 1 - 0.0331 * x * x * x * x:
                return d * v
            if math.log(u) < 0.5 * x * x + d * (1 - v + math.log(v)):
                return d * v

    def beta(self, a, b):
        x = self.gamma(a)
        y = self.gamma(b)
        total = x + y
        return x / total if total > 0 else 0.5


@dataclass(frozen=True)
class RandAugmentRecipe:
    layers: int = 2
    magnitude: float = 9.0
    magnitude_std: float = 0.5
    probability: float = 0.5
    ops: tuple = tuple(range(15))


@dataclass(frozen=True)
class ErasingRecipe:
    probability: float = 0.25
    area: tuple = (0.02, 1.0 / 3)
    aspect: tuple = (0.3, 1 / 0.3)
    attempts: int = 10


@dataclass(frozen=True)
class MixRecipe:
    mixup_alpha: float = 0.8
    cutmix_alpha: float = 1.0
    probability: float = 1.0
    switch_probability: float = 0.5


@dataclass(frozen=True)
class Recipe:
    """What the sampler draws (SAMPLER.md 1); the defaults are TinyViT's ImageNet recipe without
    mixing (preset `tinyvit`), `Recipe.tinyvit_mix()` adds mixup/cutmix."""

    crop_scale: tuple = (0.08, 1.0)
    crop_ratio: tuple = (3.0 / 4, 4.0 / 3)
    horizontal_flip_probability: float = 0.5
    rand_augment: Optional[RandAugmentRecipe] = field(default_factory=RandAugmentRecipe)
    erasing: Optional[ErasingRecipe] = field(default_factory=ErasingRecipe)
    mix: Optional[MixRecipe] = None

    @classmethod
    def tinyvit(cls):
        return cls()

    @classmethod
    def tinyvit_mix(cls):
        return cls(mix=MixRecipe())


def _draw_crop(width, height, scale, ratio, random):
    """torchvision's RandomResizedCrop.get_params (SAMPLER.md 4)."""
    area = float(width * height)
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * random.uniform(scale[0], scale[1])
        aspect = math.exp(random.uniform(log_ratio[0], log_ratio[1]))
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = random.integer(0, height - h)
            left = random.integer(0, width - w)
            return Box(left, top, w, h)
    in_ratio = width / height
    w, h = width, height
    if in_ratio < ratio[0]:
        h = round(w / ratio[0])
    elif in_ratio > ratio[1]:
        w = round(h * ratio[1])
    w = min(max(w, 1), width)
    h = min(max(h, 1), height)
    return Box((width - w) // 2, (height - h) // 2, w, h)


def _draw_ops(recipe, random):
    """timm's RandAugment choice and AugmentOp draws (SAMPLER.md 6)."""
    if not recipe.ops or recipe.layers <= 0:
        return ()
    chosen = [recipe.ops[random.integer(0, len(recipe.ops) - 1)] for _ in range(recipe.layers)]
    applied = []
    for op in chosen:
        if not random.uniform() < recipe.probability:
            continue
        magnitude = recipe.magnitude
        if recipe.magnitude_std > 0:
            if math.isinf(recipe.magnitude_std):
                magnitude = random.uniform(0, recipe.magnitude)
            else:
                magnitude = random.gauss(recipe.magnitude, recipe.magnitude_std)
        magnitude = max(0.0, min(magnitude, 10.0))
        hundredths = int(min(1000, max(0, round(magnitude * 100))))
        negate = random.uniform() > 0.5 if op in SIGNED_OPS else False
        applied.append(Op(op, hundredths, negate))
        if len(applied) == 3:
            break
    return tuple(applied)


def _draw_erase(recipe, out_w, out_h, random):
    """timm's RandomErasing box (SAMPLER.md 7): (Box, noise seed) or None."""
    if not random.uniform() < recipe.probability:
        return None
    area = float(out_w * out_h)
    log_aspect = (math.log(recipe.aspect[0]), math.log(recipe.aspect[1]))
    for _ in range(recipe.attempts):
        target_area = random.uniform(recipe.area[0], recipe.area[1]) * area
        aspect = math.exp(random.uniform(log_aspect[0], log_aspect[1]))
        h = round(math.sqrt(target_area * aspect))
        w = round(math.sqrt(target_area / aspect))
        if not (w < out_w and h < out_h):
            continue
        top = random.integer(0, out_h - h)
        left = random.integer(0, out_w - w)
        if w < 1 or h < 1:
            return None
        return Box(left, top, w, h), random.next() >> 32
    return None


def _draw_mix(recipe, sample_count, out_w, out_h, random):
    """timm's Mixup per sample (SAMPLER.md 8): (mode, lambda code, partner position, box) or None."""
    if sample_count <= 0 or not random.uniform() < recipe.probability:
        return None
    if recipe.mixup_alpha > 0 and recipe.cutmix_alpha > 0:
        cutmix = random.uniform() < recipe.switch_probability
        alpha = recipe.cutmix_alpha if cutmix else recipe.mixup_alpha
    elif recipe.mixup_alpha > 0:
        cutmix, alpha = False, recipe.mixup_alpha
    elif recipe.cutmix_alpha > 0:
        cutmix, alpha = True, recipe.cutmix_alpha
    else:
        return None
    lam = random.beta(alpha, alpha)
    partner = random.integer(0, sample_count - 1)
    box = None
    if cutmix:
        cut = math.sqrt(1 - lam)
        cut_h, cut_w = int(out_h * cut), int(out_w * cut)
        cy = random.integer(0, out_h - 1)
        cx = random.integer(0, out_w - 1)
        yl, yh = min(max(cy - cut_h // 2, 0), out_h), min(max(cy + cut_h // 2, 0), out_h)
        xl, xh = min(max(cx - cut_w // 2, 0), out_w), min(max(cx + cut_w // 2, 0), out_w)
        if not (yh > yl and xh > xl):
            return None
        box = Box(xl, yl, xh - xl, yh - yl)
        lam = 1 - ((yh - yl) * (xh - xl)) / (out_w * out_h)
    code = int(min(65535, max(0, _round_half_away(lam * 65535))))
    return (MIX_CUTMIX if cutmix else MIX_MIXUP), code, partner, box


class AugmentationSampler:
    """Draws Params for (epoch, sample id) from a run seed (SAMPLER.md 3).

    output_size is (height, width), as in shard headers."""

    def __init__(self, run_seed, output_size, recipe=None):
        height, width = (int(v) for v in output_size)
        if not (1 <= width <= 65535 and 1 <= height <= 65535):
            raise ValueError(f"output size {width}x{height} must be 1..65535 on each side")
        self.run_seed = int(run_seed) & MASK64
        self.recipe = recipe if recipe is not None else Recipe()
        self.output_size = (height, width)

    def _random(self, stream, epoch, sample):
        return SampleRandom(self.run_seed, int(epoch), int(sample), stream)

    def view(self, epoch, sample, source_width, source_height):
        """One sample's view: crop, flip, RandAugment ops, erase (SAMPLER.md 4-7)."""
        if not (1 <= source_width <= 65535 and 1 <= source_height <= 65535):
            raise ValueError(f"sample {sample}: source size {source_width}x{source_height} must be "
                             "1..65535 on each side")
        r = self.recipe
        crop = _draw_crop(source_width, source_height, r.crop_scale, r.crop_ratio,
                          self._random(STREAM_CROP, epoch, sample))
        flip = self._random(STREAM_FLIP, epoch, sample).uniform() < r.horizontal_flip_probability
        ops = ()
        if r.rand_augment is not None:
            ops = _draw_ops(r.rand_augment, self._random(STREAM_RANDAUGMENT, epoch, sample))
        erase, seed = None, 0
        if r.erasing is not None:
            drawn = _draw_erase(r.erasing, self.output_size[1], self.output_size[0],
                                self._random(STREAM_ERASE, epoch, sample))
            if drawn is not None:
                erase, seed = drawn
        return View(source_width=source_width, source_height=source_height, crop=crop, flip=flip,
                    ops=ops, erase=erase, erase_seed=seed)

    def parameters(self, epoch, sample, source_size, sample_count=0, partner_size=None, partners=None):
        """One sample's Params. source_size is (width, height); with a mix recipe the partner is drawn by
        position from the pool (SAMPLER.md 8): `partners`, the pool's sample ids in ascending order (a teacher
        pass passes its training ids, so that a held-out image is never mixed in, as the Swift pass does), or
        0..sample_count-1 without it; partner_size(partner id) -> (width, height) gives its size."""
        view = self.view(epoch, sample, *source_size)
        if self.recipe.mix is None:
            return Params(view=view)
        pool = len(partners) if partners is not None else sample_count
        drawn = _draw_mix(self.recipe.mix, pool, self.output_size[1], self.output_size[0],
                          self._random(STREAM_MIX, epoch, sample))
        if drawn is None:
            return Params(view=view)
        mode, code, position, box = drawn
        partner = int(partners[position]) if partners is not None else position
        partner_view = self.view(epoch, partner, *partner_size(partner))
        return Params(view=view, mix=Mix(mode=mode, lam_q=code, partner_id=partner,
                                         partner_view=partner_view, box=box))
