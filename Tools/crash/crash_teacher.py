#!/usr/bin/env python3
"""Kill a teacher pass at random points with SIGKILL, resume it each time, and check that it ends byte for
byte as a pass that was never interrupted (Spec/PASS.md).

    python3 Tools/crash/crash_teacher.py [--bin .build/release/tinyshard] [--kills 20] [--ranks 1|2]
                                         [--python] [--work DIR] [--seed S]

Swift (`tinyshard teacher`, one process or `mpirun -np 2`): a teacher is trained for one epoch on the
embedded digits, an uninterrupted pass is written once as the reference, then passes are started and
SIGKILLed (the whole process group: mpirun and its ranks) after a random delay between 0 and the reference
pass's wall time, resumed with `--resume` (or started anew when the kill came before `pass.json` existed),
killed again, and so on until a run finishes; then every file of the folder must equal the reference's.
Rounds repeat until --kills kills have landed. A kill hits anywhere: before the key table, inside a block,
between a shard's rename and the manifest, while the manifest is written.

--python does the same with the PyTorch writer (`examples/teacher_pass.py` under `torchrun --standalone`,
2 processes, with $TINYSHARD_PYTHON or the repository's .venv/bin/python; the tinyshard package it imports
is the one on $PYTHONPATH, else the installed one). Its teacher is a small timm TinyViT drawn from the pass's
seed, so the Swift binary only imports the image store. A kill also hits the torchrun agent and both ranks
anywhere: while they import torch, inside a block, between a rank's rename and the manifest.

--full-disk (Swift, root, Linux): the pass writes into a tmpfs mounted with room for only a share of the
reference's bytes (several shares between 5% and 95%). The run must stop with a one-line error, not a
crash; then the tmpfs is given room (remount) and `--resume` must end byte-identical to the reference:
a full disk leaves the last committed block intact.

Exit status 0 when every round ended identical to the reference, 1 otherwise.
"""

import argparse
import filecmp
import os
import random
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ARCH = {"embed_dims": [8, 16, 16, 16], "depths": [1, 1, 1, 1], "num_heads": [1, 1, 1, 1],
        "window_sizes": [2, 2, 2, 2], "num_classes": 10, "img_size": 16}


def mpirun():
    return ["mpirun", "--allow-run-as-root", "--oversubscribe", "--mca", "btl_vader_single_copy_mechanism", "none",
            "-np", "2", "-x", "OMP_NUM_THREADS"]


class Experiment:
    def __init__(self, args):
        self.args = args
        self.work = args.work
        self.env = dict(os.environ, OMP_NUM_THREADS="1")
        self.where = []
        os.makedirs(self.work, exist_ok=True)

    def run(self, command, check=True):
        result = subprocess.run(command, cwd=self.work, env=self.env, capture_output=True, text=True)
        if check and result.returncode != 0:
            sys.exit(f"failed ({result.returncode}): {' '.join(command)}\n{result.stdout}{result.stderr}")
        return result

    def prepare(self):
        """The image store and, for the Swift pass, a teacher trained for one epoch (the Python pass draws
        its teacher from the seed)."""
        self.store = os.path.join(self.work, "digits.tsimg")
        if not os.path.exists(self.store):
            self.run([self.args.bin, "images", "import", os.path.join(ROOT, "Tools/data/digits.csv.gz"), "--out", self.store,
                      "--upscale", "2"])
        self.arch = os.path.join(self.work, "arch.json")
        with open(self.arch, "w") as f:
            import json
            json.dump(ARCH, f)
        self.weights = os.path.join(self.work, "teacher", "model.safetensors")
        if not self.args.python and not os.path.exists(self.weights):
            self.run([self.args.bin, "train", "--images", self.store, "--arch", self.arch, "--recipe", "digits",
                      "--hard-labels", "--epochs", "1", "--batch", "16", "--out", os.path.join(self.work, "teacher")])

    def command(self, out, resume):
        if self.args.python:
            python = os.environ.get("TINYSHARD_PYTHON") or os.path.join(ROOT, ".venv", "bin", "python")
            # --standalone: a free port for every run, so a killed run's port (or another torchrun on this
            # machine) never makes the next one fail to start.
            torchrun = [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
            command = torchrun + [os.path.join(ROOT, "Tools/python/examples/teacher_pass.py"), "--images", self.store,
                                  "--out", out, "--model", "tiny_vit_5m_224", "--model-args", self.arch_python(),
                                  "--img-size", "16", "--epochs", str(self.args.epochs), "--k", "3", "--batch", "5", "--workers", "0",
                                  "--records-per-block", "8", "--threads", "1"]
            return command + (["--resume"] if resume else [])
        command = [self.args.bin, "teacher", "--images", self.store, "--weights", self.weights, "--arch", self.arch,
                   "--k", "3", "--epochs", str(self.args.epochs), "--batch", "5", "--records-per-block", "8", "--seed", "3",
                   "--recipe", "digits", "--out", out] + (["--resume"] if resume else [])
        return (mpirun() if self.args.ranks == 2 else []) + command

    def arch_python(self):
        import json
        return json.dumps({k: v for k, v in ARCH.items() if k not in ("num_classes", "img_size")})

    def reference(self):
        out = os.path.join(self.work, "reference")
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        self.run(self.command(out, resume=False))
        self.duration = time.perf_counter() - start
        return out

    def start(self, out):
        resume = os.path.exists(os.path.join(out, "pass.json"))
        return subprocess.Popen(self.command(out, resume), cwd=self.work, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)

    def round(self, out, rng):
        """Start, kill, resume until a run finishes; returns the number of kills."""
        shutil.rmtree(out, ignore_errors=True)
        kills = 0
        while True:
            process = self.start(out)
            try:
                stdout, stderr = process.communicate(timeout=rng.uniform(0, self.duration))
            except subprocess.TimeoutExpired:
                kill_everything(process, out)
                kills += 1
                self.where.append(where_killed(out))
                continue
            if process.returncode != 0:
                sys.exit(f"a resumed run failed ({process.returncode}):\n{stdout}{stderr}")
            return kills


def kill_everything(process, out):
    """SIGKILL the run as a node that dies takes it: the launcher's process group and every process whose command
    line names the run's folder, all before waiting for any. mpirun's ranks and torchrun's workers run in process
    groups (torchrun's: sessions) of their own, and torchrun's workers go on to finish the pass when only the
    launcher dies; waiting for the launcher's pipes first would wait for them."""
    while True:
        left = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if out.encode() in f.read():
                        left.append(int(pid))
            except OSError:
                continue
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not left:
            break
        time.sleep(0.01)
    process.communicate()


def where_killed(out):
    """What the folder held when the kill landed: the phase of the pass it interrupted."""
    names = os.listdir(out) if os.path.isdir(out) else []
    if "pass.json" not in names:
        return "before pass.json"
    committed = 0
    if "manifest.json" in names:
        import json
        with open(os.path.join(out, "manifest.json")) as f:
            committed = len({shard["epoch"] for shard in json.load(f)["shards"]})
    partial = any(name.endswith(".tshard.partial") for name in names)
    return f"{committed} epochs committed, {'a shard partly written' if partial else 'between shards'}"


def same_folders(a, b):
    names = sorted(os.listdir(a))
    if names != sorted(os.listdir(b)):
        return f"files differ: {names} vs {sorted(os.listdir(b))}"
    for name in names:
        if not filecmp.cmp(os.path.join(a, name), os.path.join(b, name), shallow=False):
            return f"{name} differs"
    return None


def folder_bytes(folder):
    return sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder))


def full_disk(experiment, reference):
    """Runs the pass on a tmpfs too small for it, then resumes it with room; returns the failed rounds."""
    size = folder_bytes(reference)
    mount = os.path.join(experiment.work, "tmpfs")
    os.makedirs(mount, exist_ok=True)
    failures = 0
    for share in (0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95):
        room = max(4096, int(size * share) // 4096 * 4096)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={room}", "tmpfs", mount], capture_output=True, text=True)
        if mounted.returncode != 0:
            sys.exit(f"--full-disk needs to mount a tmpfs (root on Linux): {mounted.stderr.strip()}")
        try:
            out = os.path.join(mount, "pass")
            first = experiment.run(experiment.command(out, resume=False), check=False)
            message = (first.stderr.strip().splitlines() or [""])[-1]
            stopped = first.returncode not in (0, -signal.SIGSEGV, -signal.SIGABRT, -signal.SIGILL, -signal.SIGTRAP)
            one_line = len(first.stderr.strip().splitlines()) == 1
            subprocess.run(["mount", "-o", f"remount,size={4 * size + (1 << 20)}", mount], check=True)
            resume = os.path.exists(os.path.join(out, "pass.json"))
            second = experiment.run(experiment.command(out, resume=resume), check=False)
            problem = None
            if first.returncode == 0:
                problem = "the pass finished although the disk was too small"
            elif not stopped or not one_line:
                problem = f"not a one-line error (status {first.returncode}): {first.stderr.strip()[:400]}"
            elif second.returncode != 0:
                problem = f"the resume failed ({second.returncode}): {second.stderr.strip()[:400]}"
            else:
                problem = same_folders(reference, out)
            failures += problem is not None
            print(f"room {room:,} B of {size:,} ({share:.0%}): {message[:160]!r}; resumed: "
                  f"{'identical' if problem is None else problem}", flush=True)
        finally:
            subprocess.run(["umount", mount], check=False)
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build/release/tinyshard"))
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--ranks", type=int, choices=[1, 2], default=1)
    parser.add_argument("--python", action="store_true", help="the PyTorch writer under torchrun (2 processes)")
    parser.add_argument("--work", default="/tmp/tinyshard-crash")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=20, help="epochs of each pass")
    parser.add_argument("--full-disk", action="store_true",
                        help="a tmpfs too small for the pass, then a resume with room (Swift, root)")
    args = parser.parse_args()
    args.bin = os.path.abspath(args.bin)        # the runs start in --work
    experiment = Experiment(args)
    experiment.prepare()
    reference = experiment.reference()
    what = "python, torchrun 2" if args.python else f"swift, {args.ranks} process{'es' if args.ranks > 1 else ''}"
    print(f"{what}: reference pass {experiment.duration:.2f} s", flush=True)
    if args.full_disk:
        failures = full_disk(experiment, reference)
        print(f"{what}, full disk: {failures} of 7 rounds failed")
        return 1 if failures else 0
    rng = random.Random(args.seed)
    kills, rounds, failures = 0, 0, 0
    while kills < args.kills:
        out = os.path.join(args.work, f"crashed{rounds}")
        landed = experiment.round(out, rng)
        kills += landed
        rounds += 1
        problem = same_folders(reference, out)
        failures += problem is not None
        print(f"round {rounds}: {landed} kills, then finished: {'identical' if problem is None else problem}", flush=True)
    from collections import Counter
    for phase, count in sorted(Counter(experiment.where).items()):
        print(f"  kills {phase}: {count}")
    print(f"{what}: {kills} kills in {rounds} rounds, {failures} rounds differ from the uninterrupted pass")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
