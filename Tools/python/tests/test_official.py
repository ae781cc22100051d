"""The official-layout baseline reader and the converter, against the shared fixtures."""

import os
import sys

import numpy as np
import pytest

# The baseline reader is a standalone script beside the package (the benchmarks run it), not part of it.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import official_numpy_reader as official  # noqa: E402
from tinyshard.convert import convert_official
from tinyshard.dataset import Dataset
from tinyshard.verify import verify_dataset

from conftest import FIXTURES

CASES = [("in1k_top10", 1000), ("in22k_top100", 21841)]


def fixture(name):
    path = os.path.join(FIXTURES, name)
    if not os.path.isdir(path):
        pytest.skip(f"shared fixture folder {path} is absent")
    return path


@pytest.mark.parametrize("name,classes", CASES)
def test_converted_dataset_matches_official_reader(tmp_path, name, classes):
    source = fixture(name)
    convert_official(source, str(tmp_path), classes, records_per_block=64)
    assert verify_dataset(str(tmp_path)) == []
    dataset = Dataset(str(tmp_path))
    for epoch, k, path in official.find_epochs(source):
        reference = official.OfficialEpoch(path, k)
        assert sorted(reference.where) == dataset.keys_in_epoch(epoch)
        for key in reference.where:
            index, value, seed = reference.sparse(key)
            record = dataset.get(epoch, key)
            assert record.indices.tolist() == index.tolist()
            assert record.values.view(np.uint16).tolist() == value.view(np.uint16).tolist()
            assert int.from_bytes(record.aug, "little", signed=True) == seed
            ours, theirs = dataset.dense_row(epoch, key), reference.dense(key, classes)
            assert (ours[index] == theirs[index]).all()
            assert np.allclose(ours, theirs, rtol=1e-5, atol=1e-9)


def test_lowest_rank_wins():
    path = os.path.join(fixture("in1k_top10"), "logits_top10_epoch0")
    reference = official.OfficialEpoch(path, 10)
    keys = [open(os.path.join(path, f"rank{r}-keys.txt")).read().split() for r in (0, 1)]
    shared = set(keys[0]) & set(keys[1])
    assert shared, "the fixture has a key in both ranks"
    for key in shared:
        assert reference.where[key] == (0, keys[0].index(key))


def test_bench_runs(capsys):
    results = official.bench(fixture("in1k_top10"), 0.02, 1000)
    assert set(results) == {0, 1} and all(s > 0 and d > 0 for s, d in results.values())
    assert "records/s" in capsys.readouterr().out
