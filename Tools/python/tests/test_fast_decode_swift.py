"""The vectorised decoder against the Swift reader: shards of random permutations at K = 21, 100 and 256
(blocks decoded several per call, as RecordOrderReader does), the Swift CLI's dump and dense rows."""

import json

import numpy as np
import pytest

from conftest import run_swift, swift_binary
from tinyshard.codec import RecordBytes, decode_records, record_bytes
from tinyshard.labels import scatter_dense
from tinyshard.layout import read_block
from tinyshard.reader import ShardReader
from tinyshard.writer import ShardWriter


@pytest.mark.parametrize("k,classes", [(21, 300), (100, 21841), (256, 70000)])
def test_vectorised_decode_equals_swift(tmp_path, k, classes):
    binary = swift_binary()
    rng = np.random.default_rng(k)
    path = tmp_path / "s.tshard"
    with ShardWriter(path, classes, k, records_per_block=64, augmentation_kind="seed") as writer:
        for i in range(300):
            p = rng.dirichlet(np.full(k + 5, 0.5))[:k]
            writer.append(i, rng.choice(classes, k, replace=False), -np.sort(-p),
                          bytes(rng.integers(0, 256, 4, dtype=np.uint8)))
    rows = [json.loads(line) for line in run_swift(binary, "dump", path, "--dense", tmp_path / "d.npy").stdout.splitlines()]
    reader = ShardReader(path)
    h = reader.header
    blocks = [read_block(reader._buf, reader.layout, b) for b in range(reader.layout.blocks)]
    decoded = decode_records(h, 0, RecordBytes.concatenate([record_bytes(h, r.n, r.sections) for r in blocks]))
    assert decoded.problems == [] and len(rows) == 300
    assert (decoded.indices == np.array([r["indices"] for r in rows])).all()
    assert (decoded.values == np.array([r["values"] for r in rows]).astype(np.float16)).all()
    residual = (np.maximum(0.0, 1.0 - decoded.sums) / (classes - k)).astype(np.float32)
    dense = scatter_dense(decoded.indices, decoded.values, residual, classes)
    assert np.array_equal(dense.view(np.uint32), np.load(tmp_path / "d.npy").view(np.uint32))
