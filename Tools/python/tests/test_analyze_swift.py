"""tinyshard.analyze and Swift's `tinyshard analyze` give one answer for one teacher pass (Spec/ANALYZE.md):
counts, shares and histogram percentiles exactly; float64 sums (means, residuals, candidate means,
correlations) to 1e-9 relative. The pass: a tiny Swift teacher on the digits, K = 4, 3 epochs."""

import json

import numpy as np
import pytest

from conftest import run_swift, swift_binary
from swift_digits import digits_teacher, teacher_pass
from tinyshard.analyze import analyze, to_json, write_report

REL = 1e-9
# Correlations are quotients of differences of sums: near 0 their relative error has no bound, so an
# absolute one (on a value in [-1, 1]) applies too.
CORRELATION_ABS = 1e-11
FLOAT_FIELDS = {"mean", "residual", "meanTop1Share", "meanTopNShare", "topMeans", "correlation"}


@pytest.fixture(scope="module")
def passes(tmp_path_factory):
    binary = swift_binary()
    folder = tmp_path_factory.mktemp("analyze-swift")
    store, arch, weights = digits_teacher(binary, folder)
    shards = teacher_pass(binary, store, arch, weights, folder / "pass", k=4, epochs=3)
    return binary, folder, store, shards


def swift_analysis(binary, shards, out, store=None):
    args = ["analyze", shards, "--out", out, "--json"] + (["--images", store] if store else [])
    return json.loads(run_swift(binary, *args).stdout)


def compare(ours, theirs, path="", in_float=False):
    """Field by field: sums (FLOAT_FIELDS) close, everything else equal; bytesPerRecord (writer-dependent)
    only present on both sides."""
    if isinstance(theirs, dict):
        assert sorted(ours) == sorted(theirs), f"{path}: fields {sorted(ours)} != {sorted(theirs)}"
        for key, value in theirs.items():
            if key == "bytesPerRecord":
                assert ours[key] > 0 and value > 0
                continue
            compare(ours[key], value, f"{path}.{key}", in_float or key in FLOAT_FIELDS)
    elif isinstance(theirs, list):
        assert len(ours) == len(theirs), f"{path}: {len(ours)} items != {len(theirs)}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            compare(a, b, f"{path}[{i}]", in_float)
    elif in_float:
        tolerance = CORRELATION_ABS if path.endswith("correlation") else 0
        assert ours == pytest.approx(theirs, rel=REL, abs=tolerance), path
    else:
        assert ours == theirs, f"{path}: {ours!r} != {theirs!r}"        # counts, shares, percentiles: exact


def compare_pairs(ours, theirs):
    """The 20 pairs by correlation: equal values to 1e-9 and the same pairs in order, except within runs of
    values closer than that (their order is the summation order's), compared as sets."""
    assert len(ours) == len(theirs) == 20
    for a, b in zip(ours, theirs):
        assert a["correlation"] == pytest.approx(b["correlation"], rel=REL, abs=CORRELATION_ABS)
    i = 0
    while i < len(theirs):
        j = i + 1
        while j < len(theirs) and abs(theirs[j]["correlation"] - theirs[i]["correlation"]) <= 1e-9:
            j += 1
        if j < len(theirs) or j - i == 1:          # a run cut by the top 20 may hold other tied pairs
            assert {(p["a"], p["b"]) for p in ours[i:j]} == {(p["a"], p["b"]) for p in theirs[i:j]}
        i = j


def test_same_analysis_as_swift_with_labels(passes, tmp_path):
    binary, folder, store, shards = passes
    theirs = swift_analysis(binary, shards, tmp_path / "swift", store)
    result = analyze(shards, store)
    ours = json.loads(to_json(result))
    # The pass is what the comparison needs: hard and easy images, padding-free records of 3 epochs.
    assert theirs["records"] > 3000 and theirs["k"] == 4 and theirs["n"] == 4
    assert 0 < len(theirs["hard_samples"]) < theirs["per_image"]["images"]
    assert theirs["skipped"] == []
    pairs_ours, pairs_theirs = ours.pop("top_pairs"), theirs.pop("top_pairs")
    compare(ours, theirs)
    compare_pairs(pairs_ours, pairs_theirs)
    swift_matrix = np.load(tmp_path / "swift" / "correlation.npy")
    assert swift_matrix.dtype == np.float64 and swift_matrix.shape == result.matrix.shape == (10, 10)
    np.testing.assert_allclose(result.matrix, swift_matrix, rtol=REL, atol=CORRELATION_ABS)
    # The files: the same tables (bytes per record apart), the same hard samples.
    write_report(result, tmp_path / "python", [str(c) for c in range(10)])
    swift_dir, python_dir = tmp_path / "swift", tmp_path / "python"
    assert (python_dir / "hard_samples.tsv").read_text() == (swift_dir / "hard_samples.tsv").read_text()
    assert (python_dir / "correlation.svg").read_text() == (swift_dir / "correlation.svg").read_text()
    strip = lambda text: [line.rsplit("\t", 1)[0] for line in text.splitlines()]  # noqa: E731
    assert strip((python_dir / "mass_by_k.tsv").read_text()) == strip((swift_dir / "mass_by_k.tsv").read_text())
    compare(json.loads((python_dir / "hard_samples.json").read_text()),
            json.loads((swift_dir / "hard_samples.json").read_text()))


def test_same_analysis_as_swift_without_images(passes, tmp_path):
    binary, _, _, shards = passes
    theirs = swift_analysis(binary, shards, tmp_path / "swift")
    ours = json.loads(to_json(analyze(shards)))
    assert "overall" not in theirs and theirs["skipped"] == ours["skipped"] and len(ours["skipped"]) == 1
    pairs_ours, pairs_theirs = ours.pop("top_pairs"), theirs.pop("top_pairs")
    compare(ours, theirs)
    compare_pairs(pairs_ours, pairs_theirs)
