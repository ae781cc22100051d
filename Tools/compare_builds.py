#!/usr/bin/env python3
"""Two builds side by side, interleaved round by round: is a change within noise?

    python3 Tools/compare_builds.py --before DIR --after DIR [--rounds 3] [--seconds 1]
        [--metrics dense,sparse,convert,train64] [--dataset FOLDER] [--lookups N] [--rows N]

DIR is a folder holding a release build's `tinyshard-paired` and `tinyshard-bench` (e.g. copies of
.build/release of two commits). Each round runs `tinyshard-paired METRICS` of one build, then of the other
(the order alternates every round), and with --dataset also `tinyshard-bench scale FOLDER`; every number
is the best of a build's rounds (on a shared machine, the run least disturbed), and the table gives
after / before. Paired CHECK lines (decode checksums, train-step losses as bit patterns) must agree
between the builds: a change that moves numbers is caught there, not only in the speed.

Run from the repository root (tinyshard-paired finds ../shared/fixtures from there).
"""

import argparse
import json
import os
import subprocess
import sys
from collections import defaultdict

# Scale numbers where smaller is better (times, memory); everything else is a rate.
SMALLER_IS_BETTER = ("_s", "_ms", "_us", "_mb")


def run(command):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return result.stdout


def paired(binary, args):
    values, checks = {}, {}
    for line in run([os.path.join(binary, "tinyshard-paired"), args.metrics, "--seconds", str(args.seconds),
                     "--work", args.work]).splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "PAIRED":
            values[f"{parts[1]} ({parts[3]})"] = float(parts[2])
        elif len(parts) >= 3 and parts[0] == "PAIRED-CHECK":
            checks[parts[1]] = parts[2]
    return values, checks


def scale(binary, args):
    out = run([os.path.join(binary, "tinyshard-bench"), "scale", args.dataset, "--lookups", str(args.lookups),
               "--rows", str(args.rows)])
    numbers = json.loads(out)
    return {f"scale {name}": float(value) for name, value in numbers.items() if name not in ("records", "keys", "keys_measured")}


def better(name, a, b):
    """The better of two measurements of one metric."""
    smaller = name.startswith("scale ") and name.endswith(SMALLER_IS_BETTER)
    return min(a, b) if smaller else max(a, b)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--metrics", default="dense,sparse,convert,train64")
    parser.add_argument("--work", default="/tmp/compare-builds")
    parser.add_argument("--dataset", help="a converted dataset for `tinyshard-bench scale` (optional)")
    parser.add_argument("--lookups", type=int, default=20000)
    parser.add_argument("--rows", type=int, default=100000)
    args = parser.parse_args()

    builds = {"before": args.before, "after": args.after}
    best = defaultdict(dict)
    checks = defaultdict(lambda: defaultdict(set))
    order = []
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"CPU {cpu}; load before {open('/proc/loadavg').read().split()[:3]}", flush=True)
    for round_ in range(args.rounds):
        for name in (["before", "after"] if round_ % 2 == 0 else ["after", "before"]):
            values, check = paired(builds[name], args)
            if args.dataset:
                values.update(scale(builds[name], args))
            for metric, value in values.items():
                if metric not in order:
                    order.append(metric)
                previous = best[metric].get(name)
                best[metric][name] = value if previous is None else better(metric, previous, value)
            for key, value in check.items():
                checks[key][name].add(value)
            print(f"  round {round_ + 1} {name} done (load {open('/proc/loadavg').read().split()[0]})", flush=True)

    print(f"\n| metric | before ({args.before}) | after ({args.after}) | after / before |")
    print("|---|---:|---:|---:|")
    for metric in order:
        b, a = best[metric].get("before"), best[metric].get("after")
        fmt = lambda v: "n/a" if v is None else (f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}")
        ratio = "n/a" if not b or a is None else f"{a / b:.3f}"
        print(f"| {metric} | {fmt(b)} | {fmt(a)} | {ratio} |")
    print()
    for key, per_build in checks.items():
        values = set().union(*per_build.values())
        print(f"CHECK {key}: {'same in both builds and every round' if len(values) == 1 else 'DIFFERENT: ' + repr(dict(per_build))}")
    print(f"load after {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
