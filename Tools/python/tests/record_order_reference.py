"""RECORD-ORDER.md read literally, one record at a time with Python integers: the reference the vectorised
tinyshard.record_order is tested against, and what writes tests/data/record-order.json."""

import json
import os

MASK = (1 << 64) - 1
G = 0x9E3779B97F4A7C15


def mix64(z):
    z &= MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def reference_order(shards, world, rank, window, seed, epoch):
    """[(shard rank, ordinal)] of rank `rank`; shards: [(rank, records, records_per_block)]."""
    shards = sorted(shards)
    positions = [(r, o, per_block) for r, n, per_block in shards for o in range(n)]
    n = len(positions)
    if world < 1 or not 0 <= rank < world or n < world:
        raise ValueError("bad request")
    q = -(-n // world)
    mine = [(rank * q + i) % n for i in range(q)]
    pieces = []
    for i, p in enumerate(mine):
        r, o, per_block = positions[p]
        if pieces and mine[i - 1] + 1 == p and positions[mine[i - 1]][0] == r \
                and positions[mine[i - 1]][1] // per_block == o // per_block:
            pieces[-1].append((r, o))
        else:
            pieces.append([(r, o)])
    if window == 0:
        return [pair for piece in pieces for pair in piece]
    base = mix64(seed ^ 0x5245434F52442D31)
    kt = mix64(base + (epoch + 1) * G)
    kr = mix64(kt + (rank + 1) * G)
    ordered = sorted(range(len(pieces)), key=lambda i: (mix64(kr + (i + 1) * G), i))
    out = []
    for v, start in enumerate(range(0, len(ordered), window)):
        records = [pair for i in ordered[start:start + window] for pair in pieces[i]]
        kv = mix64(mix64(kr ^ 0x57494E444F570000) + (v + 1) * G)
        out += [records[j] for j in sorted(range(len(records)), key=lambda j: (mix64(kv + (j + 1) * G), j))]
    return out


LAYOUTS = [
    ("one shard, short last block", [(0, 10, 4)]),
    ("three ranks, short last blocks", [(0, 13, 4), (1, 9, 4), (2, 11, 4)]),
    ("mixed records per block, an empty shard", [(0, 20, 8), (1, 17, 3), (2, 5, 16), (3, 0, 4)]),
    ("ranks listed out of order, not contiguous", [(5, 7, 5), (2, 12, 5), (7, 9, 5)]),
    ("a multiple of every world size", [(0, 12, 4), (1, 12, 4)]),
    ("one block holds the epoch (a wrap inside a block starts a piece)", [(0, 9, 16)]),
]
WORLDS = (1, 2, 3, 8)
WINDOWS = (0, 1, 4)
SEEDS = (0, MASK)
EPOCHS = (0, 7)


def cases():
    for name, shards in LAYOUTS:
        for world in WORLDS:
            for window in WINDOWS:
                for seed in SEEDS if window else SEEDS[:1]:
                    for epoch in EPOCHS if window else EPOCHS[:1]:
                        yield name, shards, world, window, seed, epoch


def write(path):
    out = {"about": "Record-order sampler cases (Spec/RECORD-ORDER.md): for each stored-epoch layout (shards "
                    "as rank, records, records_per_block), world size W, window w, seed and training epoch t, "
                    "the (shard rank, ordinal) pairs every rank reads, in order. Window 0 does not depend on "
                    "seed or epoch. errors: requests that must fail (world < 1, rank outside [0, W), N < W).",
           "cases": [], "errors": []}
    for name, shards, world, window, seed, epoch in cases():
        out["cases"].append({"layout": name, "shards": [{"rank": r, "records": n, "records_per_block": p}
                                                        for r, n, p in shards],
                             "world": world, "window": window, "seed": str(seed), "epoch": epoch,
                             "ranks": [reference_order(shards, world, r, window, seed, epoch)
                                       for r in range(world)]})
    for shards, world, rank in (([(0, 10, 4)], 0, 0), ([(0, 10, 4)], 3, 3), ([(0, 10, 4)], 3, -1),
                                ([(0, 5, 4), (1, 2, 4)], 8, 0), ([], 1, 0)):
        out["errors"].append({"shards": [{"rank": r, "records": n, "records_per_block": p} for r, n, p in shards],
                              "world": world, "rank": rank})
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    write(os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "record-order.json"))
