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
