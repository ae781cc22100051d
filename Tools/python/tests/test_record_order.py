"""tinyshard.record_order against RECORD-ORDER.md read literally (record_order_reference.py) and the cases
of tests/data/record-order.json; the share's properties; one-line errors."""

import json
import os
from collections import Counter

import numpy as np
import pytest

from tinyshard.record_order import RecordOrderError, record_order

from record_order_reference import LAYOUTS, reference_order

CASES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "record-order.json")


def pairs(shards, world, rank, window, seed, epoch):
    ranks, ordinals = record_order(shards, world, rank, window, seed, epoch)
    return [[int(r), int(o)] for r, o in zip(ranks, ordinals)]


def test_vector_cases():
    with open(CASES) as f:
        data = json.load(f)
    assert len(data["cases"]) > 100
    for case in data["cases"]:
        shards = [(s["rank"], s["records"], s["records_per_block"]) for s in case["shards"]]
        for rank, expected in enumerate(case["ranks"]):
            assert pairs(shards, case["world"], rank, case["window"], int(case["seed"]), case["epoch"]) == expected, \
                (case["layout"], case["world"], rank, case["window"], case["seed"], case["epoch"])
    for case in data["errors"]:
        shards = [(s["rank"], s["records"], s["records_per_block"]) for s in case["shards"]]
        with pytest.raises(RecordOrderError):
            record_order(shards, case["world"], case["rank"])


@pytest.mark.parametrize("window", [0, 1, 2, 5, 16])
def test_against_the_literal_reading_on_random_layouts(window):
    rng = np.random.default_rng(window)
    for _ in range(12):
        shards = [(int(r), int(rng.integers(0, 60)), int(rng.integers(1, 9)))
                  for r in rng.permutation(int(rng.integers(1, 5)))]
        total = sum(n for _, n, _ in shards)
        for world in (1, 2, 3, 7):
            if total < world:
                continue
            seed, epoch = int(rng.integers(0, 1 << 63)) * 2 + 1, int(rng.integers(0, 100))
            for rank in range(world):
                assert pairs(shards, world, rank, window, seed, epoch) == \
                    [list(p) for p in reference_order(shards, world, rank, window, seed, epoch)]


@pytest.mark.parametrize("window", [0, 1, 4])
def test_share_properties(window):
    shards = [(0, 1000, 128), (1, 999, 128), (2, 1001, 64)]
    total = 3000
    everything = {(r, o) for r, n, _ in shards for o in range(n)}
    for world in (1, 2, 3, 8, 7):
        got = [pairs(shards, world, rank, window, 1, 2) for rank in range(world)]
        q = -(-total // world)
        assert all(len(g) == q for g in got)                       # equal steps on every rank
        seen = [tuple(p) for g in got for p in g]
        assert set(seen) == everything                             # every record read
        if total % world == 0:
            assert len(seen) == len(set(seen)) == total            # ... exactly once
        else:                    # the wrap: the last ranks read the first positions again, once more each
            extra = world * q - total
            first = sorted((r, o) for r, n, _ in shards for o in range(n))[:extra]
            counts = Counter(seen)
            assert sorted(p for p, c in counts.items() if c > 1) == first and max(counts.values()) == 2
        for g in got:                                              # each rank: a set of whole pieces, each once
            assert len({tuple(p) for p in g}) == q


def test_windows_reorder_and_depend_on_seed_and_epoch():
    shards = [(0, 4096, 128)]
    plain = pairs(shards, 2, 1, 0, 0, 0)
    assert plain == [[0, o] for o in range(2048, 4096)]
    a, b, c = (pairs(shards, 2, 1, 4, s, t) for s, t in ((0, 0), (1, 0), (0, 1)))
    assert sorted(a) == sorted(plain) and a != plain and a != b and a != c
    # A window of w pieces holds the records of w blocks: every run of 4 * 128 outputs spans 4 blocks.
    blocks = [o // 128 for _, o in a]
    assert all(len(set(blocks[v:v + 512])) == 4 for v in range(0, 2048, 512))


@pytest.mark.parametrize("world,rank,message", [
    (0, 0, "world size 0 must be at least 1"),
    (3, 3, "rank 3 is outside [0, 3) for world size 3"),
    (4, -1, "rank -1 is outside [0, 4) for world size 4"),
    (11, 0, "the epoch holds 10 records, fewer than the world size 11"),
])
def test_errors_are_one_line(world, rank, message):
    with pytest.raises(RecordOrderError) as info:
        record_order([(0, 10, 4)], world, rank)
    assert str(info.value) == message and "\n" not in str(info.value)


def test_layouts_cover_the_spec_cases():
    names = " ".join(name for name, _ in LAYOUTS)
    assert "short last block" in names and "empty shard" in names and "wrap inside a block" in names
