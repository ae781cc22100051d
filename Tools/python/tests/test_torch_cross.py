"""PyTorch and Swift on each other's teacher passes, on the digits.

A small timm TinyViT teacher is trained here (hard labels, a few epochs). Then:
- the Swift teacher pass (`tinyshard teacher --external`, this teacher behind the .npy protocol) writes
  shards; the PyTorch student (examples/train_student.py, DDP over 2 gloo processes, 2 loader workers
  each) trains from them; SoftLabels' dense targets equal Swift's (`tinyshard dump --dense`) bit for bit;
- the PyTorch teacher pass (examples/teacher_pass.py, 2 gloo processes) writes shards that both
  verifiers pass, whose dense targets and replayed views Swift reads identically, and the Swift student
  (`tinyshard train`, a debug build: a short run on a part of the digits) trains from them.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import DIGITS_CSV, EXAMPLES, require_torch, run_swift, swift_binary

require_torch()
import torch  # noqa: E402

from tinyshard import Dataset, ImageStore, verify_dataset  # noqa: E402
from tinyshard.importers import import_digits  # noqa: E402
from tinyshard.labels import SoftLabels  # noqa: E402
from tinyshard.replay import replay  # noqa: E402
from tinyshard.split import held_out_split  # noqa: E402

TEACHER_ARGS = {"embed_dims": [32, 64, 96, 128], "depths": [1, 1, 2, 1], "num_heads": [1, 2, 3, 4],
                "window_sizes": [4, 4, 2, 1]}
STUDENT_ARGS = {"embed_dims": [16, 32, 32, 48], "depths": [1, 1, 1, 1], "num_heads": [1, 1, 1, 2],
                "window_sizes": [4, 4, 2, 1]}
EXTERNAL_TEACHER = """
import sys, json, numpy as np, torch, timm
torch.set_num_threads(1)
model = timm.create_model("tiny_vit_5m_224", num_classes=10, **json.loads(sys.argv[2]))
model.load_state_dict(torch.load(sys.argv[1], weights_only=True)); model.eval()
for line in sys.stdin:
    src, dst = line.split()
    with torch.no_grad():
        np.save(dst, model(torch.from_numpy(np.load(src))).numpy().astype(np.float32))
    print("ok", flush=True)
"""


def torchrun(script, *args, timeout=900):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(29500 + os.getpid() % 1000), os.path.join(EXAMPLES, script), *map(str, args)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result.stdout


def train_teacher(store, path, epochs=12):
    """Hard-label training on the whole-image views of the train split (seconds on a CPU)."""
    sys.path.insert(0, EXAMPLES)
    from common import create_model, eval_view, evaluate
    torch.manual_seed(0)
    torch.set_num_threads(1)       # on a busy 2-core machine OpenMP's spinning threads cost 10x
    train, held_out = held_out_split(store.keys(), 0.2)
    x = torch.stack([eval_view(store.image(i), 32) for i in train])
    y = torch.tensor([store.label(i) for i in train])
    model = create_model("tiny_vit_5m_224", 10, json.dumps(TEACHER_ARGS))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(train)).split(64):
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    torch.save(model.state_dict(), path)
    return evaluate(model, store, held_out, 32)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    binary = swift_binary()
    folder = tmp_path_factory.mktemp("cross")
    store_path = folder / "digits.tsimg"
    import_digits(DIGITS_CSV, store_path, upscale=4)
    store = ImageStore(store_path)
    teacher = folder / "teacher.pth"
    accuracy = train_teacher(store, teacher)
    print(f"\nteacher held-out top-1 {100 * accuracy:.1f}%")
    assert accuracy > 0.8
    return binary, folder, store_path, teacher


def dense_equal_to_swift(binary, folder, shards, epoch):
    """Every record of one epoch: SoftLabels' dense row == the Swift reader's, bit for bit."""
    out = folder / f"dense-{os.path.basename(shards)}-{epoch}.npy"
    lines = run_swift(binary, "dump", shards, "--epoch", epoch, "--dense", out).stdout.splitlines()
    ids = [json.loads(line)["sample_id"] for line in lines]
    swift_rows = np.load(out)
    labels = SoftLabels(shards)
    ours = labels.dense(ids, epoch=epoch)
    assert swift_rows.shape == ours.shape and len(ids) > 100
    assert np.array_equal(swift_rows.view(np.uint32), ours.view(np.uint32))


def test_pytorch_student_from_swift_teacher_pass(setup):
    binary, folder, store_path, teacher = setup
    shards = folder / "swift-shards"
    script = folder / "external_teacher.py"
    script.write_text(EXTERNAL_TEACHER)
    command = f"{sys.executable} {script} {teacher} '{json.dumps(TEACHER_ARGS)}'"
    run_swift(binary, "teacher", "--images", store_path, "--external", command, "--image-size", 32,
              "--out", shards, "--epochs", 2, "--k", 5, "--batch", 128)
    assert verify_dataset(shards) == []
    # Swift's held-out split (by key hash) is Python's: the shards hold exactly Python's training keys.
    store = ImageStore(store_path)
    train, _ = held_out_split(store.keys(), 0.2)
    assert sorted(Dataset(shards).keys_in_epoch(0)) == sorted(store.key(i) for i in train)
    for epoch in (0, 1):
        dense_equal_to_swift(binary, folder, shards, epoch)
    run = folder / "torch-student"
    output = torchrun("train_student.py", "--images", store_path, "--shards", shards, "--out", run,
                      "--model", "tiny_vit_5m_224", "--model-args", json.dumps(STUDENT_ARGS),
                      "--epochs", 10, "--cycle-epochs", "--batch", 32, "--workers", 2, "--threads", 1, "--lr", 3e-3)
    print(output)
    metrics = json.load(open(run / "metrics.json"))
    epochs = metrics["epochs"]
    assert metrics["world_size"] == 2 and metrics["workers"] == 2 and len(epochs) == 10
    assert epochs[-1]["loss"] < epochs[0]["loss"]
    assert epochs[-1]["top1"] > 0.4, epochs                      # chance is 0.1
    assert all(0 <= e["data_wait_share"] < 1 for e in epochs)


def test_swift_student_from_pytorch_teacher_pass(setup):
    binary, folder, store_path, teacher = setup
    shards = folder / "torch-shards"
    output = torchrun("teacher_pass.py", "--images", store_path, "--out", shards,
                      "--model", "tiny_vit_5m_224", "--model-args", json.dumps(TEACHER_ARGS),
                      "--checkpoint", teacher, "--img-size", 32, "--epochs", 2, "--k", 5, "--batch", 128,
                      "--workers", 1, "--threads", 1, "--mix")
    assert "verify: clean" in output
    run_swift(binary, "verify", shards)
    store, dataset = ImageStore(store_path), Dataset(shards)
    train, _ = held_out_split(store.keys(), 0.2)
    assert sorted(dataset.keys_in_epoch(1)) == sorted(store.key(i) for i in train)
    for epoch in (0, 1):
        dense_equal_to_swift(binary, folder, shards, epoch)
    # Swift replays the PyTorch-written codes as Python does.
    views = folder / "torch-views.npy"
    run_swift(binary, "render", "--images", store_path, "--shards", shards, "--epoch", 1, "--rank", 1,
              "--range", "0..<60", "--out", views)
    reader = dataset.reader(next(e for e in dataset.manifest.shards if (e.epoch, e.rank) == (1, 1)))
    for ordinal, view in enumerate(np.load(views)):
        record = reader.record(ordinal)
        partner = None
        if record.aug[32]:
            partner = store.image(int(np.frombuffer(record.aug[36:40], "<u4")[0]))
        ours = replay(record.aug, store.image(record.sample_id), (32, 32), partner)
        assert np.abs(ours.astype(np.int64) - view).max() <= 1
    # The Swift student trains from these shards (a short run: the test binary is a debug build).
    small = folder / "digits-small.tsimg"
    import_digits(DIGITS_CSV, small, upscale=4, limit=300)
    small_shards = folder / "torch-shards-small"
    torchrun("teacher_pass.py", "--images", small, "--out", small_shards, "--model", "tiny_vit_5m_224",
             "--model-args", json.dumps(TEACHER_ARGS), "--checkpoint", teacher, "--img-size", 32,
             "--epochs", 2, "--k", 5, "--batch", 128, "--workers", 0, "--threads", 1)
    config = folder / "student.json"
    config.write_text(json.dumps(dict(STUDENT_ARGS, num_classes=10, img_size=32)))
    run = folder / "swift-student"
    result = run_swift(binary, "train", "--images", small, "--shards", small_shards, "--arch", config,
                       "--out", run, "--epochs", 2, "--batch", 32)
    assert "epoch 2:" in result.stdout and (run / "model.safetensors").exists()
    losses = [float(line.split(",")[2]) for line in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert len(losses) >= 12 and all(np.isfinite(losses))
