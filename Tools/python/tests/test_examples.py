"""The examples fail on bad input with one line naming the file (and block and record), exit 1.
(Their normal runs, with torchrun, gloo and 2 processes, are in test_torch_cross.py.)"""

import json
import os
import subprocess
import sys

import pytest

from conftest import DIGITS_CSV, EXAMPLES, require_torch

require_torch()

from tinyshard import Dataset  # noqa: E402
from tinyshard.importers import import_digits  # noqa: E402

STUDENT = json.dumps({"embed_dims": [8, 16, 16, 16], "depths": [1, 1, 1, 1], "num_heads": [1, 1, 1, 1],
                      "window_sizes": [4, 4, 2, 1]})


def example(script, *args):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, script), *map(str, args)], capture_output=True,
                          text=True, timeout=600, env=env)


@pytest.fixture(scope="module")
def teacher_pass(tmp_path_factory):
    folder = tmp_path_factory.mktemp("examples")
    store = folder / "digits.tsimg"
    import_digits(DIGITS_CSV, store, upscale=4, limit=200)
    shards = folder / "shards"
    result = example("teacher_pass.py", "--images", store, "--out", shards, "--model", "tiny_vit_5m_224",
                     "--model-args", STUDENT, "--img-size", 32, "--epochs", 2, "--k", 3, "--batch", 64,
                     "--workers", 0, "--threads", 1)
    assert result.returncode == 0, result.stderr
    assert "verify: clean" in result.stdout
    return folder, store, shards


def student(folder, store, shards, *extra):
    return example("train_student.py", "--images", store, "--shards", shards, "--out", folder / "run",
                   "--model", "tiny_vit_5m_224", "--model-args", STUDENT, "--epochs", 1, "--batch", 16,
                   "--workers", 2, "--threads", 1, *extra)


def assert_one_line(result, *fragments):
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_single_process_run(teacher_pass):
    folder, store, shards = teacher_pass
    result = student(folder, store, shards)
    assert result.returncode == 0, result.stderr
    assert "epoch 1: loss" in result.stdout and "data wait" in result.stdout
    assert result.stdout.splitlines()[0].startswith("order: record order (Spec/RECORD-ORDER.md), window 4")
    metrics = json.load(open(folder / "run" / "metrics.json"))
    assert metrics["world_size"] == 1 and metrics["records"] == 163     # the 200 digits minus the held-out 37
    assert metrics["order"] == "record" and metrics["epochs"][0]["steps"] == 163 // 16


def test_distributed_order(teacher_pass):
    folder, store, shards = teacher_pass
    result = student(folder, store, shards, "--order", "distributed")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "order: DistributedSampler's (--order distributed)"
    assert json.load(open(folder / "run" / "metrics.json"))["order"] == "distributed"


def test_class_count_mismatch(teacher_pass):
    folder, store, shards = teacher_pass
    assert_one_line(student(folder, store, shards, "--classes", 1000),
                    f"{shards}/manifest.json: [class-mismatch] the shards have 10 classes, the model 1000")


@pytest.mark.parametrize("epoch", [0, 1])
def test_corrupt_block(teacher_pass, tmp_path, epoch):
    """Epoch 0's damage is met when the dataset opens (main process); epoch 1's when a DataLoader worker
    first reads that epoch, mid-run (the DataLoader re-raises it; the example prints its one line)."""
    folder, store, shards = teacher_pass
    copy = tmp_path / "shards"
    copy.mkdir()
    for name in os.listdir(shards):
        (copy / name).write_bytes((shards / name).read_bytes())
    dataset = Dataset(copy)
    reader = dataset.reader(next(e for e in dataset.manifest.shards if e.epoch == epoch))
    data = bytearray(open(reader.path, "rb").read())
    data[reader.layout.block_offsets[0] + 50] ^= 0xFF
    open(reader.path, "wb").write(bytes(data))
    result = student(folder, store, copy, "--epochs", 2)
    assert_one_line(result, "[block-crc]", f"(file {reader.path}, block 0, record 0)")
