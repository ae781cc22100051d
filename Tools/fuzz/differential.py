#!/usr/bin/env python3
"""Differential fuzzing: the same structure-aware mutated files through the Swift implementation and
the Python twin; fails where they disagree on clean vs not-clean, on the verifier's first code or on the
reader's first code (the check order of FORMAT.md 1.4 makes both deterministic).

    python3 Tools/fuzz/differential.py --bin .build/release/tinyshard-fuzz --cases 8000 [--seed 1] [--kinds shard,keys,manifest]

Cases come from `tinyshard-fuzz emit` (seeds: Spec/vectors, mutations that re-seal every checksum so
they reach the decoders); Swift's answers from `tinyshard-fuzz check`. Disagreeing files are kept in
--keep (default ./fuzz-differential). Prints a table per kind; exit 1 on any disagreement or crash.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

# With an AddressSanitizer build (CI uses the libFuzzer one), leak reports about Foundation's caches at
# exit would fail every call; memory errors still abort.
os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=0")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "Tools", "python"))

from tinyshard import ShardError, ShardReader, verify_shard  # noqa: E402
from tinyshard.keys import decode_keys  # noqa: E402
from tinyshard.manifest import parse_manifest  # noqa: E402


def python_outcome(kind, path):
    """(reader code, verifier clean, verifier first code) from the Python twin."""
    if kind == "shard":
        reader = None
        try:
            r = ShardReader(path)
            for _ in r:
                pass
            if len(r):
                r.find(0)
        except ShardError as error:
            reader = error.code
        problems = verify_shard(path)
        return reader, not problems, problems[0].code if problems else None
    with open(path, "rb") as f:
        data = f.read()
    try:
        (decode_keys if kind == "keys" else parse_manifest)(data)
        return None, True, None
    except ShardError as error:
        return error.code, False, error.code


def swift_outcomes(binary, kind, paths):
    out = {}
    for start in range(0, len(paths), 400):
        batch = paths[start:start + 400]
        result = subprocess.run([binary, "check", kind, *batch], capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"swift check crashed (exit {result.returncode}) on a batch from {batch[0]}:\n"
                             f"{result.stderr[-2000:]}")
        for line in result.stdout.splitlines():
            item = json.loads(line)
            out[item["file"]] = (item["reader"], item["clean"], item["first"])
    return out


def run_kind(binary, kind, cases, seed, keep):
    work = tempfile.mkdtemp(prefix=f"tinyshard-diff-{kind}-")
    try:
        target = {"shard": "shard", "keys": "keys", "manifest": "manifest"}[kind]
        subprocess.run([binary, "emit", target, "--seeds", os.path.join(ROOT, "Spec", "vectors"),
                        "--cases", str(cases), "--seed", str(seed), "--out", work], check=True,
                       stdout=subprocess.DEVNULL)
        paths = sorted(os.path.join(work, name) for name in os.listdir(work))
        started = time.time()
        swift = swift_outcomes(binary, kind, paths)
        swift_seconds = time.time() - started
        counts = {"cases": len(paths), "clean": 0, "invalid": 0, "clean differs": 0, "first verifier code differs": 0,
                  "reader code differs": 0, "python crash": 0}
        started = time.time()
        for path in paths:
            try:
                mine = python_outcome(kind, path)
            except Exception as exc:  # anything but a ShardError is a crash of the twin
                counts["python crash"] += 1
                _keep(keep, kind, path, f"python raised {type(exc).__name__}: {exc}")
                continue
            theirs = swift[path]
            counts["clean" if mine[1] else "invalid"] += 1
            for name, a, b in (("clean differs", mine[1], theirs[1]),
                               ("first verifier code differs", mine[2], theirs[2]),
                               ("reader code differs", mine[0], theirs[0])):
                if a != b:
                    counts[name] += 1
                    _keep(keep, kind, path, f"{name}: python {mine}, swift {theirs}")
        counts["swift s"] = round(swift_seconds, 1)
        counts["python s"] = round(time.time() - started, 1)
        return counts
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _keep(keep, kind, path, why):
    os.makedirs(keep, exist_ok=True)
    name = f"{kind}-{os.path.basename(path)}"
    shutil.copy(path, os.path.join(keep, name))
    with open(os.path.join(keep, name + ".txt"), "w") as f:
        f.write(why + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build", "release", "tinyshard-fuzz"))
    parser.add_argument("--cases", type=int, default=2000, help="cases per kind")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kinds", default="shard,keys,manifest")
    parser.add_argument("--keep", default="fuzz-differential")
    args = parser.parse_args()
    rows, failed = [], False
    for kind in args.kinds.split(","):
        counts = run_kind(args.bin, kind, args.cases, args.seed, args.keep)
        rows.append((kind, counts))
        failed |= any(counts[k] for k in ("clean differs", "first verifier code differs", "reader code differs", "python crash"))
    header = ["kind"] + list(rows[0][1].keys())
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for kind, counts in rows:
        print("| " + " | ".join([kind] + [str(v) for v in counts.values()]) + " |")
    if failed:
        print(f"DISAGREEMENTS: see {args.keep}/", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
