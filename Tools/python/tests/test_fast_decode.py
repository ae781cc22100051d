"""The vectorised order-number decoder (codec.order_digits / ranks_of_digits) against the one-integer-
at-a-time decoder of FORMAT.md 3.5, and decoding selected rows of blocks against decoding them whole."""

import math

import numpy as np
import pytest

from tinyshard import format as F
from tinyshard.codec import (VECTOR_MIN_ROWS, _ranks_of, decode_block, decode_order, decode_records,
                             encode_order, lehmer_digits, record_bytes, RecordBytes)
from tinyshard.layout import read_block
from tinyshard.reader import ShardReader

from conftest import block_of, header


def permutations(k, count, seed):
    rng = np.random.default_rng(seed)
    fixed = [np.arange(k), np.arange(k)[::-1], np.roll(np.arange(k), 1), np.roll(np.arange(k), -1)]
    return np.array(fixed + [rng.permutation(k) for _ in range(count - len(fixed))])


@pytest.mark.parametrize("k", [2, 3, 5, 9, 12, 13, 19, 20, 21, 22, 34, 100, 170, 256])
def test_vectorised_order_decode_equals_the_spec_decoder(k):
    perms = permutations(k, 3 * VECTOR_MIN_ROWS + 5, k)
    encoded = encode_order(lehmer_digits(perms))
    numbers = [int.from_bytes(row.tobytes(), "little") for row in encoded]
    assert numbers[0] == 0 and numbers[1] == math.factorial(k) - 1
    ranks, bad = decode_order(encoded, len(perms), k)
    assert not bad.any()
    assert (np.asarray(ranks, dtype=np.int64) == perms).all()
    assert [list(r) for r in np.asarray(ranks).tolist()] == [_ranks_of(x, k) for x in numbers]


@pytest.mark.parametrize("k", [20, 21, 100, 256])
def test_vectorised_decode_marks_numbers_at_or_above_k_factorial(k):
    length = F.order_bytes(k)
    limit = math.factorial(k)
    values = [limit, limit - 1, 0, (1 << (8 * length)) - 1, limit + 12345] * VECTOR_MIN_ROWS
    data = np.frombuffer(b"".join(v.to_bytes(length, "little") for v in values), np.uint8)
    ranks, bad = decode_order(data, len(values), k)
    assert bad.tolist() == [v >= limit for v in values]
    ranks = np.asarray(ranks, dtype=np.int64)
    assert (ranks[bad] == np.arange(k)).all()               # bad rows: identity order
    assert ranks[1].tolist() == list(range(k))[::-1]        # K! - 1: full reversal


def test_spec_example_through_the_vectorised_path():
    # K = 3, stored indices [7, 2, 5]: X = 4, ranks [2, 0, 1] (FORMAT.md 3.5), as many rows as vectorise.
    data = np.full(VECTOR_MIN_ROWS, 4, np.uint8)
    ranks, bad = decode_order(data, VECTOR_MIN_ROWS, 3)
    assert not bad.any() and (np.asarray(ranks) == [2, 0, 1]).all()


@pytest.mark.parametrize("k,classes", [(100, 21841), (10, 1000), (21, 300)])
def test_selected_rows_decode_like_the_whole_block(k, classes, tmp_path):
    from tinyshard.writer import ShardWriter
    rng = np.random.default_rng(k)
    path = tmp_path / "s.tshard"
    n = 300
    with ShardWriter(path, classes, k, records_per_block=128, augmentation_kind="seed") as writer:
        for i in range(n):
            p = rng.dirichlet(np.full(k + 5, 0.3))[:k]
            writer.append(i * 7, rng.choice(classes, k, replace=False),
                          -np.sort(-p), bytes(rng.integers(0, 256, 4, dtype=np.uint8)))
    reader = ShardReader(path)
    h = reader.header
    whole = [decode_block(h, r.first, r.n, r.sections)
             for r in (read_block(reader._buf, reader.layout, b) for b in range(reader.layout.blocks))]
    picks = [(b, row) for b in range(reader.layout.blocks) for row in range(whole[b].ids.size)
             if rng.random() < 0.3]
    gathered = RecordBytes.empty(h, len(picks))
    for j, (b, row) in enumerate(picks):
        raw = read_block(reader._buf, reader.layout, b)
        gathered.store(j, record_bytes(h, raw.n, raw.sections).take([row]))
    decoded = decode_records(h, 0, gathered)
    blocks = [read_block(reader._buf, reader.layout, b) for b in range(reader.layout.blocks)]
    joined = decode_records(h, 0, RecordBytes.concatenate([record_bytes(h, r.n, r.sections) for r in blocks]))
    assert (joined.indices == np.concatenate([w.indices for w in whole])).all()
    assert decoded.problems == []
    for j, (b, row) in enumerate(picks):
        assert decoded.ids[j] == whole[b].ids[row]
        assert (decoded.aug[j] == whole[b].aug[row]).all()
        assert (decoded.indices[j] == whole[b].indices[row]).all()
        assert (decoded.values[j].view(np.uint16) == whole[b].values[row].view(np.uint16)).all()
        record = reader.record(b * 128 + row)
        assert (record.indices == decoded.indices[j]).all()


def reference_value_problems(h, values):
    """Section 2's value rules on float values (the reader's rules before they were judged on bit patterns)."""
    v = values.astype(np.float64)
    problems = []
    with np.errstate(invalid="ignore"):
        for row in range(len(v)):
            r = v[row]
            if not np.isfinite(r).all():
                problems.append(("bad-value", row))
            elif h.value_kind == "probability" and not ((r >= 0) & (r <= 1)).all():
                problems.append(("bad-value", row))
            elif h.value_kind == "probability" and not r.sum() <= F.probability_sum_bound(h.k):
                problems.append(("bad-value", row))
            elif h.sorted and (r[1:] > r[:-1]).any():
                problems.append(("not-sorted", row))
    return problems


@pytest.mark.parametrize("kind,sorted_", [("probability", True), ("probability", False), ("logit", True),
                                          ("logit", False)])
def test_value_rules_on_bit_patterns_equal_the_float_rules(kind, sorted_):
    from tinyshard.codec import value_checks
    rng = np.random.default_rng(len(kind) + sorted_)
    k = 6
    h = header(k=k, value_kind=kind, sorted=sorted_)
    specials = np.array([0x0000, 0x8000, 0x0001, 0x3C00, 0x3C01, 0xBC00, 0x7C00, 0xFC00, 0x7E00, 0x03FF,
                         0x3800, 0x3400, 0xB400, 0x8001], dtype=np.uint16)
    rows = [np.sort(rng.dirichlet(np.ones(k + 2))[:k])[::-1].astype(np.float16) for _ in range(300)]
    rows += [rng.choice(specials, k).view(np.float16) for _ in range(600)]
    rows += [np.sort(rng.normal(size=k))[::-1].astype(np.float16) for _ in range(100)]
    rows += [np.array([0.5, 0.25, -0.0, 0.0, 0.0, 0.0], np.float16), np.array([0.0, -0.0, 0, 0, 0, 0], np.float16)]
    values = np.stack(rows)
    problems, sums = value_checks(h, values)
    first = {}                                    # a record's first problem: bad-value before not-sorted
    for code, row, _ in sorted(problems, key=lambda p: (p[1], p[0] != "bad-value")):
        first.setdefault(row, code)
    got = [(code, row) for row, code in sorted(first.items())]
    assert got == reference_value_problems(h, values)
    if kind == "probability":
        ok = np.isfinite(values.astype(np.float64)).all(axis=1) & (values >= 0).all(axis=1) & (values <= 1).all(axis=1)
        assert (sums[ok] == values[ok].astype(np.float64).sum(axis=1)).all()
    else:
        assert sums is None
