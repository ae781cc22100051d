"""Write random shards, read them back: every record, lookup and dense row must match."""

import math

import numpy as np
import pytest

from tinyshard import format as F
from tinyshard.augment import Box, Mix, Op, Params, View, encode_params
from tinyshard.errors import ShardError
from tinyshard.reader import ShardReader
from tinyshard.verify import verify_shard
from tinyshard.writer import ShardWriter

from conftest import random_probabilities


def simple_params(rng, output_size):
    h, w = output_size
    view = View(500, 400, Box(int(rng.integers(0, 100)), 10, 300, 200), flip=bool(rng.integers(2)),
                ops=(Op(int(rng.integers(15)), int(rng.integers(1001))),))
    return encode_params(Params(view, Mix(1, 40000, 3, view) if rng.integers(2) else None),
                         output_size)


def random_shard_spec(rng):
    k = int(rng.integers(1, 101))
    classes = int(np.clip(round(math.exp(rng.uniform(math.log(k), math.log(1 << 20)))), k,
                          1 << 20))
    return dict(classes=classes, k=k, value_kind=str(rng.choice(["probability", "logit"])),
                sorted=bool(rng.integers(2)),
                augmentation_kind=str(rng.choice(["none", "seed", "params"])),
                records_per_block=int(rng.integers(1, 40)), epoch=int(rng.integers(5)),
                rank=int(rng.integers(3)), temperature=float(rng.choice([1.0, 2.5])))


def random_record(rng, spec, output_size):
    k, classes = spec["k"], spec["classes"]
    indices = rng.choice(classes, k, replace=False)
    if spec["value_kind"] == "probability":
        values = random_probabilities(rng, k, spec["sorted"])
    else:
        values = rng.normal(0, 5, k)
        values = -np.sort(-values) if spec["sorted"] else values
    aug = {"none": b"", "seed": int(rng.integers(-2**31, 2**31)).to_bytes(4, "little", signed=True),
           "params": None}[spec["augmentation_kind"]]
    if aug is None:
        aug = simple_params(rng, output_size)
    return indices, values, aug


def expected_dense(classes, indices, values):
    row = np.zeros(classes, np.float32)
    v = values.astype(np.float64)
    if len(indices) < classes:
        row[:] = np.float32(max(0.0, 1.0 - math.fsum(v)) / (classes - len(indices)))
    row[indices] = values.astype(np.float32)
    return row


@pytest.mark.parametrize("seed", range(24))
def test_random_round_trip(tmp_path, seed):
    rng = np.random.default_rng(seed)
    spec = random_shard_spec(rng)
    output_size = (224, 224)
    n = int(rng.integers(0, 120))
    ids = rng.choice(1 << 32, n, replace=False)
    path = str(tmp_path / "r.tshard")
    written = []
    with ShardWriter(path, output_size=output_size if spec["augmentation_kind"] == "params"
                     else None, provenance={"teacher": "t"}, **spec) as writer:
        for sample_id in ids.tolist():
            indices, values, aug = random_record(rng, spec, output_size)
            writer.append(sample_id, indices, values, aug)
            written.append((sample_id, aug, indices, np.asarray(values).astype(np.float16)))
    assert verify_shard(path) == []
    with ShardReader(path) as reader:
        assert len(reader) == n
        assert reader.layout.blocks == -(-n // spec["records_per_block"])
        assert reader.header.classes == spec["classes"] and reader.header.k == spec["k"]
        for ordinal in rng.permutation(n).tolist():
            sample_id, aug, indices, values = written[ordinal]
            record = reader.record(ordinal)
            assert record.sample_id == sample_id and record.aug == aug
            assert record.indices.tolist() == indices.tolist()
            assert record.values.view(np.uint16).tolist() == values.view(np.uint16).tolist()
            assert reader.find(sample_id) == ordinal
            if spec["value_kind"] == "probability":
                assert (reader.dense_row(ordinal).view(np.uint32)
                        == expected_dense(spec["classes"], indices, values).view(np.uint32)).all()
        assert [r.sample_id for r in reader] == ids.tolist()
        absent = next(i for i in range(n + 1) if i not in set(ids.tolist()))
        assert reader.find(absent) is None


def test_largest_k_and_classes(tmp_path):
    rng = np.random.default_rng(1)
    path = str(tmp_path / "big.tshard")
    classes, k = 1 << 24, 256
    rows = []
    with ShardWriter(path, classes, k, records_per_block=2) as writer:
        for i in range(5):
            indices = rng.choice(classes, k, replace=False)
            indices[0] = classes - 1 if i == 0 else indices[0]
            values = random_probabilities(rng, k)
            writer.append(i, indices, values)
            rows.append(indices)
    with ShardReader(path) as reader:
        assert reader.header.index_width == 3 and reader.header.order_bytes == 211
        for i in range(5):
            assert reader.record(i).indices.tolist() == rows[i].tolist()
    assert verify_shard(path) == []


def test_k_equals_c_has_no_residual(tmp_path):
    path = str(tmp_path / "kc.tshard")
    with ShardWriter(path, 4, 4) as writer:
        writer.append(0, [3, 1, 0, 2], [0.5, 0.25, 0.125, 0.0625])
    with ShardReader(path) as reader:
        assert reader.dense([0]).tolist() == [[0.125, 0.25, 0.0625, 0.5]]


def test_single_class(tmp_path):
    path = str(tmp_path / "one.tshard")
    with ShardWriter(path, 1, 1) as writer:
        writer.append(7, [0], [1.0])
    with ShardReader(path) as reader:
        assert reader.record(0).values.tolist() == [1.0]
        assert reader.header.order_bytes == 0


def test_empty_shard(tmp_path):
    path = str(tmp_path / "empty.tshard")
    ShardWriter(path, 10, 2).close()
    with ShardReader(path) as reader:
        assert len(reader) == 0 and list(reader) == [] and reader.find(0) is None
        assert reader.dense([]).shape == (0, 10)
    assert verify_shard(path) == []


def test_residual_clamped_at_zero(tmp_path):
    path = str(tmp_path / "clamp.tshard")
    values = [0.5 + 2 ** -11, 0.5]                      # sums above 1, within the bound
    assert 1 < sum(values) <= F.probability_sum_bound(2)
    with ShardWriter(path, 10, 2) as writer:
        writer.append(0, [0, 1], values)
    with ShardReader(path) as reader:
        assert reader.dense_row(0).tolist() == values + [0.0] * 8


def test_logit_shard_has_no_dense_form(tmp_path):
    path = str(tmp_path / "logit.tshard")
    with ShardWriter(path, 10, 2, value_kind="logit") as writer:
        writer.append(0, [0, 1], [12.5, -3.0])
    with ShardReader(path) as reader:
        with pytest.raises(ShardError) as info:
            reader.dense([0])
        assert info.value.code == "not-probability"


# ---- writer checks ---------------------------------------------------------------------------


@pytest.mark.parametrize("indices,values,code", [
    ([1, 2, 1000], [0.5, 0.2, 0.1], "index-out-of-range"),
    ([1, 2, -1], [0.5, 0.2, 0.1], "index-out-of-range"),
    ([1, 2, 1], [0.5, 0.2, 0.1], "duplicate-index"),
    ([1, 2, 3], [0.5, float("nan"), 0.1], "bad-value"),
    ([1, 2, 3], [0.5, 0.2, -0.1], "bad-value"),
    ([1, 2, 3], [1.5, 0.2, 0.1], "bad-value"),
    ([1, 2, 3], [0.5, 0.3, 0.3], "bad-value"),               # sum 1.1
    ([1, 2, 3], [0.2, 0.5, 0.1], "not-sorted"),
])
def test_writer_rejects_invalid_records(tmp_path, indices, values, code):
    with ShardWriter(str(tmp_path / "w.tshard"), 1000, 3) as writer:
        with pytest.raises(ShardError) as info:
            writer.append(0, indices, values)
        assert info.value.code == code


def test_writer_sum_bound_is_inclusive(tmp_path):
    k = 2
    bound = F.probability_sum_bound(k)            # 1 + 2^-11 + 2^-24: 0.5 + (0.5 + 2^-11) fits
    above = np.float16(0.5) + np.nextafter(np.float16(0.5 + 2 ** -11), np.float16(1))
    assert float(np.float16(0.5)) + float(np.float16(0.5 + 2 ** -11)) <= bound < float(above)
    with ShardWriter(str(tmp_path / "b.tshard"), 10, k, sorted=False) as writer:
        writer.append(0, [0, 1], [0.5, 0.5 + 2 ** -11])
        with pytest.raises(ShardError):
            writer.append(1, [0, 1], [0.5, above])


def test_writer_rejects_shapes_and_duplicates(tmp_path):
    with ShardWriter(str(tmp_path / "w.tshard"), 10, 2, augmentation_kind="seed") as writer:
        with pytest.raises(ValueError):
            writer.append(0, [1, 2, 3], [0.3, 0.2, 0.1])     # wrong K
        with pytest.raises(ValueError):
            writer.append(0, [1, 2], [0.3, 0.2], b"")         # wrong code length
        with pytest.raises(ValueError):
            writer.append(2 ** 32, [1, 2], [0.3, 0.2], bytes(4))
        writer.append(5, [1, 2], [0.3, 0.2], bytes(4))
        with pytest.raises(ShardError) as info:
            writer.append(5, [3, 4], [0.3, 0.2], bytes(4))
        assert info.value.code == "duplicate-sample"


@pytest.mark.parametrize("fields", [dict(classes=0, k=1), dict(classes=10, k=11),
                                    dict(classes=1000, k=257), dict(classes=10, k=2, temperature=0),
                                    dict(classes=10, k=2, augmentation_kind="params"),
                                    dict(classes=10, k=2, records_per_block=65537),
                                    dict(classes=10, k=2, value_kind="prob")])
def test_writer_rejects_bad_header(tmp_path, fields):
    with pytest.raises(ShardError) as info:
        ShardWriter(str(tmp_path / "h.tshard"), **fields)
    assert info.value.code == "bad-header"


def test_abandoned_writer_leaves_nothing(tmp_path):
    path = tmp_path / "a.tshard"
    with pytest.raises(RuntimeError):
        with ShardWriter(str(path), 10, 2) as writer:
            writer.append(0, [1, 2], [0.5, 0.25])
            raise RuntimeError("teacher crashed")
    assert list(tmp_path.iterdir()) == []


def test_unfinished_file_is_incomplete(tmp_path):
    path = tmp_path / "u.tshard"
    writer = ShardWriter(str(path), 10, 2, records_per_block=1)
    writer.append(0, [1, 2], [0.5, 0.25])
    writer._file.flush()
    assert not path.exists()                       # the final name appears only at commit
    with pytest.raises(ShardError) as info:
        ShardReader(writer._temp_path)
    assert info.value.code == "incomplete"
    writer.close()
    assert path.exists() and len(ShardReader(str(path))) == 1


def test_single_record_reads_match_whole_block_reads(tmp_path):
    """Random reads decode single records until a block is worth decoding whole; both paths
    must give the same records."""
    rng = np.random.default_rng(7)
    path = str(tmp_path / "big-block.tshard")
    rows = []
    with ShardWriter(path, 5000, 12, records_per_block=512, augmentation_kind="seed") as writer:
        for i in range(400):
            indices, values = rng.choice(5000, 12, replace=False), random_probabilities(rng, 12)
            writer.append(i * 2, indices, values, i.to_bytes(4, "little"))
            rows.append((indices.tolist(), values.astype(np.float16).tolist()))
    with ShardReader(path) as reader:
        for ordinal in rng.permutation(400).tolist():
            record = reader.record(ordinal)
            assert (record.indices.tolist(), record.values.tolist()) == rows[ordinal]
            assert record.aug == ordinal.to_bytes(4, "little") and record.sample_id == 2 * ordinal
        assert 0 in reader._decoded.items           # by now the block was decoded whole


def test_only_the_bad_record_is_refused(tmp_path):
    from conftest import assemble, block_of, header
    h = header(k=2, records_per_block=400)
    values = [[0.5, 0.25]] * 300
    values[150] = [0.25, 0.5]                        # not sorted
    data = assemble(h, [block_of(h, 0, range(300), [[1, 2]] * 300, values)], 300)
    path = tmp_path / "one-bad.tshard"
    path.write_bytes(data)
    for warm in (False, True):
        with ShardReader(str(path)) as reader:
            if warm:
                reader.record(0)
                reader._block(0)                     # force the whole-block path
            assert reader.record(149).values.tolist() == [0.5, 0.25]
            with pytest.raises(ShardError) as info:
                reader.record(150)
            assert (info.value.code, info.value.record, info.value.block) == ("not-sorted", 150, 0)
