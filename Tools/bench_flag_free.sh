#!/usr/bin/env bash
# What dropping `-target-cpu haswell` costs, measured in one run: builds the last commit that still had
# the flag and this tree (flag-free, kernels chosen at run time), runs the same benchmark program
# (Sources/tinyshard-paired, copied into the baseline and added to its manifest) against each,
# interleaved round by round, and prints one table. Release builds; the fixtures' generator (../shared/fixtures) and numpy are needed
# for the decode rows.
#
#   Tools/bench_flag_free.sh [--base REV] [--rounds N] [--metrics dense,sparse,convert,train64,train224] [--seconds S]
#
# Each number is the best over the rounds of each build's best repetition (see PairedSpeed.swift): on a
# shared machine that is the run least disturbed by other jobs. The "portable" column is this tree with
# TINYSHARD_SIMD=portable (what a CPU without AVX2/F16C gets). The CHECK rows compare what each build
# computed (decode checksums, train-step losses as bit patterns): "same" means bit-identical results.
set -euo pipefail
cd "$(dirname "$0")/.."

base="" rounds=3 metrics="dense,sparse,convert,train64,train224" seconds=1
while [ $# -gt 0 ]; do
    case "$1" in
        --base) base="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --metrics) metrics="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        *) echo "usage: $0 [--base REV] [--rounds N] [--metrics LIST] [--seconds S]" >&2; exit 2 ;;
    esac
done

# The baseline: the newest commit in this history whose Package.swift still passes -target-cpu (after a
# merge, the other branch's tip: everything else equal, only the flag and its replacement differ).
# Built in a git-ignored work folder.
if [ -z "$base" ]; then
    for commit in $(git log --format=%H -- Package.swift); do
        if git show "$commit:Package.swift" | grep -q -- '"-target-cpu"'; then base="$commit"; break; fi
    done
    [ -n "$base" ] || { echo "no commit with -target-cpu in Package.swift; pass --base REV" >&2; exit 2; }
fi
work=".build-flagfree"
mkdir -p "$work"
rm -rf "$work/base-src"
mkdir -p "$work/base-src"
git archive "$base" | tar -x -C "$work/base-src"
# One measuring program for both: the baseline predates it, so it gets a copy and a manifest line.
rm -rf "$work/base-src/Sources/tinyshard-paired"
cp -R Sources/tinyshard-paired "$work/base-src/Sources/tinyshard-paired"
cat >> "$work/base-src/Package.swift" <<'MANIFEST'
// Added by Tools/bench_flag_free.sh (this commit predates the measuring program).
package.targets.append(.executableTarget(name: "tinyshard-paired", dependencies: ["ShardFormat", "ShardConvert", "TinyViT"]))
MANIFEST

echo "== building the baseline $(git log -1 --format='%h %s' "$base" | cut -c1-80) (with -target-cpu haswell)"
(cd "$work/base-src" && nice swift build -c release --product tinyshard-paired --scratch-path ../base-build 2>&1 | tail -1)
echo "== building this tree (flag-free)"
nice swift build -c release --product tinyshard-paired --scratch-path "$work/new-build" 2>&1 | tail -1

base_bin="$work/base-build/release/tinyshard-paired"
new_bin="$work/new-build/release/tinyshard-paired"
results="$work/results.txt"
: > "$results"
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || uname -m)
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | tr ' ' '\n' | grep -xE 'avx2|f16c|fma' | tr '\n' ' ' || true)
echo "== $rounds rounds of: $metrics (CPU: $cpu; $flags; load before: $(cut -d' ' -f1-3 /proc/loadavg))"
for round in $(seq 1 "$rounds"); do
    for variant in base new portable; do
        case "$variant" in
            base) output=$("$base_bin" "$metrics" --seconds "$seconds" --work "$work/data") ;;
            new) output=$(env -u TINYSHARD_SIMD "$new_bin" "$metrics" --seconds "$seconds" --work "$work/data") ;;
            portable) output=$(TINYSHARD_SIMD=portable "$new_bin" "$metrics" --seconds "$seconds" --work "$work/data") ;;
        esac
        echo "$output" | sed "s/^/$variant /" >> "$results"
        echo "   round $round $variant done (load $(cut -d' ' -f1 /proc/loadavg))"
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$results" "$(git log -1 --format=%h "$base")" "$load_after" <<'PYTHON'
import sys
from collections import defaultdict
path, base, load = sys.argv[1], sys.argv[2], sys.argv[3]
best = defaultdict(dict)       # metric -> variant -> best value
units = {}
checks = defaultdict(lambda: defaultdict(set))  # check -> variant -> values
order = []
for line in open(path):
    parts = line.split()
    if len(parts) >= 4 and parts[1] == "PAIRED":
        variant, metric, value, unit = parts[0], parts[2], float(parts[3]), parts[4] if len(parts) > 4 else ""
        if metric not in order: order.append(metric)
        units[metric] = unit
        best[metric][variant] = max(best[metric].get(variant, 0.0), value)
    elif len(parts) >= 4 and parts[1] == "PAIRED-CHECK":
        checks[parts[2]][parts[0]].add(parts[3])
targets = {"dense": 0.95, "dense-cpu": 0.95, "train224": 0.95, "train224-cpu": 0.95}
print(f"\n| metric | with -target-cpu haswell ({base}) | flag-free, dispatched | ratio | flag-free, portable | ratio | target |")
print("|---|---:|---:|---:|---:|---:|---|")
for metric in order:
    b, n, p = (best[metric].get(v) for v in ("base", "new", "portable"))
    fmt = lambda v: "n/a" if v is None else (f"{v:,.0f}" if v >= 1000 else f"{v:.2f}")
    ratio = lambda v: "n/a" if v is None or not b else f"{v / b:.3f}"
    target = targets.get(metric)
    verdict = "" if target is None or not b or n is None else (f"≥ {target} (met)" if n / b >= target else f"≥ {target} (NOT met)")
    print(f"| {metric} ({units[metric]}) | {fmt(b)} | {fmt(n)} | {ratio(n)} | {fmt(p)} | {ratio(p)} | {verdict} |")
print()
for name, per_variant in checks.items():
    values = set().union(*per_variant.values())
    consistent = all(len(v) == 1 for v in per_variant.values())
    print(f"CHECK {name}: {'same in every build and round' if len(values) == 1 else 'DIFFERENT: ' + repr(dict(per_variant))}"
          + ("" if consistent else " (varied between rounds)"))
print(f"\nload after: {load}")
PYTHON
