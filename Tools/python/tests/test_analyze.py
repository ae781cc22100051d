"""tinyshard.analyze on datasets written here, against plain per-record Python loops over Spec/ANALYZE.md's
definitions (agreement, hard samples, mass by k, class correlation from the dense rows), and its refusals.
"""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from tinyshard import Dataset
from tinyshard.analyze import (AnalyzeError, _bytes_per_record, analyze, heatmap_classes, heatmap_svg,
                                records_per_block, write_report)
from tinyshard.files import file_size_and_crc
from tinyshard.imagestore_writer import ImageStoreWriter
from tinyshard.keys import write_keys
from tinyshard.manifest import write_manifest
from tinyshard.writer import ShardWriter

CLASSES, K, KEYS = 23, 6, 90
# Key tables hold keys in ascending byte order (FORMAT.md 5): sample ids are that order. One non-ASCII.
KEY_NAMES = [f"img{i:03d}" for i in range(KEYS - 1)] + ["imgé"]


def write_pass(folder, rng, labels, epochs=3, ranks=2, per_rank=40, per_block=16, value_kind="probability",
               sorted_=True, k=K, classes=CLASSES):
    """A pass over KEY_NAMES: each epoch's first 2·per_rank samples split over the ranks, the last rank
    repeating 4 of the first rank's (DistributedSampler padding: those samples have two records in the
    epoch). A record's label is among its first entries with a per-sample probability, so that some images
    are hard and some are not."""
    os.makedirs(folder, exist_ok=True)
    write_keys(os.path.join(folder, "keys.tsk"), KEY_NAMES)
    _, crc = file_size_and_crc(os.path.join(folder, "keys.tsk"))
    agree = rng.uniform(0, 1, KEYS)
    names = []
    for epoch in range(epochs):
        order = rng.permutation(KEYS)
        for rank in range(ranks):
            part = list(order[rank * per_rank:(rank + 1) * per_rank])
            if ranks > 1 and rank == ranks - 1:
                part += list(order[:4])
            name = f"epoch{epoch:04d}-rank{rank:03d}.tshard"
            with ShardWriter(os.path.join(folder, name), classes, k, value_kind=value_kind, sorted=sorted_,
                             epoch=epoch, rank=rank, records_per_block=per_block,
                             provenance={"dataset_checksum": crc}) as writer:
                for sample in part:
                    # The other classes shuffled, the label last (outside the first entries when K < C)
                    # or, when the teacher agrees, somewhere among the first min(K, 5).
                    order_ = [int(c) for c in rng.permutation(classes) if c != labels[sample]]
                    at = int(rng.integers(0, min(k, 5))) if rng.uniform() < agree[sample] else classes - 1
                    chosen = (order_[:at] + [int(labels[sample])] + order_[at:])[:k]
                    if value_kind == "logit":
                        values = rng.normal(size=k)
                    else:
                        values = -np.sort(-rng.dirichlet(np.full(classes, 0.4))[:k])
                        if not sorted_:
                            values = rng.permutation(values)
                    writer.append(int(sample), np.array(chosen), values)
            names.append(name)
    write_manifest(folder, names)


def write_store(path, labels, extra=("zzz-held-out",), classes=CLASSES, drop=None):
    """An image store holding every dataset key (but `drop`) and a few others, in byte order."""
    entries = [(key, int(labels[i])) for i, key in enumerate(KEY_NAMES) if key != drop]
    entries += [(key, 0) for key in extra]
    entries.sort(key=lambda e: e[0].encode("utf-8"))
    with ImageStoreWriter(path, classes=classes) as writer:
        for key, label in entries:
            writer.append(key, np.zeros((2, 2, 3), np.uint8), label)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("analyze")
    rng = np.random.default_rng(7)
    labels = rng.integers(0, CLASSES, KEYS)
    write_pass(folder / "pass", rng, labels)
    write_store(folder / "store.tsimg", labels)
    return folder, labels


# ---- the reference: one record at a time ----------------------------------------------------------------


def reading_order(folder):
    """[(epoch, sample id, indices, values as floats, dense row float64)] in ANALYZE.md's order."""
    ds = Dataset(folder)
    out = []
    for epoch in ds.epochs():
        for entry in sorted((e for e in ds.manifest.shards if e.epoch == epoch), key=lambda e: e.rank):
            reader = ds.reader(entry)
            for ordinal, record in enumerate(reader):
                out.append((epoch, record.sample_id, [int(c) for c in record.indices],
                            [float(v) for v in record.values], reader.dense_row(ordinal).astype(np.float64)))
    return ds, out


def reference(folder, labels, hard_share=0.5, budget=1 << 31, cap=4096):
    ds, records = reading_order(folder)
    C, k, N = ds.classes, ds.k, len(records)
    n = min(5, k)
    out = {"records": N}
    # Mass by k: each record's running sum; percentiles from the masses sorted (the histogram's bins).
    rows = []
    for j in range(k):
        masses = [sum(values[:j + 1]) for _, _, _, values, _ in records]
        ordered = sorted(masses)
        row = {"k": j + 1, "mean": sum(masses) / N}
        for p in (10, 50, 90):
            rank = max(1, math.ceil(p * N / 100))
            row[f"p{p}"] = (min(4095, math.floor(ordered[rank - 1] * 4096)) + 1) / 4096
        others = C - (j + 1)
        row["residual"] = sum(max(0.0, 1 - m) / others for m in masses) / N if others else 0.0
        rows.append(row)
    out["mass_by_k"] = rows
    if labels is not None:
        per_epoch, per_class, per_image = {}, {}, {}
        for epoch, sid, indices, values, _ in records:
            y = int(labels[sid])
            top1, top_n = indices[0] == y, y in indices[:n]
            for table, key in ((per_epoch, epoch), (per_class, y)):
                c = table.setdefault(key, [0, 0, 0])
                c[0] += 1
                c[1] += top1
                c[2] += top_n
            image = per_image.setdefault(sid, {"m": 0, "t": 0, "miss": 0, "records": []})
            image["m"] += 1
            image["t"] += top1
            image["miss"] += not top_n
            image["records"].append((indices, values))
        agreement = lambda c: {"records": c[0], "top1": c[1] / c[0], "topN": c[2] / c[0]}  # noqa: E731
        out["per_epoch"] = [{"epoch": e, "agreement": agreement(per_epoch[e])} for e in sorted(per_epoch)]
        out["per_class"] = [{"label": y, "agreement": agreement(per_class[y])} for y in sorted(per_class)]
        total = [sum(c[i] for c in per_epoch.values()) for i in range(3)]
        out["overall"] = agreement(total)
        kept = [(im["t"], im["m"] - im["miss"], im["m"]) for im in per_image.values()]
        # Bin ⌊10 · share⌋ of share = a / m, share 1 in bin 9, in integers.
        histogram = lambda column: [sum(1 for row in kept if min(9, 10 * row[column] // row[2]) == b)  # noqa: E731
                                    for b in range(10)]
        out["per_image"] = {"images": len(per_image), "meanTop1Share": sum(t / m for t, _, m in kept) / len(kept),
                            "meanTopNShare": sum(a / m for _, a, m in kept) / len(kept),
                            "top1Histogram": histogram(0), "topNHistogram": histogram(1)}
        hard = []
        for sid, im in per_image.items():
            share = im["miss"] / im["m"]
            if share < hard_share:
                continue
            candidates = im["records"][0][0][:3]
            means = []
            for c in candidates:
                total_value = sum(values[indices.index(c)] if c in indices else 0.0 for indices, values in im["records"])
                means.append((c, total_value / im["m"]))
            means.sort(key=lambda cm: (-cm[1], cm[0]))
            hard.append({"sampleID": sid, "key": KEY_NAMES[sid], "label": int(labels[sid]), "records": im["m"],
                         "missShare": share, "topClasses": [c for c, _ in means], "topMeans": [m for _, m in means]})
        hard.sort(key=lambda h: (-h["missShare"], h["key"].encode("utf-8")))
        out["hard_samples"] = hard
        out["hard_image_share"] = len(hard) / len(per_image)
    # Correlation from the dense rows of every m-th record, over the classes of the cap.
    m = max(1, math.ceil(N * k * k / budget))
    top_one = [0] * C
    for _, _, indices, _, _ in records:
        top_one[indices[0]] += 1
    selected = sorted(sorted(range(C), key=lambda c: (-top_one[c], c))[:cap])
    used = [dense for position, (_, _, _, _, dense) in enumerate(records) if position % m == 0]
    S = [sum(x[i] for x in used) for i in selected]
    width = len(selected)
    matrix = np.zeros((width, width))
    nn = len(used)
    products = {}
    for a in range(width):
        for b in range(a, width):
            products[a, b] = products[b, a] = sum(x[selected[a]] * x[selected[b]] for x in used)
    for a in range(width):
        for b in range(width):
            va = products[a, a] - S[a] * S[a] / nn
            vb = products[b, b] - S[b] * S[b] / nn
            if va > 0 and vb > 0:
                matrix[a, b] = (products[a, b] - S[a] * S[b] / nn) / math.sqrt(va * vb)
    pairs = sorted(((matrix[a, b], selected[a], selected[b]) for a in range(width) for b in range(a + 1, width)),
                   key=lambda p: (-p[0], p[1], p[2]))[:20]
    out.update(correlation_records=nn, correlation_stride=m, correlation_classes=selected,
               top_pairs=[{"a": a, "b": b, "correlation": c} for c, a, b in pairs])
    return out, matrix


def assert_close(ours, theirs, path="", rel=1e-9, tol=1e-12):
    """Integers and strings equal, floats to `rel` relative (and `tol` absolute, for values near 0)."""
    if isinstance(theirs, dict):
        for key, value in theirs.items():
            assert key in ours, f"{path}.{key} missing"
            assert_close(ours[key], value, f"{path}.{key}", rel, tol)
    elif isinstance(theirs, list):
        assert len(ours) == len(theirs), f"{path}: {len(ours)} != {len(theirs)}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_close(a, b, f"{path}[{i}]", rel, tol)
    elif isinstance(theirs, float):
        assert ours == pytest.approx(theirs, rel=rel, abs=tol), path
    else:
        assert ours == theirs, path


def test_every_number_against_per_record_loops(labelled):
    folder, labels = labelled
    result = analyze(folder / "pass", folder / "store.tsimg")
    expected, matrix = reference(folder / "pass", labels)
    assert 0 < len(expected["hard_samples"]) < expected["per_image"]["images"]        # some hard, not all
    assert any(s["records"] > 3 for s in expected["hard_samples"])           # a padded sample among them
    assert_close(result.data, expected)
    # Percentiles and shares are exact, not merely close.
    for ours, theirs in zip(result["mass_by_k"], expected["mass_by_k"]):
        assert (ours["p10"], ours["p50"], ours["p90"]) == (theirs["p10"], theirs["p50"], theirs["p90"])
    assert result["overall"] == expected["overall"]
    np.testing.assert_allclose(result.matrix, matrix, rtol=1e-9, atol=1e-12)
    assert result["n"] == 5 and result["k"] == K and result["classes"] == CLASSES and result["skipped"] == []
    # Padded samples count twice: the records are every shard's.
    assert result["records"] == 3 * (2 * 40 + 4)


@pytest.mark.parametrize("share", [0.0, 1 / 3, 1.0])
def test_hard_share_threshold(labelled, share):
    folder, labels = labelled
    result = analyze(folder / "pass", folder / "store.tsimg", hard_share=share, bytes_records=0)
    expected, _ = reference(folder / "pass", labels, hard_share=share)
    assert_close(result["hard_samples"], expected["hard_samples"])
    assert result["hard_share_threshold"] == share
    if share == 0:
        assert len(result["hard_samples"]) == result["per_image"]["images"]


def test_every_mth_record_and_the_class_cap(labelled):
    folder, labels = labelled
    records = 3 * (2 * 40 + 4)
    budget = records * K * K // 3 + 1                 # m = 3
    result = analyze(folder / "pass", None, bytes_records=0, correlation_budget=budget, max_correlation_classes=8)
    expected, matrix = reference(folder / "pass", None, budget=budget, cap=8)
    assert result["correlation_stride"] == 3 and result["correlation_records"] == -(-records // 3)
    assert len(result["correlation_classes"]) == 8
    assert_close(result.data, expected)
    np.testing.assert_allclose(result.matrix, matrix, rtol=1e-9, atol=1e-12)
    # Without labels: no agreement, the reason said.
    assert "overall" not in result.data and result["per_epoch"] == [] and result["hard_samples"] == []
    assert result["skipped"] == ["agreement and hard samples: no image store (labels) was given"]


def test_k_equal_to_classes_has_no_residual(tmp_path):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 6, KEYS)
    write_pass(tmp_path / "p", rng, labels, epochs=1, ranks=1, k=6, classes=6)
    result = analyze(tmp_path / "p", bytes_records=0)
    expected, matrix = reference(tmp_path / "p", None)
    assert result["mass_by_k"][-1]["residual"] == 0.0
    assert_close(result.data, expected)
    np.testing.assert_allclose(result.matrix, matrix, rtol=1e-9, atol=1e-12)


def test_candidate_ties_go_to_the_lower_class(tmp_path):
    """Three candidates of equal mean value: ascending class; a class absent from a later record counts 0."""
    folder = tmp_path / "p"
    os.makedirs(folder)
    write_keys(folder / "keys.tsk", KEY_NAMES[:2])
    _, crc = file_size_and_crc(folder / "keys.tsk")
    with ShardWriter(folder / "epoch0000-rank000.tshard", 10, 3, provenance={"dataset_checksum": crc}) as w:
        w.append(0, np.array([7, 3, 5]), np.array([0.25, 0.25, 0.25]))
        w.append(1, np.array([1, 2, 4]), np.array([0.5, 0.25, 0.125]))
    with ShardWriter(folder / "epoch0001-rank000.tshard", 10, 3, epoch=1, provenance={"dataset_checksum": crc}) as w:
        w.append(0, np.array([5, 3, 8]), np.array([0.5, 0.25, 0.125]))
    write_manifest(folder, ["epoch0000-rank000.tshard", "epoch0001-rank000.tshard"])
    labels = np.zeros(KEYS, np.int64)
    write_store(tmp_path / "s.tsimg", labels, classes=10)
    result = analyze(folder, tmp_path / "s.tsimg", bytes_records=0)
    first = next(s for s in result["hard_samples"] if s["sampleID"] == 0)
    # Means: 5 (0.25 + 0.5) / 2, 3 (0.25 + 0.25) / 2, 7 (0.25 + 0) / 2.
    assert first["topClasses"] == [5, 3, 7] and first["topMeans"] == [0.375, 0.25, 0.125]
    tie = next(s for s in result["hard_samples"] if s["sampleID"] == 1)
    assert tie["records"] == 1 and tie["topClasses"] == [1, 2, 4]
    expected, _ = reference(folder, labels)
    assert_close(result["hard_samples"], expected["hard_samples"])


def test_bytes_per_record_are_the_writers(labelled):
    """_bytes_per_record computes what ShardWriter writes for the truncated records, without its per-record
    calls: held equal to real files here."""
    folder, _ = labelled
    ds = Dataset(folder / "pass")
    ours = _bytes_per_record(ds, wanted=50)
    first = sorted((e for e in ds.manifest.shards if e.epoch == 0), key=lambda e: e.rank)
    records = [r for e in first for r in ds.reader(e)][:50]
    template = ds.reader(first[0]).header
    assert len(ours) == K
    for k in range(1, K + 1):
        path = folder / f"k{k}.tshard"
        with ShardWriter(path, template.classes, k, sorted=True, epoch=template.epoch, rank=template.rank,
                         records_per_block=records_per_block(k), provenance=template.provenance) as writer:
            for r in records:
                writer.append(r.sample_id, r.indices[:k], r.values[:k], r.aug)
        assert ours[k - 1] == os.path.getsize(path) / 50
    assert [records_per_block(k) for k in (1, 10, 100, 3)] == [2048, 128, 16, 512]


def test_refusals_are_one_line_naming_the_file_or_key(tmp_path, labelled):
    folder, labels = labelled
    rng = np.random.default_rng(1)
    write_pass(tmp_path / "logit", rng, labels, epochs=1, value_kind="logit", sorted_=False)
    with pytest.raises(AnalyzeError, match=r"epoch0000-rank000.tshard: \[invalid-argument\] .* stores logits"):
        analyze(tmp_path / "logit")
    write_pass(tmp_path / "unsorted", rng, labels, epochs=1, sorted_=False)
    with pytest.raises(AnalyzeError, match=r"rank000.tshard: \[invalid-argument\] .* stores unsorted values"):
        analyze(tmp_path / "unsorted")
    write_store(tmp_path / "lacks.tsimg", labels, drop=KEY_NAMES[5])
    with pytest.raises(AnalyzeError, match=f"lacks.tsimg: \\[mismatch\\] .*key '{KEY_NAMES[5]}'"):
        analyze(folder / "pass", tmp_path / "lacks.tsimg")
    unlabelled = labels.copy()
    ds, records = reading_order(folder / "pass")
    sid = records[0][1]
    unlabelled[sid] = -1
    write_store(tmp_path / "nolabel.tsimg", unlabelled)
    with pytest.raises(AnalyzeError, match=f"nolabel.tsimg: \\[no-label\\] .*key '{KEY_NAMES[sid]}'"):
        analyze(folder / "pass", tmp_path / "nolabel.tsimg")
    write_store(tmp_path / "seven.tsimg", labels % 7, classes=7)
    with pytest.raises(AnalyzeError, match=r"seven.tsimg: \[mismatch\] the store has 7 classes, the shards 23"):
        analyze(folder / "pass", tmp_path / "seven.tsimg")
    with pytest.raises(AnalyzeError, match="hard share"):
        analyze(folder / "pass", hard_share=1.5)
    for error in (AnalyzeError("x", "y", file="f"),):
        assert "\n" not in str(error)


def test_cli_writes_the_files_and_prints_one_line_errors(tmp_path, labelled):
    folder, labels = labelled
    out = tmp_path / "report"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    run = subprocess.run([sys.executable, "-m", "tinyshard", "analyze", str(folder / "pass"), "--images",
                          str(folder / "store.tsimg"), "--out", str(out), "--json"], capture_output=True, text=True,
                         env=env)
    assert run.returncode == 0, run.stderr
    printed = json.loads(run.stdout)
    assert printed == json.loads((out / "analysis.json").read_text())
    assert sorted(os.listdir(out)) == ["analysis.json", "correlation.npy", "correlation.svg", "hard_samples.json",
                                       "hard_samples.tsv", "mass_by_k.tsv"]
    matrix = np.load(out / "correlation.npy")
    assert matrix.dtype == np.float64 and matrix.shape == (CLASSES, CLASSES)
    assert json.loads((out / "hard_samples.json").read_text()) == printed["hard_samples"]
    tsv = (out / "hard_samples.tsv").read_text().splitlines()
    assert tsv[0] == "key\tlabel\tmiss_share\trecords\ttop_classes" and len(tsv) == len(printed["hard_samples"]) + 1
    assert len((out / "mass_by_k.tsv").read_text().splitlines()) == K + 1
    summary = subprocess.run([sys.executable, "-m", "tinyshard", "analyze", str(folder / "pass"), "--out",
                              str(tmp_path / "r2")], capture_output=True, text=True, env=env)
    assert summary.returncode == 0 and "skipped: agreement and hard samples" in summary.stdout
    bad = subprocess.run([sys.executable, "-m", "tinyshard", "analyze", str(folder / "pass"), "--images",
                          str(tmp_path / "none.tsimg"), "--out", str(tmp_path / "r3")], capture_output=True,
                         text=True, env=env)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "none.tsimg" in bad.stderr
    result = analyze(folder / "pass", folder / "store.tsimg")
    write_report(result, tmp_path / "again")
    assert (tmp_path / "again" / "mass_by_k.tsv").read_text().startswith("k\tmean\tp10\tp50\tp90\tresidual")


def test_heatmap_shows_the_most_frequent_top1_classes(labelled):
    folder, _ = labelled
    result = analyze(folder / "pass", bytes_records=0)
    _, records = reading_order(folder / "pass")
    counts = np.bincount([indices[0] for _, _, indices, _, _ in records], minlength=CLASSES)
    expected = sorted(sorted(range(CLASSES), key=lambda c: (-counts[c], c))[:5])
    assert heatmap_classes(result, limit=5) == expected != list(range(5))
    assert heatmap_classes(result) == list(range(CLASSES))
    svg = heatmap_svg(result, [f"c{c}" for c in range(CLASSES)], limit=5)
    assert svg.count("<rect") == 25 and all(f">c{c}</text>" in svg for c in expected)
