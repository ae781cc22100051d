#!/usr/bin/env python3
"""The two inflaters the Python readers can use (tinyshard/_zlib.py), side by side on one shard's own
blocks: CRC-32 of every block payload and inflation of every zlib section, as the readers do them (one
call per payload, one decompressobj per section), each backend timed in alternating rounds in this
process. Prints a table.

    .venv/bin/python Tools/scale/zlib_backends.py SHARD [--blocks 20000] [--rounds 3]
"""

import argparse
import os
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

from tinyshard import format as F  # noqa: E402
from tinyshard.reader import ShardReader  # noqa: E402
from scale_ladder import cpu_model  # noqa: E402  (this folder: the script's own)


def sections_of(reader, blocks):
    """(payloads, zlib sections as (stored bytes, decoded length)) of the shard's first `blocks` blocks."""
    view = memoryview(reader._buf)
    payloads, streams = [], []
    for b in range(min(blocks, reader.layout.blocks)):
        offset, length = reader.layout.block_offsets[b], reader.layout.block_lengths[b]
        payload = view[offset + F.BLOCK_HEADER_SIZE:offset + length]
        payloads.append(payload)
        pos = 0
        while pos < len(payload):
            codec, _, stored, decoded = F.SECTION_HEADER.unpack_from(payload, pos)
            body = payload[pos + F.SECTION_HEADER_SIZE:pos + F.SECTION_HEADER_SIZE + stored]
            if codec == F.CODEC_ZLIB:
                streams.append((body, decoded))
            pos += F.SECTION_HEADER_SIZE + stored
    return payloads, streams


def crc_rate(module, payloads):
    crc = module.crc32
    start = time.perf_counter()
    for payload in payloads:
        crc(payload)
    seconds = time.perf_counter() - start
    return sum(len(p) for p in payloads) / seconds / 1e9, len(payloads) / seconds


def inflate_rate(module, streams):
    start = time.perf_counter()
    for stored, decoded in streams:
        inflater = module.decompressobj()
        out = inflater.decompress(stored, decoded + 1)
        if len(out) != decoded or not inflater.eof:
            raise SystemExit("a section did not inflate to its decoded length")
    seconds = time.perf_counter() - start
    return sum(d for _, d in streams) / seconds / 1e9, len(streams) / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shard")
    parser.add_argument("--blocks", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    try:
        from zlib_ng import zlib_ng
    except ImportError:
        raise SystemExit("the zlib-ng package is not installed (pip install zlib-ng)") from None
    reader = ShardReader(args.shard)
    payloads, streams = sections_of(reader, args.blocks)
    backends = (("stdlib zlib " + zlib.ZLIB_RUNTIME_VERSION, zlib), ("zlib-ng", zlib_ng))
    best = {name: [0.0, 0.0, 0.0, 0.0] for name, _ in backends}
    for _ in range(args.rounds):
        for name, module in backends:
            crc_gb, crc_calls = crc_rate(module, payloads)
            inf_gb, inf_calls = inflate_rate(module, streams)
            best[name] = [max(a, b) for a, b in zip(best[name], (crc_gb, crc_calls, inf_gb, inf_calls))]
    print(f"{cpu_model()}, {os.cpu_count()} cores; {len(payloads):,} block payloads "
          f"(mean {sum(map(len, payloads)) / len(payloads):,.0f} B), {len(streams):,} zlib sections (mean "
          f"{sum(d for _, d in streams) / max(len(streams), 1):,.0f} B decoded) of {os.path.basename(args.shard)}; "
          f"best of {args.rounds} alternating rounds")
    print("| backend | payload CRC-32, GB/s | payloads/s | inflate, GB/s decoded | sections/s |")
    print("|---|---:|---:|---:|---:|")
    for name, (crc_gb, crc_calls, inf_gb, inf_calls) in best.items():
        print(f"| {name} | {crc_gb:.2f} | {crc_calls:,.0f} | {inf_gb:.2f} | {inf_calls:,.0f} |")


if __name__ == "__main__":
    main()
