"""Spec/vectors (written by the Swift tests) decode in Python exactly as their JSON says, and every
invalid vector fails with exactly its documented error code — the same contract the Swift tests check."""

import glob
import json
import os

import numpy as np
import pytest

from tinyshard import ShardError, ShardReader, verify_shard
from tinyshard.augment import decode_params
from tinyshard.keys import read_keys
from tinyshard.manifest import parse_manifest

VECTORS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "Spec", "vectors"))
CASES = sorted(glob.glob(os.path.join(VECTORS, "*.json")))


def test_vectors_exist():
    assert len(CASES) >= 40, f"expected the spec's test vectors in {VECTORS}"


def load(case):
    with open(case) as f:
        # "-0" (a float16 -0 among the decimal values) must stay a negative zero, not the integer 0.
        spec = json.load(f, parse_int=lambda text: -0.0 if text == "-0" else int(text))
    return spec, os.path.join(VECTORS, spec["file"])


def decode_everything(path):
    """Open, read every record (and its dense row) and build the sample-id table."""
    reader = ShardReader(path)
    for ordinal in range(len(reader)):
        reader.record(ordinal)
        if reader.header.value_kind == "probability":
            reader.dense_row(ordinal)
    if len(reader):
        reader.find(0)
    return reader


def view_json(view):
    return {"source_width": view.source_width, "source_height": view.source_height,
            "crop": [view.crop.x, view.crop.y, view.crop.w, view.crop.h], "flip": view.flip,
            "ops": [{"op": op.op_id, "magnitude_hundredths": op.magnitude, "negate": op.negate} for op in view.ops],
            "erase": None if view.erase is None else
            {"box": [view.erase.x, view.erase.y, view.erase.w, view.erase.h], "noise_seed": view.erase_seed}}


def params_json(params):
    mix = params.mix
    return {"view": view_json(params.view),
            "mix": None if mix is None else
            {"mode": "mixup" if mix.mode == 1 else "cutmix", "lambda_code": mix.lam_q, "partner": mix.partner_id,
             "box": None if mix.box is None else [mix.box.x, mix.box.y, mix.box.w, mix.box.h],
             "partner_view": view_json(mix.partner_view)}}


@pytest.mark.parametrize("case", CASES, ids=[os.path.basename(c) for c in CASES])
def test_vector(case):
    spec, path = load(case)
    if spec["kind"] == "manifest":
        with open(path, "rb") as f:
            data = f.read()
        if spec["valid"]:
            assert len(parse_manifest(data).shards) == spec["count"]
        else:
            with pytest.raises(ShardError) as caught:
                parse_manifest(data)
            assert caught.value.code == spec["error"]
        return

    if spec["kind"] == "key-table":
        if spec["valid"]:
            assert read_keys(path) == spec["keys"] and len(spec["keys"]) == spec["count"]
        else:
            with pytest.raises(ShardError) as caught:
                read_keys(path)
            assert caught.value.code == spec["error"]
        return

    if not spec["valid"]:
        with pytest.raises(ShardError) as caught:
            decode_everything(path)
        assert caught.value.code == spec["error"]
        problems = verify_shard(path)
        assert problems and problems[0].code == spec["error"]
        if not spec["file"].startswith("invalid-order-"):   # these break two rules on purpose
            assert {problem.code for problem in problems} == {spec["error"]}
        return

    reader = decode_everything(path)
    assert verify_shard(path) == []
    header = reader.header
    expected = spec["header"]
    assert (header.classes, header.k, header.value_kind, header.sorted, header.epoch, header.rank,
            header.records_per_block) == (expected["classes"], expected["k"], expected["value_kind"],
                                          expected["sorted"], expected["epoch"], expected["rank"],
                                          expected["records_per_block"])
    assert header.temperature == expected["temperature"]
    assert header.augmentation_kind == expected["augmentation"]["kind"]
    assert dict(header.provenance) == expected["provenance"]
    assert len(reader) == spec["record_count"] == len(spec["records"])
    for ordinal, want in enumerate(spec["records"]):
        record = reader.record(ordinal)
        assert record.sample_id == want["sample_id"]
        assert bytes(record.aug).hex() == want["augmentation"]
        assert record.indices.tolist() == want["indices"]
        assert record.values.view(np.uint16).tolist() == want["value_bits"]
        assert np.array(want["values"], np.float64).astype(np.float16).view(np.uint16).tolist() == want["value_bits"]
        if "params" in want:
            assert params_json(decode_params(record.aug, header.output_size)) == want["params"]
        if want["residual_bits"] is None:
            if header.value_kind != "probability":
                with pytest.raises(ShardError) as caught:
                    reader.dense_row(ordinal)
                assert caught.value.code == "not-probability"
            continue
        row = reader.dense_row(ordinal)
        others = np.setdiff1d(np.arange(header.classes), record.indices)
        assert set(row[others].view(np.uint32).tolist()) == {want["residual_bits"]}
        assert row[record.indices].tolist() == record.values.astype(np.float32).tolist()
