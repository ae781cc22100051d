#!/usr/bin/env python3
"""Distributed TinyShard on one host: student img/s at np=1 x 2 threads vs np=2 x 1 thread, the allreduce's
share of step time, and the teacher pass on two ranks against one (records bit for bit, verify).

Everything runs in one invocation, configurations interleaved (A B C, A B C, ...) so that a shared
machine's load hits them alike; the table reports the median per-step img/s of each configuration over
its steps after the first two (oneDNN and the buffer pool warm up there) and over all repeats.

    swift build -c release --product tinyshard
    python3 Tools/bench_mpi.py [--images 480] [--repeats 2] [--size 112] [--batch 32]

The student is TinyViT-5M with 1000 classes at --size px on synthetic images (uniform noise, labels
0..999), hard labels, views drawn from the tinyvit recipe (RandomResizedCrop + flip + RandAugment): the
train-step table's model and batch (docs/benchmarks.md; results in docs/distributed.md). Needs numpy, mpirun (Open MPI) and the release binary.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load():
    return os.getloadavg()


def run(cmd, env=None, check=True):
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(cmd)}\n{result.stdout}\n{result.stderr}")
    return result


def environment(threads):
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    return env


def launch(binary, ranks, threads, args, mpirun_options=()):
    """np=1 runs the binary itself (no mpirun: MPI is never initialised); np>1 runs it under mpirun, which
    binds each rank to its own core unless `mpirun_options` say otherwise."""
    if ranks == 1:
        return run([binary] + args, env=environment(threads))
    return run(["mpirun", "--oversubscribe", *mpirun_options, "-np", str(ranks), "-x", "OMP_NUM_THREADS", binary] + args,
               env=environment(threads))


def step_rates(run_dir):
    rows = []
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        header = f.readline().strip().split(",")
        column = header.index("img_per_s")
        for line in f:
            rows.append(float(line.strip().split(",")[column]))
    return rows[2:]


def shares(stdout):
    """The step-time split the train command prints (percent)."""
    line = next((l for l in stdout.splitlines() if l.startswith("step time:")), "")
    def grab(label):
        for part in line.replace("(", ",").split(","):
            part = part.strip()
            if part.startswith(label):
                return float(part[len(label):].strip().rstrip("%").split("%")[0])
        return 0.0
    return {"data": grab("step time: data wait"), "student": grab("student"), "allreduce": grab("allreduce"),
            "waiting": grab("waiting for other ranks")}


def records(binary, dataset):
    out = run([binary, "dump", dataset]).stdout
    table = {}
    for line in out.splitlines():
        r = json.loads(line)
        key = (r["epoch"], r["sample_id"])
        r.pop("rank"), r.pop("ordinal")
        table.setdefault(key, []).append(r)
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/release/tinyshard"))
    parser.add_argument("--images", type=int, default=480)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    if not os.path.exists(args.binary):
        sys.exit(f"no {args.binary}: swift build -c release --product tinyshard")
    if shutil.which("mpirun") is None:
        sys.exit("no mpirun: apt-get install openmpi-bin libopenmpi-dev (Tools/setup.sh)")
    work = tempfile.mkdtemp(prefix="tinyshard-bench-mpi-")
    load_before = load()
    try:
        rng = np.random.default_rng(0)
        side = args.size + args.size // 7
        np.save(os.path.join(work, "x.npy"), rng.integers(0, 256, size=(args.images, side, side, 3), dtype=np.uint8))
        np.save(os.path.join(work, "y.npy"), rng.integers(0, 1000, size=args.images).astype(np.int64))
        with open(os.path.join(work, "classes.txt"), "w") as f:
            f.write("".join(f"c{i:03d}\n" for i in range(1000)))
        store = os.path.join(work, "store.tsimg")
        run([args.binary, "images", "import", os.path.join(work, "x.npy"), "--labels", os.path.join(work, "y.npy"),
             "--class-names", os.path.join(work, "classes.txt"), "--out", store])
        train = ["train", "--images", store, "--arch", "5m", "--image-size", str(args.size), "--recipe", "tinyvit",
                 "--hard-labels", "--epochs", "1", "--batch", str(args.batch), "--eval-every", "0", "--held-out", "0.1"]
        configs = [("np=1 x 2 threads", 1, 2, ()), ("np=2 x 1 thread", 2, 1, ()),
                   ("np=2 x 1 thread, --bind-to none", 2, 1, ("--bind-to", "none")), ("np=1 x 1 thread", 1, 1, ())]
        rates = {name: [] for name, *_ in configs}
        split = {name: [] for name, *_ in configs}
        for repeat in range(args.repeats):
            for index, (name, ranks, threads, options) in enumerate(configs):
                out_dir = os.path.join(work, f"run-{index}-{repeat}")
                result = launch(args.binary, ranks, threads, train + ["--out", out_dir], options)
                rates[name] += step_rates(out_dir)
                split[name].append(shares(result.stdout))
                print(f"  {name} repeat {repeat}: median {statistics.median(step_rates(out_dir)):.2f} img/s; "
                      f"{result.stdout.splitlines()[-2] if len(result.stdout.splitlines()) > 1 else ''}", file=sys.stderr)
        # Teacher pass: the first np=1 run's student as a 5M teacher, two epochs, on 2 ranks of one thread,
        # against one process of one thread (same kernels) and of two threads.
        weights = os.path.join(work, "run-0-0", "model.safetensors")
        teacher = ["teacher", "--images", store, "--weights", weights, "--arch", "5m", "--image-size", str(args.size),
                   "--k", "10", "--epochs", "2", "--batch", "64", "--held-out", "0.1", "--recipe", "tinyvit"]
        passes = {}
        for name, ranks, threads in [("np=2 x 1", 2, 1), ("np=1 x 1", 1, 1), ("np=1 x 2", 1, 2)]:
            folder = os.path.join(work, "teacher-" + name.replace(" ", ""))
            launch(args.binary, ranks, threads, teacher + ["--out", folder])
            passes[name] = records(args.binary, folder)
        two = passes["np=2 x 1"]
        total = sum(len(c) for c in two.values())
        def equal(other):
            return sum(1 for key, copies in two.items() for r in copies if passes[other].get(key, [None])[0] == r)
        verify = run([args.binary, "verify", os.path.join(work, "teacher-np=2x1")], check=False)
        load_after = load()

        base = statistics.median(rates["np=1 x 2 threads"])
        print(f"TinyViT-5M, 1000 classes, {args.size} px, global batch {args.batch}, {args.images} synthetic images "
              f"(~{len(rates['np=1 x 2 threads']) // args.repeats + 2} steps per run, first 2 dropped), {args.repeats} repeats interleaved; "
              f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
        print()
        print("| processes x threads | img/s (median step) | vs np=1 x 2 threads | allreduce share | waiting for other ranks | data wait |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, *_ in configs:
            s = split[name]
            mean = lambda k: sum(x[k] for x in s) / len(s)
            print(f"| {name} | {statistics.median(rates[name]):.2f} | {statistics.median(rates[name]) / base:.2f}x | "
                  f"{mean('allreduce'):.1f}% | {mean('waiting'):.1f}% | {mean('data'):.1f}% |")
        print()
        one = passes["np=1 x 1"]
        print(f"Teacher pass (5M, {args.size} px, K=10, 2 epochs): np=2 x 1 thread wrote {total} records "
              f"({total - len(two)} padding duplicates) for {len(two)} (epoch, sample) pairs "
              f"(np=1 has {len(one)}, missing from np=2: {len(set(one) - set(two))}); bit for bit equal to np=1 x 1 thread: "
              f"{equal('np=1 x 1')} of {total}; to np=1 x 2 threads: {equal('np=1 x 2')} of {total}; "
              f"verify: {'clean' if verify.returncode == 0 else 'PROBLEMS: ' + verify.stdout.strip()}")
    finally:
        if args.keep:
            print(f"work folder: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
