"""The record-order sampler (Spec/RECORD-ORDER.md): each rank's share of a stored epoch, in whole blocks
and in stored order, optionally shuffled inside windows of blocks; vectorised (no Python loop per record
or per piece).

    ranks, ordinals = record_order(shards, world=8, rank=3, window=4, seed=0, epoch=5)

`shards` is the stored epoch's shards, each (rank, records, records_per_block) — e.g.
`[(e.rank, e.records, reader.header.records_per_block) for e in entries]` — in any order (positions
follow ascending rank). The result is q = ceil(N / W) (shard rank, ordinal) pairs as two int64 arrays.
"""

import numpy as np

from .erasing import GOLDEN, mix64

RECORD_SALT = 0x5245434F52442D31          # "RECORD-1"
WINDOW_SALT = 0x57494E444F570000          # "WINDOW\0\0"


class RecordOrderError(ValueError):
    """A request the sampler cannot answer (world size, rank, too few records): one line."""


def _key(base, count):
    """mix64(base + (i + 1) * G) for i = 0 .. count - 1 (wrapping uint64), as an array."""
    with np.errstate(over="ignore"):
        return mix64(np.uint64(base) + np.arange(1, count + 1, dtype=np.uint64) * GOLDEN)


def _scalar(z):
    return int(mix64(np.uint64(z & ((1 << 64) - 1))))


def rank_key(seed, epoch, rank):
    """kr of RECORD-ORDER.md: base = mix64(seed ^ "RECORD-1"), kt = mix64(base + (t + 1) G),
    kr = mix64(kt + (r + 1) G)."""
    mask = (1 << 64) - 1
    base = _scalar(int(seed) ^ RECORD_SALT)
    kt = _scalar(base + ((int(epoch) + 1) * int(GOLDEN) & mask))
    return _scalar(kt + ((int(rank) + 1) * int(GOLDEN) & mask))


def check_request(records, world, rank):
    """Raise RecordOrderError for a world size or rank out of range, or an epoch of fewer records than
    ranks (one line naming both numbers)."""
    if world < 1:
        raise RecordOrderError(f"world size {world} must be at least 1")
    if not 0 <= rank < world:
        raise RecordOrderError(f"rank {rank} is outside [0, {world}) for world size {world}")
    if records < world:
        raise RecordOrderError(f"the epoch holds {records} records, fewer than the world size {world}")


def share(records, world, rank):
    """The positions rank `rank` of `world` reads of an epoch of `records` records: q = ceil(N / W)
    positions (r q + i) mod N. Raises RecordOrderError for a world or rank out of range or N < W."""
    world, rank, records = int(world), int(rank), int(records)
    check_request(records, world, rank)
    q = -(-records // world)
    return (rank * q + np.arange(q, dtype=np.int64)) % records


def record_order(shards, world, rank, window=0, seed=0, epoch=0):
    """(shard ranks, ordinals), int64 arrays of q = ceil(N / W) entries: what rank `rank` of `world` reads
    of the stored epoch whose shards are `shards` ((rank, records, records_per_block) each), shuffled in
    windows of `window` pieces (0: none) from `seed` and the training epoch `epoch`."""
    window = int(window)
    if window < 0:
        raise RecordOrderError(f"window {window} must be 0 or more")
    shards = sorted((int(r), int(n), int(per_block)) for r, n, per_block in shards)
    if any(per_block < 1 or n < 0 for _, n, per_block in shards):
        raise RecordOrderError("every shard needs records >= 0 and records_per_block >= 1")
    counts = np.array([n for _, n, _ in shards], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    positions = share(int(starts[-1]), world, rank)
    # Position -> (shard, ordinal): the shard is the last whose start is <= the position (empty shards,
    # which start where the next one does, are never chosen).
    shard = np.searchsorted(starts, positions, side="right") - 1
    ordinal = positions - starts[shard]
    shard_ranks = np.array([r for r, _, _ in shards], dtype=np.int64)[shard]
    if window == 0:
        return shard_ranks, ordinal
    per_block = np.array([p for _, _, p in shards], dtype=np.int64)[shard]
    block = ordinal // per_block
    # Pieces: maximal runs of consecutive positions inside one block of one shard.
    new_piece = np.ones(len(positions), dtype=bool)
    new_piece[1:] = (positions[1:] != positions[:-1] + 1) | (shard[1:] != shard[:-1]) | (block[1:] != block[:-1])
    piece_of = np.cumsum(new_piece) - 1
    piece_starts = np.flatnonzero(new_piece)
    pieces = len(piece_starts)
    kr = rank_key(seed, epoch, rank)
    piece_rank = np.empty(pieces, dtype=np.int64)
    piece_rank[np.argsort(_key(kr, pieces), kind="stable")] = np.arange(pieces)   # ties: by index
    # Records listed window by window, each window piece by piece in key order, each piece as stored.
    by_piece = np.argsort(piece_rank[piece_of], kind="stable")
    window_of = piece_rank[piece_of[by_piece]] // window
    window_start = np.searchsorted(window_of, np.arange(window_of[-1] + 1))
    j = np.arange(len(by_piece), dtype=np.int64) - window_start[window_of]
    kw = _scalar(kr ^ WINDOW_SALT)
    kv = _key(kw, int(window_of[-1]) + 1)[window_of]
    with np.errstate(over="ignore"):
        record_key = mix64(kv + (j.astype(np.uint64) + np.uint64(1)) * GOLDEN)
    order = by_piece[np.lexsort((j, record_key, window_of))]
    return shard_ranks[order], ordinal[order]
