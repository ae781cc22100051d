"""A teacher pass that stops, crashes, is cut or damaged, and resumes (Spec/PASS.md): the folder ends byte
for byte as a pass that never stopped, and every folder that is not this pass is refused with one line
naming it and what differs.

The passes here run with simulated ranks in one process (rank and world given explicitly: ranks work one
after another, and rank 0 commits) and a real torch teacher: a fixed linear layer on pooled pixels of
images drawn from (epoch, sample). The examples' run under torchrun (2 gloo processes, a signal, resume)
is at the end.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import DIGITS_CSV, EXAMPLES, require_torch

require_torch()
import torch  # noqa: E402
from torch.utils.data import DistributedSampler  # noqa: E402

from tinyshard import ShardError, verify_dataset  # noqa: E402
from tinyshard.passfolder import PASS_NAME, PassError, PassRecord, read_tail, tail_path  # noqa: E402
from tinyshard.torch import TeacherPassWriter, shard_name  # noqa: E402
from tinyshard.writer import ShardWriter  # noqa: E402

CLASSES, K, R, BATCH = 12, 3, 4, 3          # a batch of 3 straddles blocks of 4: resumes restart mid-block
KEYS = [f"sample-{i:03d}" for i in range(45)]   # 45 over 2 ranks: DistributedSampler pads one repeat


class PooledLinear(torch.nn.Module):
    """The teacher: the image average-pooled to 2x2, then a linear layer with weights drawn from a seed,
    plus a term of the batch's mean (as a BatchNorm in training mode has): a record depends on the batch
    it was taught in, so a resume that gives the teacher other batches than an uninterrupted pass writes
    other bytes (PASS.md 3.1)."""

    def __init__(self, seed=0):
        super().__init__()
        self.pool = torch.nn.AdaptiveAvgPool2d(2)
        self.linear = torch.nn.Linear(3 * 2 * 2, CLASSES)
        self.batch_term = torch.nn.Linear(3 * 2 * 2, CLASSES, bias=False)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(CLASSES, 12, generator=generator) * 4)
            self.linear.bias.copy_(torch.randn(CLASSES, generator=generator))
            self.batch_term.weight.copy_(torch.randn(CLASSES, 12, generator=generator) * 4)

    def forward(self, x):
        pooled = self.pool(x).flatten(1)
        return self.linear(pooled) + self.batch_term(pooled.mean(0, keepdim=True))


def images(epoch, ids):
    """The 'augmented views': an 8x8 image per (epoch, sample), whatever batch it is in."""
    return torch.stack([torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(epoch * 100_003 + s))
                        for s in ids])


def codes(epoch, ids):
    """4-byte 'seed' augmentation codes, so the augmentation section is not empty."""
    return np.array([epoch * 1000 + s for s in ids], dtype="<i4").view(np.uint8).reshape(len(ids), 4)


class Pass:
    """A pass over KEYS: `world` simulated ranks, each rank's share as DistributedSampler deals it."""

    def __init__(self, folder, epochs, world=2, seed=0, resume=False, keys=KEYS, records_per_block=R):
        self.folder, self.epochs, self.world, self.seed = str(folder), epochs, world, seed
        self.keys = keys
        self.model = PooledLinear().eval()
        self.writers = [TeacherPassWriter(folder, keys, CLASSES, K, augmentation_kind="seed",
                                          records_per_block=records_per_block, rank=rank, world_size=world,
                                          epochs=epochs, batch_size=BATCH, resume=resume,
                                          fingerprint={"teacher": "pooled-linear", "seed": str(seed)})
                        for rank in range(world)]
        self.taught = []            # (epoch, rank, position) of every batch the teacher saw

    def share(self, epoch, rank):
        sampler = DistributedSampler(range(len(self.keys)), num_replicas=self.world, rank=rank, shuffle=True,
                                     seed=self.seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    def run(self, stop_after=None):
        """Runs until done (True) or, with stop_after, until each rank stopped after that many batches
        of this run (False)."""
        batches = [0] * self.world
        with torch.no_grad():
            for epoch in range(self.epochs):
                shards = []
                for rank, writer in enumerate(self.writers):
                    share = self.share(epoch, rank)
                    with writer.shard(epoch, share) as shard:
                        for position in range(shard.start, len(share), BATCH):
                            ids = share[position:position + BATCH]
                            logits = None
                            if shard.needs(len(ids)):
                                logits = self.model(images(epoch, ids))
                                self.taught.append((epoch, rank, position))
                            shard.add(ids, logits=logits, codes=codes(epoch, ids))
                            batches[rank] += 1
                            if stop_after is not None and batches[rank] >= stop_after:
                                writer.request_stop()
                            if writer.stop_agreed():
                                break
                    shards.append(shard)
                if not all(shard.finished for shard in shards):
                    return False
                self.writers[0].commit(epoch)
                if any(writer.stopped for writer in self.writers) and epoch + 1 < self.epochs:
                    return False
        return True


def folder_bytes(folder):
    return {name: open(os.path.join(folder, name), "rb").read() for name in sorted(os.listdir(folder))}


def assert_same_folder(a, b):
    ours, theirs = folder_bytes(a), folder_bytes(b)
    assert sorted(ours) == sorted(theirs)
    for name in ours:
        assert ours[name] == theirs[name], f"{name} differs"


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """Uninterrupted passes of 1 and 2 epochs (world 2) and of 2 epochs in one process."""
    root = tmp_path_factory.mktemp("references")
    out = {}
    for name, epochs, world in (("e1", 1, 2), ("e2", 2, 2), ("single", 2, 1)):
        assert Pass(root / name, epochs, world).run()
        assert verify_dataset(root / name) == []
        out[name] = str(root / name)
    return out


# ---- ShardWriter alone -----------------------------------------------------------------------------------


def test_shard_writer_resumes_every_cut(tmp_path):
    """A `.partial` cut at every byte length (inside the header, a block, the index, the footer) continues
    to the bytes of an uninterrupted writer; the kept records are exactly the complete blocks in it."""
    rng = np.random.default_rng(0)
    ids = rng.permutation(1000)[:29]
    records = []
    for sample in ids:
        p = rng.dirichlet(np.ones(CLASSES))
        top = np.argsort(-p, kind="stable")[:K]
        records.append((int(sample), top, p[top], rng.integers(0, 255, 4, dtype=np.uint8).tobytes()))
    spec = dict(classes=CLASSES, k=K, augmentation_kind="seed", records_per_block=R, epoch=3, rank=1,
                provenance={"teacher": "t"})
    reference = tmp_path / "reference.tshard"
    with ShardWriter(reference, **spec) as writer:
        for record in records:
            writer.append(*record)
    final = reference.read_bytes()
    path = tmp_path / "x.tshard"
    header_end = None
    for cut in range(len(final) + 1):
        (tmp_path / "x.tshard.partial").write_bytes(final[:cut])
        writer = ShardWriter(path, resume=True, expected_ids=ids, **spec)
        if header_end is None and writer.size > 0 and writer.resumed_records == 0 and cut > 0:
            header_end = writer.size
        for record in records[writer.resumed_records:]:
            writer.append(*record)
        kept = writer.resumed_records
        writer.close()
        assert path.read_bytes() == final, f"cut at {cut}"
        assert kept % R == 0 and kept <= len(records) // R * R
        path.unlink()
    # Every complete block is kept: the cut at the end of the file keeps all 7 full blocks of 4.
    (tmp_path / "x.tshard.partial").write_bytes(final)
    assert ShardWriter(path, resume=True, expected_ids=ids, **spec).resumed_records == 28


def test_a_complete_block_reaches_the_file_at_once(tmp_path):
    """A crash keeps every complete block: it is in `.partial` when its last record is appended, without a
    sync, and the records of the block not complete are not."""
    path = tmp_path / "x.tshard"
    writer = ShardWriter(path, CLASSES, K, records_per_block=2)
    header_size = os.path.getsize(tmp_path / "x.tshard.partial")
    writer.append(1, [0, 1, 2], [0.5, 0.3, 0.1])
    assert os.path.getsize(tmp_path / "x.tshard.partial") == header_size
    writer.append(2, [0, 1, 2], [0.5, 0.3, 0.1])
    assert os.path.getsize(tmp_path / "x.tshard.partial") == writer.size > header_size
    writer.append(3, [0, 1, 2], [0.5, 0.3, 0.1])
    assert ShardWriter(tmp_path / "y.tshard", CLASSES, K, records_per_block=2).size == header_size
    os.rename(tmp_path / "x.tshard.partial", tmp_path / "y.tshard.partial")
    assert ShardWriter(tmp_path / "y.tshard", CLASSES, K, records_per_block=2, resume=True).resumed_records == 2


def test_shard_writer_refuses_another_header_and_other_ids(tmp_path):
    spec = dict(classes=CLASSES, k=K, records_per_block=2, provenance={"teacher": "t"})
    path = tmp_path / "x.tshard"
    with ShardWriter(path, **spec) as writer:
        for sample in (5, 6, 7):
            writer.append(sample, [0, 1, 2], [0.5, 0.3, 0.1])
    os.rename(path, tmp_path / "x.tshard.partial")
    before = (tmp_path / "x.tshard.partial").read_bytes()
    with pytest.raises(ShardError, match=r"\[manifest-mismatch\] the unfinished shard's header is not this "
                       r"writer's: provenance teacher 't' \(this writer: 'u'\).*x.tshard.partial"):
        ShardWriter(path, resume=True, **dict(spec, provenance={"teacher": "u"}))
    with pytest.raises(ShardError, match=r"block 0 holds sample id 5 at ordinal 0, where this writer's order "
                       r"puts sample id 9"):
        ShardWriter(path, resume=True, expected_ids=[9, 6, 7], **spec)
    assert (tmp_path / "x.tshard.partial").read_bytes() == before          # refused before any change
    assert ShardWriter(path, resume=True, expected_ids=[5, 6, 7], **spec).resumed_records == 2


# ---- stop and resume -----------------------------------------------------------------------------------


@pytest.mark.parametrize("world, stop_after", [(2, 1), (2, 4), (2, 8), (2, 9), (2, 12), (2, 15), (1, 5), (1, 8)])
def test_stop_and_resume_is_identical(tmp_path, references, world, stop_after):
    """A stop after n batches (n·3 records: a tail unless a multiple of 4) leaves the complete blocks in
    `.partial` and the rest in `.tail`; the resumed pass teaches from the batch of the first missing record
    on, so no batch is taught twice, and ends identical. A rank's share is 23 records (8 batches) with 2
    ranks, 45 (15 batches) with one: 8 batches of 2 ranks end epoch 0 exactly."""
    reference = references["e2" if world == 2 else "single"]
    first = Pass(tmp_path / "p", 2, world)
    assert not first.run(stop_after=stop_after)
    names = os.listdir(tmp_path / "p")
    share_length = len(first.share(0, 0))
    batches_per_epoch = -(-share_length // BATCH)
    epoch, batch = divmod(stop_after, batches_per_epoch)
    held = min(batch * BATCH, share_length)
    if batch and held % R:
        assert f"{shard_name(epoch, 0)}.tail" in names
    second = Pass(tmp_path / "p", 2, world, resume=True)
    assert second.run()
    assert_same_folder(tmp_path / "p", reference)
    # The resumed pass teaches from the batch after the last one taught: the records of the block not
    # completed came back from the tail.
    assert second.taught[0] == (epoch, 0, batch * BATCH)
    assert len(first.taught) + len(second.taught) == 2 * world * batches_per_epoch


def test_stop_at_the_end_of_an_epoch_commits_it(tmp_path, references):
    folder = tmp_path / "p"
    assert not Pass(folder, 2, 2).run(stop_after=8)             # 8 batches: epoch 0's 23 records
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {s["epoch"] for s in manifest["shards"]} == {0}
    assert not [name for name in os.listdir(folder) if ".partial" in name or ".tail" in name]
    assert Pass(folder, 2, 2, resume=True).run()
    assert_same_folder(folder, references["e2"])


def crashed_state(tmp_path, references, epoch, rank, cut):
    """The folder as a crash leaves it while rank `rank` writes epoch `epoch`: earlier epochs committed,
    the other rank's shard of `epoch` finished, and this rank's `.partial` the first `cut` bytes of what
    the uninterrupted writer ends with (a prefix of any length: torn blocks, the last short block, a torn
    index or footer)."""
    folder = tmp_path / f"crash-{epoch}-{rank}-{cut}"
    shutil.copytree(references["e2"], folder)
    name = shard_name(epoch, rank)
    final = (folder / name).read_bytes()
    (folder / name).unlink()
    (folder / f"{name}.partial").write_bytes(final[:cut])
    if epoch == 1:
        shutil.copy(os.path.join(references["e1"], "manifest.json"), folder / "manifest.json")
    else:
        (folder / "manifest.json").unlink()
        (folder / shard_name(1, 0)).unlink()
        (folder / shard_name(1, 1)).unlink()
    return folder, len(final)


def test_partial_cut_at_random_lengths(tmp_path, references):
    rng = random.Random(1)
    size = os.path.getsize(os.path.join(references["e2"], shard_name(1, 1)))
    cuts = [0, 5, 30, size - 1, size] + [rng.randrange(size) for _ in range(12)]
    for i, cut in enumerate(cuts):
        epoch, rank = (1, 1) if i % 3 else (0, i % 2)
        folder, _ = crashed_state(tmp_path, references, epoch, rank, cut)
        assert Pass(folder, 2, 2, resume=True).run()
        assert_same_folder(folder, references["e2"])
        shutil.rmtree(folder)


def test_damaged_block_in_partial_is_computed_again(tmp_path, references):
    folder, size = crashed_state(tmp_path, references, 1, 0, 10 ** 9)
    partial = folder / f"{shard_name(1, 0)}.partial"
    data = bytearray(partial.read_bytes())
    data[len(data) // 2] ^= 0x40           # a block in the middle: it and every block after are dropped
    partial.write_bytes(bytes(data))
    resumed = Pass(folder, 2, 2, resume=True)
    assert resumed.run()
    assert_same_folder(folder, references["e2"])
    assert 0 < resumed.taught[0][2] < 23 and resumed.taught[0][:2] == (1, 0)


def test_damaged_or_misplaced_tail_is_deleted_and_computed_again(tmp_path, references):
    for damage in ("byte", "ordinal"):
        folder = tmp_path / damage
        first = Pass(folder, 2, 2)
        assert not first.run(stop_after=2)            # 6 records: a block of 4, a tail of 2
        tail = folder / f"{shard_name(0, 0)}.tail"
        data = bytearray(tail.read_bytes())
        if damage == "byte":
            data[-40] ^= 0x01
            tail.write_bytes(bytes(data))
        else:                                         # a whole, valid tail that starts elsewhere
            shutil.copy(tail, tmp_path / "t.tshard.tail")
            header = first.writers[0].shard_header(0)
            assert read_tail(tmp_path / "t.tshard", header, 4) is not None
            assert read_tail(tmp_path / "t.tshard", header, 8) is None
            (folder / f"{shard_name(0, 0)}.partial").write_bytes(
                (folder / f"{shard_name(0, 0)}.partial").read_bytes()[:-5])      # the block torn: 0 kept
        resumed = Pass(folder, 2, 2, resume=True)
        assert resumed.run()
        assert_same_folder(folder, references["e2"])
        assert resumed.taught[0] == (0, 0, 3 if damage == "byte" else 0)


def test_more_epochs_continue_the_seed_stream(tmp_path, references):
    folder = tmp_path / "p"
    shutil.copytree(references["e1"], folder)
    assert PassRecord.read(folder).epochs == 1
    assert Pass(folder, 2, 2, resume=True).run()
    assert PassRecord.read(folder).epochs == 2
    assert_same_folder(folder, references["e2"])


def test_a_repeat_in_a_share_is_written_once(tmp_path):
    writer = TeacherPassWriter(tmp_path / "p", KEYS, CLASSES, K, records_per_block=2, epochs=1, batch_size=2,
                               rank=0, world_size=1)
    probabilities = (np.array([[0, 1, 2]] * 2), np.array([[0.5, 0.2, 0.1]] * 2))
    with writer.shard(0, [4, 7, 4, 9]) as shard:
        shard.add([4, 7], probabilities=probabilities)
        shard.add([4, 9], probabilities=probabilities)
    assert shard.records == 3 and shard.skipped == 1
    with pytest.raises(PassError, match=r"epoch0000-rank000.tshard: \[internal\] the batch at position 0 holds "
                       r"sample 7 at row 0, where the epoch's order has sample 4"):
        with TeacherPassWriter(tmp_path / "q", KEYS, CLASSES, K, epochs=1, batch_size=2, rank=0,
                               world_size=1).shard(0, [4, 7]) as shard:
            shard.add([7, 4], probabilities=probabilities)


# ---- refusals ------------------------------------------------------------------------------------------


def refused(folder, match, **options):
    before = folder_bytes(folder) if os.path.isdir(folder) else None
    with pytest.raises((PassError, ShardError)) as info:
        Pass(folder, **options).run()
    line = str(info.value)
    assert "\n" not in line and str(folder) in line, line
    assert match in line, line
    if before is not None:
        assert folder_bytes(folder) == before          # nothing in the folder changed
    return line


def test_refusals(tmp_path, references):
    folder = tmp_path / "p"
    assert not Pass(folder, 2, 2).run(stop_after=10)
    refused(folder, '[mismatch] the folder holds another pass: seed is "0" in the folder, "1" in this run',
            epochs=2, seed=1, resume=True)
    refused(folder, 'world_size is "2" in the folder, "1" in this run', epochs=2, world=1, resume=True)
    refused(folder, 'records_per_block is "4" in the folder, "8" in this run', epochs=2, resume=True,
            records_per_block=8)
    refused(folder, "[usage] the folder holds a teacher pass (pass.json); continue it with resume", epochs=2)
    (tmp_path / "empty").mkdir()
    refused(tmp_path / "empty", "[mismatch] not a teacher pass folder (no pass.json)", epochs=2, resume=True)
    refused(tmp_path / "missing", "[mismatch] not a teacher pass folder", epochs=2, resume=True)
    other_keys = KEYS[:-1] + ["sample-zzz"]
    refused(folder, "keys.tsk: [mismatch] the key table is not this pass's", epochs=2, resume=True,
            keys=other_keys)
    dataset = tmp_path / "dataset"
    shutil.copytree(references["e1"], dataset)
    os.unlink(dataset / PASS_NAME)
    refused(dataset, "[usage] the folder already holds a dataset (epoch0000-rank000.tshard)", epochs=1)

    # Fewer epochs than committed.
    done = tmp_path / "done"
    shutil.copytree(references["e2"], done)
    refused(done, "[mismatch] the pass has committed 2 epochs; 1 epochs would drop some", epochs=1, resume=True)

    # A damaged finished shard is reported as the verifier reports it and kept as it is.
    shard = done / shard_name(0, 1)
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF                             # inside a block's payload
    shard.write_bytes(bytes(data))
    line = refused(done, f"{shard}: [block-crc]", epochs=2, resume=True)
    assert "a finished shard of the pass is damaged: it is kept as it is" in line

    # A pass.json outside the grammar, or another format.
    bad = tmp_path / "bad"
    shutil.copytree(references["e1"], bad)
    (bad / PASS_NAME).write_text('{"format": "tinyshard-teacher-pass", "format": "x"}')
    refused(bad, "pass.json: [mismatch] not a pass record: duplicate JSON member name 'format'", epochs=1,
            resume=True)


def test_partial_of_another_pass_is_refused(tmp_path, references):
    folder, _ = crashed_state(tmp_path, references, 1, 0, 10 ** 9)
    partial = folder / f"{shard_name(1, 0)}.partial"
    other = tmp_path / "other"
    shutil.copytree(references["e2"], other)
    # Rank 1's blocks under rank 0's name: whole and valid, but another header (rank 1).
    partial.write_bytes((other / shard_name(1, 1)).read_bytes())
    refused(folder, "[manifest-mismatch] the unfinished shard's header is not this writer's: rank 1 (this "
            "writer: 0)", epochs=2, resume=True)


def test_pass_record_round_trip(tmp_path):
    record = PassRecord(3, {"seed": "0", "teacher": "ü"})
    record.write(tmp_path)
    assert PassRecord.read(tmp_path) == record
    assert not os.path.exists(tmp_path / "pass.json.partial")
    assert record.difference(PassRecord(3, {"seed": "0"})) == 'teacher is absent in the folder, "ü" in this run'
    assert PassRecord(3, {}).difference(record) == 'seed is "0" in the folder, absent in this run'
    for text, message in (('{"format": "tinyshard-teacher-pass", "version": 2, "epochs": 1, "fingerprint": {}}',
                           "version 2 is not 1"),
                          ('{"format": "tinyshard-teacher-pass", "version": 1, "epochs": 1.0, "fingerprint": {}}',
                           "epochs must be an integer"),
                          ('{"format": "tinyshard-teacher-pass", "version": 1, "epochs": 1, "fingerprint": {"a": 1}}',
                           "fingerprint must be an object of strings")):
        (tmp_path / "pass.json").write_text(text)
        with pytest.raises(PassError, match=message):
            PassRecord.read(tmp_path)


# ---- the example under torchrun ------------------------------------------------------------------------

ARCH = json.dumps({"embed_dims": [8, 16, 16, 16], "depths": [1, 1, 1, 1], "num_heads": [1, 1, 1, 1],
                   "window_sizes": [2, 2, 2, 2]})


def torchrun_command(store, out, *extra):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            os.path.join(EXAMPLES, "teacher_pass.py"), "--images", str(store), "--out", str(out),
            "--model-args", ARCH, "--img-size", "16", "--epochs", "3", "--k", "3", "--batch", "5",
            "--workers", "0", "--records-per-block", "8", "--threads", "1", *extra]


def environment():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")


def worker_pids(launcher):
    """The ranks torchrun started (its children running teacher_pass.py)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read()
        except OSError:
            continue
        if parent == launcher and b"teacher_pass.py" in command:
            pids.append(int(pid))
    return sorted(pids)


def holds_a_block(path):
    """Whether a shard file extends past its header (preamble, H bytes of JSON, CRC) and one block header."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return len(data) >= 16 and len(data) > 20 + int.from_bytes(data[12:16], "little") + 32


@pytest.mark.parametrize("how", ["SIGTERM to torchrun", "SIGUSR1 to one rank"])
def test_example_under_torchrun_stops_and_resumes(tmp_path_factory, how):
    """Two gloo processes. SIGTERM to torchrun reaches both ranks; SIGUSR1 to one rank reaches only it, and
    the ranks agree to stop after the same batch. Each leaves its `.partial` and `.tail`; --resume ends
    identical to a pass that never stopped."""
    from tinyshard.importers import import_digits
    root = tmp_path_factory.getbasetemp() / "torchrun-pass"
    store = root / "digits.tsimg"
    reference = root / "reference"
    if not reference.exists():
        root.mkdir(exist_ok=True)
        import_digits(DIGITS_CSV, store, upscale=2, limit=150)
        result = subprocess.run(torchrun_command(store, reference), capture_output=True, text=True,
                                env=environment(), timeout=600)
        assert result.returncode == 0, result.stderr
        assert "verify: clean" in result.stdout
    out = tmp_path_factory.mktemp("stopped") / "pass"
    process = subprocess.Popen(torchrun_command(store, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=environment())
    # Signal once rank 1 has a complete block of epoch 1 in its .partial: epoch 0 is committed by then.
    partial = out / f"{shard_name(1, 1)}.partial"
    deadline = time.time() + 300
    while time.time() < deadline and not holds_a_block(partial):
        time.sleep(0.02)
    if how == "SIGTERM to torchrun":
        process.send_signal(signal.SIGTERM)
    else:
        os.kill(worker_pids(process.pid)[1], signal.SIGUSR1)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode != 0
    cause = "stopped by SIGTERM" if how == "SIGTERM to torchrun" else "stopped by a request on another rank"
    assert f"{cause} after 1 committed epoch; continue with the same command and --resume" in stdout, stdout + stderr
    names = os.listdir(out)
    assert "manifest.json" in names and shard_name(2, 0) not in names
    assert any(name.endswith(".tshard.partial") for name in names)
    if how == "SIGUSR1 to one rank":
        # As if rank 1 had crashed a block earlier: its last block torn, its tail gone. The ranks then
        # resume from different batches; they must agree on the earlier one (every rank runs the same
        # batches, or the per-batch agreement would wait forever) and rank 0 keeps what it holds.
        partial = out / f"{shard_name(1, 1)}.partial"
        partial.write_bytes(partial.read_bytes()[:-7])
        tail = out / f"{shard_name(1, 1)}.tail"
        if tail.exists():
            tail.unlink()
    result = subprocess.run(torchrun_command(store, out, "--resume"), capture_output=True, text=True,
                            env=environment(), timeout=600)
    assert result.returncode == 0, result.stderr
    assert "kept from an interrupted run" in result.stdout and "verify: clean" in result.stdout
    assert_same_folder(out, reference)
    # The same folder refuses another seed, with one line naming it and the key.
    result = subprocess.run(torchrun_command(store, out, "--resume", "--seed", "4"), capture_output=True,
                            text=True, env=environment(), timeout=600)
    assert result.returncode != 0
    assert f'error: {out}: [mismatch] the folder holds another pass: seed is "0" in the folder, "4" in this run' \
        in result.stderr
