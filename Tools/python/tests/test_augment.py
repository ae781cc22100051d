"""Augmentation codes (FORMAT.md section 4): params v1 round trips and rejections, seeds."""

import struct

import numpy as np
import pytest

from tinyshard.augment import (MIX_CUTMIX, MIX_MIXUP, Box, Mix, Op, Params, View, check_params_code,
                               decode_params, decode_seed, encode_params, encode_seed, params_problems)
from tinyshard.errors import ShardError

OUT = (224, 256)        # height, width


def random_box(rng, width, height):
    w, h = int(rng.integers(1, width + 1)), int(rng.integers(1, height + 1))
    return Box(int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h)


def random_view(rng):
    sw, sh = int(rng.integers(1, 65536)), int(rng.integers(1, 65536))
    ops = tuple(Op(int(rng.integers(15)), int(rng.integers(1001)), bool(rng.integers(2)))
                for _ in range(int(rng.integers(4))))
    erase = random_box(rng, OUT[1], OUT[0]) if rng.integers(2) else None
    return View(sw, sh, random_box(rng, sw, sh), flip=bool(rng.integers(2)), ops=ops, erase=erase,
                erase_seed=int(rng.integers(2**32)) if erase else 0)


def random_params(rng):
    mode = int(rng.integers(3))
    mix = None
    if mode:
        mix = Mix(mode, int(rng.integers(65536)), int(rng.integers(2**32)), random_view(rng),
                  box=random_box(rng, OUT[1], OUT[0]) if mode == MIX_CUTMIX else None)
    return Params(random_view(rng), mix)


@pytest.mark.parametrize("seed", range(200))
def test_params_round_trip(seed):
    rng = np.random.default_rng(seed)
    params = random_params(rng)
    code = encode_params(params, OUT)
    assert len(code) == 80
    assert decode_params(code, OUT) == params
    assert encode_params(decode_params(code, OUT), OUT) == code


def valid_code():
    view = View(500, 400, Box(10, 20, 300, 200), flip=True, ops=(Op(3, 250, True), Op(11, 1000)),
                erase=Box(5, 6, 7, 8), erase_seed=99)
    return bytearray(encode_params(Params(view, Mix(MIX_CUTMIX, 1000, 4, view,
                                                    Box(0, 0, 256, 224))), OUT))


def put16(code, offset, value):
    struct.pack_into("<H", code, offset, value)


INVALID = {
    "source width 0": lambda c: put16(c, 0, 0),
    "crop past source": lambda c: put16(c, 4, 201),
    "crop height 0": lambda c: put16(c, 10, 0),
    "flag bit 4": lambda c: c.__setitem__(12, c[12] | 16),
    "reserved byte": lambda c: c.__setitem__(13, 1),
    "op id 15": lambda c: put16(c, 14, 15),
    "magnitude 1001": lambda c: put16(c, 14, 1001 << 6),
    "slot past count": lambda c: put16(c, 18, 1),
    "erase outside output": lambda c: put16(c, 20, 250),
    "erase w 0": lambda c: put16(c, 24, 0),
    "seed without erase": lambda c: c.__setitem__(12, c[12] & ~2),
    "mix mode 3": lambda c: c.__setitem__(32, 3),
    "mix reserved": lambda c: c.__setitem__(33, 1),
    "mode 0 with partner": lambda c: c.__setitem__(32, 0),
    "mixup with box": lambda c: c.__setitem__(32, MIX_MIXUP),
    "cutmix box outside": lambda c: put16(c, 44, 257),
    "partner crop past source": lambda c: put16(c, 48 + 8, 60000),
    "partner op slot": lambda c: put16(c, 48 + 18, 1),
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_params_rejected(name):
    code = valid_code()
    decode_params(bytes(code), OUT)
    INVALID[name](code)
    with pytest.raises(ShardError) as info:
        decode_params(bytes(code), OUT)
    assert info.value.code == "bad-augmentation"
    assert params_problems(np.frombuffer(bytes(code), np.uint8).reshape(1, 80), OUT)


def test_one_code_and_many_codes_break_the_same_first_rule():
    """check_params_code (Python ints) and params_problems (numpy columns) evaluate the same rules:
    on valid codes with a few bytes overwritten (small values and all-ones, where the rules' edges
    are), both give the same first message or both accept."""
    rng = np.random.default_rng(5)
    codes = []
    for _ in range(3000):
        code = bytearray(encode_params(random_params(rng), OUT))
        for offset in rng.integers(0, 80, int(rng.integers(1, 4))):
            code[offset] = int(rng.choice([0, 1, 2, 3, 4, 15, 16, 255, int(rng.integers(256))]))
        codes.append(bytes(code))
    problems = dict(params_problems(np.frombuffer(b"".join(codes), np.uint8).reshape(-1, 80), OUT))
    assert 500 < len(problems) < 2900
    for row, code in enumerate(codes):
        try:
            check_params_code(code, OUT)
            message = None
        except ShardError as error:
            message = error.message
        assert message == problems.get(row), (row, code.hex())


def test_encoder_rejects_what_it_cannot_represent():
    view = View(10, 10, Box(0, 0, 10, 10))
    for bad in (Params(View(10, 10, Box(0, 0, 11, 10))), Params(View(70000, 10, Box(0, 0, 1, 1))),
                Params(View(10, 10, Box(0, 0, 1, 1), ops=(Op(0, 1),) * 4)),
                Params(View(10, 10, Box(0, 0, 1, 1), ops=(Op(15, 1),))),
                Params(view, Mix(MIX_CUTMIX, 5, 1, view, box=None))):
        with pytest.raises(ShardError) as info:
            encode_params(bad, OUT)
        assert info.value.code == "bad-augmentation"


def test_all_zero_partner_is_only_valid_without_mix():
    code = bytearray(encode_params(Params(View(10, 10, Box(0, 0, 10, 10))), OUT))
    assert code[32:] == bytes(48)
    code[32] = MIX_MIXUP
    with pytest.raises(ShardError):
        decode_params(bytes(code), OUT)


def test_seed_codes():
    for seed in (0, 1, -1, 2**31 - 1, -2**31):
        assert decode_seed(encode_seed(seed)) == seed
    assert encode_seed(4) == b"\x04\0\0\0"
    with pytest.raises(ShardError):
        encode_seed(2**31)
