"""Command line: tinyshard-py (or python -m tinyshard) {verify,dump,inspect,convert,bench,analyze} ...

verify exits 0 when clean, 1 when it found problems, 2 when the path cannot be read (code `io`)
or on a usage error. analyze exits 0, or 2 with one line on bad input (as the Swift tool)."""

import argparse
import json
import os
import sys

from .bench import bench_dataset
from .convert import convert_official
from . import format as F
from .errors import ShardError
from .keys import DEFAULT_VERSION, KeyTable
from .manifest import MANIFEST_NAME
from .reader import ShardReader
from .verify import verify_dataset, verify_key_table, verify_shard

EXIT_CLEAN, EXIT_PROBLEMS, EXIT_UNREADABLE = 0, 1, 2


def _is_key_table(path):
    """True for a `.tsk` file or one that starts with the key table's magic (a shard starts with
    another)."""
    if path.endswith(".tsk"):
        return True
    try:
        with open(path, "rb") as f:
            return f.read(len(F.KEYS_MAGIC)) == F.KEYS_MAGIC
    except OSError:
        return False


def cmd_verify(args):
    if os.path.isdir(args.path):
        problems = verify_dataset(args.path)
    elif _is_key_table(args.path):
        problems = verify_key_table(args.path)
    else:
        problems = verify_shard(args.path)
    # A write per 4,096 lines: with PYTHONUNBUFFERED a print per problem is a system call per problem.
    for start in range(0, len(problems), 4096):
        sys.stdout.write("".join((json.dumps(p.to_dict()) if args.json else str(p)) + "\n"
                                 for p in problems[start:start + 4096]))
    if not args.json:
        print(f"{args.path}: {'OK' if not problems else f'{len(problems)} problem(s)'}",
              file=sys.stderr)
    # As the Swift CLI: unreadable only when the shard or the manifest itself could not be read; a file the
    # manifest names that is missing is a problem found in the dataset (exit 1).
    entry_points = {os.path.normpath(args.path), os.path.normpath(os.path.join(args.path, MANIFEST_NAME))}
    if len(problems) == 1 and problems[0].code == "io" and os.path.normpath(problems[0].file) in entry_points:
        return EXIT_UNREADABLE
    return EXIT_PROBLEMS if problems else EXIT_CLEAN


def cmd_dump(args):
    with ShardReader(args.path) as reader:
        for ordinal, record in enumerate(reader):
            print(json.dumps({
                "ordinal": ordinal, "sample_id": record.sample_id, "aug": record.aug.hex(),
                "indices": record.indices.tolist(),
                "values": [float(v) for v in record.values],
                "value_bits": record.values.view("<u2").tolist()}))
    return EXIT_CLEAN


def inspect_key_table(path):
    """A key table's head as JSON (no page is inflated: O(1), as opening it)."""
    table = KeyTable.open(path)
    size = os.path.getsize(path)
    summary = {"file": path, "bytes": size, "kind": "key-table", "version": table.version,
               "keys": len(table), "bytes_per_key": size / max(1, len(table))}
    if table.version == 2:
        summary.update(keys_per_page=table.keys_per_page, pages=-(-len(table) // table.keys_per_page))
    return summary


def cmd_inspect(args):
    if _is_key_table(args.path):
        print(json.dumps(inspect_key_table(args.path), indent=1))
        return EXIT_CLEAN
    with ShardReader(args.path) as reader:
        layout = reader.layout
        stored = [0] * 5
        for b in range(layout.blocks):
            for i, size in enumerate(reader.raw_block(b).stored_sizes):
                stored[i] += size
        print(json.dumps({
            "file": reader.path, "bytes": layout.file_size,
            "version": f"1.{layout.minor_version}", "header": reader.header.to_json_object(),
            "records": len(reader), "blocks": layout.blocks,
            "bytes_per_record": layout.file_size / max(1, len(reader)),
            "stored_section_bytes": dict(zip(("sample_ids", "augmentation", "values", "indices",
                                              "order"), stored)),
        }, indent=1))
    return EXIT_CLEAN


def cmd_convert(args):
    manifest = convert_official(args.source, args.target, args.classes,
                                records_per_block=args.records_per_block,
                                key_table_version=args.key_table_version)
    print(f"wrote {len(manifest.shards)} shards and {manifest.key_count} keys to {args.target}")
    return EXIT_CLEAN


def cmd_bench(args):
    bench_dataset(args.path, seconds=args.seconds, cache_blocks=args.cache_blocks)
    return EXIT_CLEAN


def cmd_analyze(args):
    """Spec/ANALYZE.md (tinyshard.analyze); the student correlation and the contact sheet are Swift's only."""
    from .analyze import AnalyzeError, analyze, summary, to_json, write_report
    from .imagestore import ImageStore, ImageStoreError
    try:
        store = ImageStore(args.images, pixel_check="never") if args.images else None
        result = analyze(args.dataset, store, hard_share=args.hard_share)
        names = store.class_names if store is not None else []
        write_report(result, args.out, names)
    except (AnalyzeError, ImageStoreError, ShardError, OSError) as exc:
        # Every refusal is bad input here (exit 2, one line), as `tinyshard analyze` exits.
        print(f"error: {exc}" if isinstance(exc, OSError) else str(exc), file=sys.stderr)
        return EXIT_UNREADABLE
    if args.json:
        print(to_json(result))
    else:
        sys.stdout.write(summary(result, names))
        print(f"files in {args.out}: analysis.json, hard_samples.tsv, hard_samples.json, mass_by_k.tsv, "
              "correlation.npy, correlation.svg")
    return EXIT_CLEAN


def _share(text):
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be in 0...1")
    return value


def build_parser():
    parser = argparse.ArgumentParser(prog="tinyshard-py")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("verify", help="check a shard file, a key table or a dataset folder")
    p.add_argument("path")
    p.add_argument("--json", action="store_true", help="one JSON object per problem")
    p.set_defaults(run=cmd_verify)
    p = sub.add_parser("dump", help="print every record of a shard as JSON lines")
    p.add_argument("path")
    p.set_defaults(run=cmd_dump)
    p = sub.add_parser("inspect", help="print a shard's (or a key table's) header and layout summary")
    p.add_argument("path")
    p.set_defaults(run=cmd_inspect)
    p = sub.add_parser("convert", help="official TinyViT logits folder -> TinyShard dataset")
    p.add_argument("source")
    p.add_argument("target")
    p.add_argument("--classes", type=int, required=True)
    p.add_argument("--records-per-block", type=int, default=None,
                   help="records per block (default: the largest power of two R with R·K ≤ 2,048, FORMAT.md 1.1)")
    p.add_argument("--key-table-version", type=int, choices=(1, 2), default=DEFAULT_VERSION,
                   help="2 (paged, FORMAT.md 5.2); 1 for revision-1.1 readers")
    p.set_defaults(run=cmd_convert)
    p = sub.add_parser("bench", help="records/s of one-at-a-time lookups by key")
    p.add_argument("path")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--cache-blocks", type=int, default=8)
    p.set_defaults(run=cmd_bench)
    p = sub.add_parser("analyze", help="agreement, hard samples, mass by k and class correlations of a "
                                       "teacher pass (Spec/ANALYZE.md)")
    p.add_argument("dataset", help="a dataset folder (a teacher pass)")
    p.add_argument("--images", help="the image store the pass read (labels: agreement and hard samples)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--hard-share", type=_share, default=0.5,
                   help="an image is hard when its label is outside the teacher's top n in at least this "
                        "share of its records (default 0.5)")
    p.add_argument("--json", action="store_true", help="print analysis.json instead of the summary")
    p.set_defaults(run=cmd_analyze)
    return parser


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:              # argparse exits 2 on usage errors, 0 on --help
        return exc.code
    try:
        return args.run(args)
    except ShardError as error:
        print(error, file=sys.stderr)
        return EXIT_UNREADABLE if error.code == "io" else EXIT_PROBLEMS
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE


def console_main():
    """Entry point of the `tinyshard-py` command that `pip install` creates."""
    sys.exit(main())


if __name__ == "__main__":
    console_main()
