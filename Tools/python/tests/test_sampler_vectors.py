"""Spec/vectors/sampling/augmentation-sampler.json (Spec/SAMPLER.md), written by the Swift sampler: the
Python sampler draws every code in it, its random streams give every primitive draw bit for bit, and the
recipes (presets and files) have the canonical JSON and SHA-256 the vector names.

Recipe files are read here with the rules of SAMPLER.md 1 (tinyshard.sampler has no JSON reader); a
partner pool other than 0..n-1 goes through `parameters(..., partners=pool)`."""

import dataclasses
import hashlib
import json
import math
import os
import struct
import types

import pytest

from tinyshard import sampler as S
from tinyshard.augment import OP_NAMES, decode_params, encode_params

VECTOR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "Spec", "vectors",
                                      "sampling", "augmentation-sampler.json"))


def load():
    with open(VECTOR, encoding="utf-8") as f:
        return json.load(f)


DATA = load()

PRESETS = {
    "tinyvit": S.Recipe.tinyvit(),
    "tinyvit-mix": S.Recipe.tinyvit_mix(),
    # SAMPLER.md 1.2 (the Python module names only the two TinyViT presets).
    "digits": S.Recipe(crop_scale=(0.7, 1.0), horizontal_flip_probability=0.0, rand_augment=None, erasing=None),
}


def recipe_from_json(text):
    """A recipe file (SAMPLER.md 1.1): missing keys keep TinyViT's values, null turns a stage off."""
    doc = json.loads(text)
    r = S.Recipe()
    crop = doc.get("crop", {})
    changes = {}
    if "scale" in crop:
        changes["crop_scale"] = tuple(float(v) for v in crop["scale"])
    if "ratio" in crop:
        changes["crop_ratio"] = tuple(float(v) for v in crop["ratio"])
    if "horizontal_flip" in doc:
        changes["horizontal_flip_probability"] = float(doc["horizontal_flip"])
    if "rand_augment" in doc:
        ra = doc["rand_augment"]
        if ra is None:
            changes["rand_augment"] = None
        else:
            fields = {"layers": int(ra.get("layers", 2))}
            for key, name in (("magnitude", "magnitude"), ("magnitude_std", "magnitude_std"),
                              ("probability", "probability")):
                if key in ra:
                    fields[name] = float(ra[key])
            if "ops" in ra:
                fields["ops"] = tuple(OP_NAMES.index(name) for name in ra["ops"])
            changes["rand_augment"] = S.RandAugmentRecipe(**fields)
    if "erasing" in doc:
        e = doc["erasing"]
        if e is None:
            changes["erasing"] = None
        else:
            fields = {}
            if "probability" in e:
                fields["probability"] = float(e["probability"])
            for key in ("area", "aspect"):
                if key in e:
                    fields[key] = tuple(float(v) for v in e[key])
            if "attempts" in e:
                fields["attempts"] = int(e["attempts"])
            changes["erasing"] = S.ErasingRecipe(**fields)
    if "mix" in doc:
        m = doc["mix"]
        changes["mix"] = None if m is None else S.MixRecipe(**{k: float(v) for k, v in m.items()})
    return dataclasses.replace(r, **changes)


def canonical_json(r):
    """SAMPLER.md 1.3: sorted keys, no spaces, every number a float except the two counts."""
    def pair(t):
        return [float(t[0]), float(t[1])]
    doc = {
        "crop": {"ratio": pair(r.crop_ratio), "scale": pair(r.crop_scale)},
        "horizontal_flip": float(r.horizontal_flip_probability),
        "erasing": None if r.erasing is None else {
            "area": pair(r.erasing.area), "aspect": pair(r.erasing.aspect),
            "attempts": int(r.erasing.attempts), "probability": float(r.erasing.probability)},
        "mix": None if r.mix is None else {
            "cutmix_alpha": float(r.mix.cutmix_alpha), "mixup_alpha": float(r.mix.mixup_alpha),
            "probability": float(r.mix.probability), "switch_probability": float(r.mix.switch_probability)},
        "rand_augment": None if r.rand_augment is None else {
            "layers": int(r.rand_augment.layers), "magnitude": float(r.rand_augment.magnitude),
            "magnitude_std": float(r.rand_augment.magnitude_std),
            "ops": [OP_NAMES[i] for i in r.rand_augment.ops],
            "probability": float(r.rand_augment.probability)},
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def recipe_of(entry):
    return PRESETS[entry["name"]] if entry["input"] is None else recipe_from_json(entry["input"])


def draw_code(recipe, case):
    """The case's 80-byte code from the Python sampler."""
    height, width = case["output_height"], case["output_width"]
    epoch, sample = case["epoch"], case["sample"]
    sampler = S.AugmentationSampler(case["seed"], (height, width), recipe)
    pool = [p[0] for p in case["partners"]]
    sizes = {p[0]: (p[1], p[2]) for p in case["partners"]}
    source = (case["source_width"], case["source_height"])
    if pool == list(range(len(pool))):
        params = sampler.parameters(epoch, sample, source, len(pool), lambda i: sizes[i])
    else:
        params = sampler.parameters(epoch, sample, source, partner_size=lambda i: sizes[i], partners=pool)
    return encode_params(params, (height, width)).hex()


def readable(code, height, width):
    """The vector's `params` form of a code."""
    params = decode_params(bytes.fromhex(code), (height, width))

    def box(b):
        return None if b is None else [b.x, b.y, b.w, b.h]

    def view(v):
        return {"source": [v.source_width, v.source_height], "crop": box(v.crop), "flip": v.flip,
                "ops": [{"name": OP_NAMES[o.op_id], "id": o.op_id, "magnitude_hundredths": o.magnitude,
                         "negate": o.negate} for o in v.ops],
                "erase": None if v.erase is None else {"box": box(v.erase), "noise_seed": v.erase_seed}}

    mix = params.mix
    return {"view": view(params.view), "mix": None if mix is None else {
        "mode": {1: "mixup", 2: "cutmix"}[mix.mode], "lambda_q": mix.lam_q, "partner": mix.partner_id,
        "box": box(mix.box), "partner_view": view(mix.partner_view)}}


def bits(x):
    return struct.pack(">d", x).hex()


def run_draws(entry):
    """Replays a `random` entry on the Python stream; returns the mismatches."""
    random = S.SampleRandom(entry["seed"], entry["epoch"], entry["sample"], entry["stream"])
    problems = []
    if f"{random.key:016x}" != entry["key"]:
        problems.append(f"key {random.key:016x} != {entry['key']}")
    for i, d in enumerate(entry["draws"]):
        args = d.get("args") or []
        kind = d["kind"]
        if kind == "next":
            got, want = f"{random.next():016x}", d["out"]
        elif kind == "integer":
            got, want = random.integer(d["lower"], d["upper"]), d["int"]
        else:
            if kind == "uniform":
                x = random.uniform(*args) if args else random.uniform()
            elif kind == "gauss":
                x = random.gauss(*args)
            elif kind == "gamma":
                x = random.gamma(*args)
            else:
                x = random.beta(*args)
            got, want = bits(x), d["bits"]
            assert struct.unpack(">d", bytes.fromhex(want))[0] == d["value"], f"draw {i}: value and bits differ"
        if got != want or random.counter != d["counter"]:
            problems.append(f"draw {i} {kind}{args}: got {got} after {random.counter} draws, "
                            f"want {want} after {d['counter']}")
    return problems


# --------------------------------------------------------------------------------------------


def test_the_vector_is_there_and_small():
    assert os.path.getsize(VECTOR) < 200_000
    assert [r["name"] for r in DATA["recipes"]][:3] == ["tinyvit", "tinyvit-mix", "digits"]
    assert sum(len(r["cases"]) for r in DATA["recipes"]) >= 60
    assert len(DATA["random"]) >= 2


@pytest.mark.parametrize("index", range(len(DATA["random"])))
def test_random_streams_draw_for_draw(index):
    assert run_draws(DATA["random"][index]) == []


@pytest.mark.parametrize("name", [r["name"] for r in DATA["recipes"]])
def test_recipe_canonical_json_and_hash(name):
    entry = next(r for r in DATA["recipes"] if r["name"] == name)
    text = canonical_json(recipe_of(entry))
    assert text == entry["canonical_json"]
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == entry["sha256"]
    # The canonical JSON is itself a recipe file for the same recipe.
    assert recipe_from_json(text) == recipe_of(entry)


@pytest.mark.parametrize("name", [r["name"] for r in DATA["recipes"]])
def test_python_sampler_draws_every_code(name):
    entry = next(r for r in DATA["recipes"] if r["name"] == name)
    recipe = recipe_of(entry)
    wrong = []
    for case in entry["cases"]:
        where = f"seed {case['seed']} epoch {case['epoch']} sample {case['sample']}"
        code = draw_code(recipe, case)
        if code != case["code"]:
            wrong.append(f"{where}: {code} != {case['code']}")
        assert readable(case["code"], case["output_height"], case["output_width"]) == case["params"], where
    assert wrong == []


def test_codes_do_not_hang_on_the_last_bit_of_libm(monkeypatch):
    """SAMPLER.md 10: with correctly rounded exp, log, log1p, cos and pow (mpmath at 200 bits) in place of
    the C library's, the vector is the same: every code, integer, draw count and float64 result."""
    mpmath = pytest.importorskip("mpmath")

    def rounded(f):
        def g(*xs):
            with mpmath.workprec(200):
                return float(f(*(mpmath.mpf(x) for x in xs)))
        return g

    class CorrectlyRoundedPow(float):
        def __pow__(self, e):
            return rounded(mpmath.power)(float(self), e)

    shim = types.SimpleNamespace(exp=rounded(mpmath.exp), log=rounded(mpmath.log), log1p=rounded(mpmath.log1p),
                                 cos=rounded(mpmath.cos), sqrt=math.sqrt, floor=math.floor, isinf=math.isinf,
                                 pi=math.pi)
    monkeypatch.setattr(S, "math", shim)
    uniform = S.SampleRandom.uniform

    def uniform_with_pow(self, a=None, b=None):
        u = uniform(self, a, b)
        return CorrectlyRoundedPow(u) if a is None else u      # gamma's boost: uniform() ** (1 / shape)

    monkeypatch.setattr(S.SampleRandom, "uniform", uniform_with_pow)
    for entry in DATA["random"]:
        assert run_draws(entry) == []
    for entry in DATA["recipes"]:
        recipe = recipe_of(entry)
        for case in entry["cases"]:
            assert draw_code(recipe, case) == case["code"], (entry["name"], case["sample"])
