#!/usr/bin/env python3
"""The scale benchmark: every step a user of TinyShard meets, at 10^5, 10^6, 10^7 and full ImageNet size.

    python3 Tools/scale/scale_ladder.py run --work /data/ladder [--bin .build/release] \\
        [--shapes in21k,in1k] [--sizes 1e5,1e6,1e7,full] [--keep] [--results docs/scale/results.jsonl]
    python3 Tools/scale/scale_ladder.py report docs/scale/results.jsonl [--svg docs/scale/growth.svg]

Shapes (issue 17): `in21k` is one epoch of ImageNet-21k (14,197,122 keys, K = 100, C = 21,841, 8 ranks);
`in1k` is ImageNet-1k over 3 epochs (1,281,167 keys, K = 10, C = 1,000, 8 ranks). A size caps the keys
per epoch (`full` is the shape's own count; sizes above it are skipped).

For each shape and size, in one run on one machine, each step in its own process (wall time and that
process's peak RSS from wait4):
  generate   the teacher's top-K in the official layout (Tools/scale/make_official.py)
  convert    `tinyshard convert official` (records/s; bytes/record against the official files)
  write      `tinyshard-bench scale-write`: the dataset's records written again by DatasetWriter (the
             teacher pass's writer), the writer's own time only
  inspect    `tinyshard inspect`
  verify     `tinyshard verify --depth checksums` and `--depth full` (2 threads): MB/s of shard bytes
  dump-key   `tinyshard dump --epoch 0 --key K`: a one-key lookup from a cold process (open + lookup)
  analyze    `tinyshard analyze` without images (mass kept by each top-k, class correlation; Spec/ANALYZE.md)
  swift      `tinyshard-bench scale`: open, inspect statistics, key -> id, the epoch table, (epoch, key)
             -> record, rows in record order and in random order, all in one process
  py-open    Python SoftLabels open in a fresh interpreter, then one row (Tools/scale/python_probe.py)
  py-worker  the same in a forked DataLoader worker: time to its first row, memory it does not share
  py-keys    every key -> sample id in one vectorised call
  py-rows    dense rows, record order and random, with the official numpy reader in the same process
  export     `tinyshard export official` and a byte comparison with the generated files (round trip)

Results go to a JSON-lines file (one object per step, with the CPU model and date); `report` turns it into
the Markdown table and log-log plot of docs/scale.md. Data is deleted after each size unless --keep.
"""

import argparse
import datetime
import filecmp
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

SHAPES = {
    "in21k": {"keys": 14_197_122, "classes": 21_841, "k": 100, "ranks": 8, "epochs": 1},
    "in1k": {"keys": 1_281_167, "classes": 1_000, "k": 10, "ranks": 8, "epochs": 3},
}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class Runner:
    """Runs steps, records each one's wall time and peak RSS (wait4 on the step's own process)."""

    def __init__(self, results_path, binaries, python):
        self.results_path = results_path
        self.binaries = binaries
        self.python = python
        self.cpu = cpu_model()
        self.date = datetime.date.today().isoformat()

    def run(self, command):
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # Read both pipes to the end in turns, then reap with wait4 for this child's own rusage.
        out, err = _drain(process)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise SystemExit(f"step failed ({code}): {' '.join(command)}\n{err.decode(errors='replace')[-2000:]}")
        return wall, usage.ru_maxrss / 1e3, out.decode()

    def record(self, shape, size, step, wall, rss, **extra):
        fixed = {"shape": shape, "keys": size, "step": step, "wall_s": round(wall, 4), "peak_rss_mb": round(rss, 1),
                 "cpu": self.cpu, "date": self.date, "load": round(os.getloadavg()[0], 2)}
        # A step's own fields never replace the size it is filed under (the bench reports "keys" too).
        entry = {**{(f"{k}_measured" if k in fixed else k): v for k, v in extra.items()}, **fixed}
        with open(self.results_path, "a") as f:
            f.write(json.dumps(entry) + "\n")
        detail = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in extra.items())
        print(f"  {step:<10} {wall:9.2f} s {rss:9.1f} MB  {detail}", flush=True)


def _drain(process):
    import selectors
    selector = selectors.DefaultSelector()
    chunks = {process.stdout: [], process.stderr: []}
    for stream in chunks:
        selector.register(stream, selectors.EVENT_READ)
    while selector.get_map():
        for key, _ in selector.select():
            data = os.read(key.fileobj.fileno(), 1 << 16)
            if data:
                chunks[key.fileobj].append(data)
            else:
                selector.unregister(key.fileobj)
    return b"".join(chunks[process.stdout]), b"".join(chunks[process.stderr])


def folder_bytes(folder):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(folder) for f in files)


def same_tree(left, right):
    """Whether two folders hold the same file names with the same bytes."""
    for directory, _, files in os.walk(left):
        other = os.path.join(right, os.path.relpath(directory, left))
        for name in files:
            if not filecmp.cmp(os.path.join(directory, name), os.path.join(other, name), shallow=False):
                return False
    count = lambda folder: sum(len(files) for _, _, files in os.walk(folder))  # noqa: E731
    return count(left) == count(right)


def ladder_size(shape, size):
    return SHAPES[shape]["keys"] if size == "full" else int(float(size))


def source_keys(source, k):
    """Keys of epoch 0 of an official folder: the lines of its ranks' keys files."""
    epoch0 = os.path.join(source, f"logits_top{k}_epoch0")
    total = 0
    for name in os.listdir(epoch0):
        if name.endswith("-keys.txt"):
            with open(os.path.join(epoch0, name), "rb") as f:
                total += sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b""))
    return total


def run_size(runner, shape, keys, work, keep, given_source=None, skip=()):
    """One size of one shape. given_source: an official folder made before (its data is kept; no generate
    step); skip: steps left out (a shortened run, e.g. when the machine is shared)."""
    spec = SHAPES[shape]
    tinyshard, bench = os.path.join(runner.binaries, "tinyshard"), os.path.join(runner.binaries, "tinyshard-bench")
    source = given_source or os.path.join(work, f"{shape}-{keys}-official")
    dataset = os.path.join(work, f"{shape}-{keys}-tinyshard")
    exported, rewritten = os.path.join(work, f"{shape}-{keys}-export"), os.path.join(work, f"{shape}-{keys}-rewrite")
    for folder in (dataset, exported, rewritten) + (() if given_source else (source,)):
        shutil.rmtree(folder, ignore_errors=True)
    epoch0 = os.path.join(source, f"logits_top{spec['k']}_epoch0")
    print(f"{shape}: {keys:,} keys x {spec['epochs']} epochs, K = {spec['k']}, C = {spec['classes']:,}, "
          f"{spec['ranks']} ranks{' (given source)' if given_source else ''}", flush=True)

    if not given_source:
        wall, rss, _ = runner.run([runner.python, os.path.join(HERE, "make_official.py"), "--out", source,
                                   "--keys", str(keys), "--classes", str(spec["classes"]), "--k", str(spec["k"]),
                                   "--ranks", str(spec["ranks"]), "--epochs", str(spec["epochs"]), "--key-style", "wnid"])
        runner.record(shape, keys, "generate", wall, rss, official_bytes=folder_bytes(source))
    official_bytes = folder_bytes(source)

    wall, rss, _ = runner.run([tinyshard, "convert", "official", source, "--out", dataset,
                               "--classes", str(spec["classes"])])
    with open(os.path.join(dataset, "manifest.json")) as f:
        records = sum(entry["records"] for entry in json.load(f)["shards"])
    size = folder_bytes(dataset)
    runner.record(shape, keys, "convert", wall, rss, records=records, records_per_s=records / wall,
                  bytes_per_record=size / records, official_bytes_per_record=official_bytes / records)

    if "write" not in skip:
        wall, rss, out = runner.run([bench, "scale-write", dataset, rewritten])
        write = json.loads(out)
        shutil.rmtree(rewritten, ignore_errors=True)
        runner.record(shape, keys, "write", wall, rss, **write)

    wall, rss, _ = runner.run([tinyshard, "inspect", dataset])
    runner.record(shape, keys, "inspect", wall, rss)

    for depth in ("checksums", "full"):
        if f"verify-{depth}" in skip:
            continue
        wall, rss, out = runner.run([tinyshard, "verify", dataset, "--depth", depth, "--threads", "2", "--json"])
        report = json.loads(out)
        if not report.get("ok"):
            raise SystemExit(f"verify --depth {depth} found problems in {dataset}: {out[:2000]}")
        runner.record(shape, keys, f"verify-{depth}", wall, rss, mb_per_s=report["bytes"] / wall / 1e6)

    with open(os.path.join(epoch0, "rank0-keys.txt")) as f:
        key = f.readline().rstrip("\n")
    wall, rss, _ = runner.run([tinyshard, "dump", dataset, "--epoch", "0", "--key", key])
    runner.record(shape, keys, "dump-key", wall, rss)

    if "analyze" not in skip:
        analysis = os.path.join(work, f"{shape}-{keys}-analysis")
        wall, rss, out = runner.run([tinyshard, "analyze", dataset, "--out", analysis, "--json"])
        summary = json.loads(out)
        shutil.rmtree(analysis, ignore_errors=True)
        runner.record(shape, keys, "analyze", wall, rss, records_per_s=records / wall,
                      correlation_stride=summary.get("correlation_stride"))

    wall, rss, out = runner.run([bench, "scale", dataset])
    runner.record(shape, keys, "swift", wall, rss, **json.loads(out))

    probe = os.path.join(HERE, "python_probe.py")
    for step, extra in (("open", []), ("worker", []), ("keys", [epoch0]), ("rows", [epoch0])):
        wall, rss, out = runner.run([runner.python, probe, step, dataset, *extra])
        runner.record(shape, keys, f"py-{step}", wall, rss, **json.loads(out))

    if "export" not in skip:
        wall, rss, _ = runner.run([tinyshard, "export", "official", dataset, "--out", exported])
        runner.record(shape, keys, "export", wall, rss, identical=same_tree(source, exported))

    if not keep:
        for folder in (dataset, exported) + (() if given_source else (source,)):
            shutil.rmtree(folder, ignore_errors=True)


# ---- the report ---------------------------------------------------------------------------------------

TABLE_STEPS = ["convert", "write", "inspect", "verify-checksums", "verify-full", "dump-key", "analyze", "swift", "py-open",
               "py-worker", "py-keys", "py-rows", "export"]


def fmt(value, digits=3):
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def step_summary(entry):
    """The figures of one step that the targets are about."""
    s = entry["step"]
    if s == "convert":
        return (f"{fmt(entry['records_per_s'])} records/s; {entry['bytes_per_record']:.1f} B/record "
                f"({entry['bytes_per_record'] / entry['official_bytes_per_record']:.3f}x official)")
    if s == "write":
        return f"{fmt(entry['records_per_s'])} records/s (writer time only)"
    if s.startswith("verify"):
        return f"{fmt(entry['mb_per_s'])} MB/s"
    if s == "analyze":
        return f"{fmt(entry['records_per_s'])} records/s; correlation over every {entry['correlation_stride']}-th record"
    if s == "swift":
        return (f"open {fmt(entry['open_s'] * 1e3)} ms / {fmt(entry['open_rss_mb'])} MB; key -> id "
                f"{fmt(entry['key_lookup_us'])} µs; epoch table {fmt(entry['table_build_s'])} s; record order "
                f"{fmt(entry['record_order_dense_rows_per_s'])} rows/s; random {fmt(entry['random_dense_rows_per_s'])} rows/s")
    if s == "py-open":
        return (f"open {fmt(entry['open_s'] * 1e3)} ms, +{fmt(entry['open_added_mb'])} MB; first row "
                f"{fmt(entry['first_row_s'])} s")
    if s == "py-worker":
        return (f"first row {fmt(entry['worker_first_row_s'])} s; anon +{fmt(entry.get('worker_anon_added_mb'))} MB, "
                f"file-backed {fmt(entry.get('worker_file_mb'))} MB")
    if s == "py-keys":
        return f"{fmt(entry['key_to_id_s'])} s for {fmt(entry['keys'])} keys"
    if s == "py-rows":
        return (f"record order {fmt(entry['record_order_dense_rows_per_s'])} rows/s; random "
                f"{fmt(entry['random_dense_rows_per_s'])} vs official {fmt(entry['official_random_dense_rows_per_s'])} "
                f"({entry['random_vs_official']:.2f}x)")
    if s == "export":
        return f"byte-identical to the source: {fmt(entry['identical'])}"
    return ""


def report(results_path, svg_path):
    entries = [json.loads(line) for line in open(results_path) if line.strip()]
    # The last measurement of each (shape, keys, step) wins: a rerun replaces an earlier one.
    latest = {}
    for entry in entries:
        latest[(entry["shape"], entry["keys"], entry["step"])] = entry
    cpus = sorted({e["cpu"] for e in latest.values()})
    dates = sorted({e["date"] for e in latest.values()})
    print(f"Measured {', '.join(dates)} on {'; '.join(cpus)} (2 cores); each step in its own process, "
          f"peak RSS from wait4.\n")
    for shape in SHAPES:
        sizes = sorted({k for (s, k, _) in latest if s == shape})
        if not sizes:
            continue
        spec = SHAPES[shape]
        print(f"### {shape}: K = {spec['k']}, C = {spec['classes']:,}, {spec['ranks']} ranks, {spec['epochs']} "
              f"epoch{'s' if spec['epochs'] > 1 else ''}\n")
        print("| step | " + " | ".join(f"{k:,} keys" for k in sizes) + " | at the largest size |")
        print("|---|" + "---:|" * len(sizes) + "---|")
        for step in TABLE_STEPS:
            row = [latest.get((shape, k, step)) for k in sizes]
            if not any(row):
                continue
            cells = [f"{e['wall_s']:.3g} s / {e['peak_rss_mb']:,.0f} MB" if e else "–" for e in row]
            last = next(e for e in reversed(row) if e)
            print(f"| {step} | " + " | ".join(cells) + f" | {step_summary(last)} |")
        print()
    if svg_path:
        write_svg(latest, svg_path)


def write_svg(latest, path):
    """Wall time against keys per epoch, log-log, one line per step of the in21k shape (and in1k dashed)."""
    width, height, margin = 760, 460, 60
    steps = ["convert", "write", "inspect", "verify-checksums", "verify-full", "dump-key", "analyze", "py-open",
             "py-keys", "export"]
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#bcbd22", "#e377c2", "#7f7f7f",
              "#17becf"]
    points = [(k, e["wall_s"]) for (s, k, st), e in latest.items() if st in steps]
    if not points:
        return
    x0, x1 = math.log10(min(p[0] for p in points)), math.log10(max(p[0] for p in points))
    y0 = math.floor(math.log10(max(min(p[1] for p in points), 1e-3)))
    y1 = math.ceil(math.log10(max(p[1] for p in points)))
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)

    def xy(keys, seconds):
        x = margin + (math.log10(keys) - x0) / (x1 - x0) * (width - 2 * margin - 150)
        y = height - margin - (math.log10(max(seconds, 10 ** y0)) - y0) / (y1 - y0) * (height - 2 * margin)
        return x, y

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="12"><rect width="100%" height="100%" fill="white"/>']
    for decade in range(int(y0), int(y1) + 1):
        _, y = xy(10 ** x0, 10 ** decade)
        parts.append(f'<line x1="{margin}" y1="{y:.1f}" x2="{width - margin - 150}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{margin - 6}" y="{y + 4:.1f}" text-anchor="end">{10.0 ** decade:g} s</text>')
    for decade in range(math.ceil(x0), math.floor(x1) + 1):
        x, _ = xy(10 ** decade, 10 ** y0)
        parts.append(f'<line x1="{x:.1f}" y1="{margin}" x2="{x:.1f}" y2="{height - margin}" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - margin + 16}" text-anchor="middle">1e{decade}</text>')
    parts.append(f'<text x="{(width - 150) / 2:.0f}" y="{height - 18}" text-anchor="middle">keys per epoch</text>')
    # A reference slope: linear growth.
    lx0, ly0 = xy(10 ** x0, 10 ** (y0 + 0.3))
    lx1, ly1 = xy(10 ** x1, 10 ** (y0 + 0.3 + (x1 - x0)))
    parts.append(f'<line x1="{lx0:.1f}" y1="{ly0:.1f}" x2="{lx1:.1f}" y2="{ly1:.1f}" stroke="#bbb" '
                 f'stroke-dasharray="2,4"/>')
    legend_y = margin
    for step, color in zip(steps, colors):
        for shape, dash in (("in21k", ""), ("in1k", ' stroke-dasharray="6,4"')):
            series = sorted((k, e["wall_s"]) for (s, k, st), e in latest.items() if s == shape and st == step)
            if len(series) < 1:
                continue
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(k, w) for k, w in series))
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
            for k, w in series:
                x, y = xy(k, w)
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>')
        parts.append(f'<line x1="{width - 200}" y1="{legend_y}" x2="{width - 180}" y2="{legend_y}" stroke="{color}" '
                     f'stroke-width="2"/><text x="{width - 175}" y="{legend_y + 4}">{step}</text>')
        legend_y += 18
    parts.append(f'<text x="{width - 200}" y="{legend_y + 10}">solid: in21k, dashed: in1k</text>')
    parts.append(f'<text x="{width - 200}" y="{legend_y + 28}">dotted grey: slope 1 (linear)</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run")
    run.add_argument("--work", required=True, help="a folder on a disk with room (full in21k: ~20 GB)")
    run.add_argument("--bin", default=os.path.join(ROOT, ".build", "release"))
    run.add_argument("--python", default=sys.executable)
    run.add_argument("--shapes", default="in21k,in1k")
    run.add_argument("--sizes", default="1e5,1e6,1e7,full")
    run.add_argument("--keep", action="store_true", help="keep each size's data")
    run.add_argument("--results", default=os.path.join(ROOT, "docs", "scale", "results.jsonl"))
    run.add_argument("--source", help="an official folder made before, of the one shape given: measured as is "
                                       "(its keys are the size; no generate step; never deleted)")
    run.add_argument("--skip", default="", help="steps to leave out, comma-separated (write, verify-checksums, "
                                                 "verify-full, analyze, export)")
    show = commands.add_parser("report")
    show.add_argument("results")
    show.add_argument("--svg")
    args = parser.parse_args()
    if args.command == "report":
        report(args.results, args.svg)
        return
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
    runner = Runner(args.results, args.bin, args.python)
    print(f"{runner.cpu}, {os.cpu_count()} cores, {runner.date}", flush=True)
    skip = set(filter(None, args.skip.split(",")))
    if args.source:
        shape = args.shapes.split(",")[0]
        run_size(runner, shape, source_keys(args.source, SHAPES[shape]["k"]), args.work, args.keep, args.source, skip)
        return
    for shape in args.shapes.split(","):
        if shape not in SHAPES:
            raise SystemExit(f"unknown shape {shape!r} (known: {', '.join(SHAPES)})")
        done = set()
        for size in args.sizes.split(","):
            keys = ladder_size(shape, size)
            if keys > SHAPES[shape]["keys"] or keys in done:
                continue
            done.add(keys)
            run_size(runner, shape, keys, args.work, args.keep, skip=skip)


if __name__ == "__main__":
    main()
