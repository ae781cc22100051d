"""The paths a dataset's first random row takes at scale (the epoch sample table) and the inflater they use:
each vectorised or threaded step gives the answer and the error of the plain one it replaced."""

import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

from tinyshard import _zlib
from tinyshard import format as F
from tinyshard.dataset import Dataset
from tinyshard.errors import ShardError
from tinyshard.layout import _check_block_chain, crc32_ranges, gather_at
from tinyshard.reader import ShardReader

from test_dataset import make_dataset

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------------------------------------
# layout helpers against the per-item code they replaced


@pytest.mark.parametrize("width", [1, 12, 32, 64])
def test_gather_at_is_the_bytewise_gather(width):
    rng = np.random.default_rng(width)
    data = rng.integers(0, 256, 5000, dtype=np.uint8)
    offsets = np.concatenate([[0, len(data) - width], rng.integers(0, len(data) - width + 1, 300)])
    dtype = np.dtype((np.uint8, width))
    expected = data[offsets[:, None] + np.arange(width)]
    assert np.array_equal(gather_at(data, offsets, dtype), expected)
    assert gather_at(data, offsets[:0], dtype).shape == (0, width)
    structured = np.dtype([("a", "<u4"), ("b", "S%d" % (width - 4))]) if width > 4 else None
    if structured is not None:
        got = gather_at(data, offsets, structured)
        assert got.tobytes() == expected.tobytes()


def test_crc32_ranges_is_one_crc_per_range():
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, 20000, dtype=np.uint8).tobytes()
    starts = np.sort(rng.integers(0, 19000, 200))
    ends = starts + rng.integers(0, 1000, 200)
    view = memoryview(data)
    assert crc32_ranges(view, starts, ends).tolist() == [zlib.crc32(data[s:e]) for s, e in zip(starts, ends)]


def _chain_reference(offsets, lengths, data_start, index_offset):
    """The per-block loop _check_block_chain replaced (the error it must still give)."""
    expected = data_start
    for b, (offset, length) in enumerate(zip(offsets, lengths)):
        if offset != expected:
            raise ShardError("bad-index", f"block {b} starts at {offset}, expected {expected}", block=b)
        if length < F.BLOCK_HEADER_SIZE:
            raise ShardError("bad-index", f"block {b} length {length} < 32", block=b)
        expected = offset + length
    if expected != index_offset:
        raise ShardError("bad-index", f"index starts at {index_offset}, blocks end at {expected}")


def _outcome(check, *args):
    try:
        check(*args)
        return None
    except ShardError as exc:
        return exc.code, str(exc), exc.block


def test_block_chain_check_gives_the_per_block_loops_error():
    rng = np.random.default_rng(2)
    for _ in range(400):
        blocks = int(rng.integers(0, 6))
        lengths = rng.integers(32, 90, blocks).astype(np.uint64)
        offsets = (100 + np.concatenate([[0], np.cumsum(lengths)[:-1]])).astype(np.uint64) if blocks else \
            np.zeros(0, np.uint64)
        index_offset = 100 + int(lengths.sum())
        for _ in range(int(rng.integers(0, 3))):         # break a few fields, some of them twice
            if blocks:
                b = int(rng.integers(0, blocks))
                if rng.random() < 0.5:
                    offsets[b] = np.uint64(int(offsets[b]) + int(rng.integers(-3, 4)))
                else:
                    lengths[b] = np.uint64(int(rng.integers(0, 40)))
        if rng.random() < 0.2:
            index_offset += 1
        if blocks and rng.random() < 0.05:
            offsets[-1] = np.uint64(2 ** 64 - 8)          # a huge hostile offset: no wrap-around answer
        args = (offsets, lengths, 100, index_offset)
        assert _outcome(_check_block_chain, *args) == _outcome(_chain_reference, offsets.tolist(),
                                                                lengths.tolist(), 100, index_offset)


# ------------------------------------------------------------------------------------------------
# the epoch table, whose shards are read on two threads


def _damage_first_payload(path):
    reader = ShardReader(path)
    at = reader.layout.block_offsets[0] + F.BLOCK_HEADER_SIZE + 13
    del reader
    with open(path, "r+b") as f:
        f.seek(at)
        byte = f.read(1)[0]
        f.seek(at)
        f.write(bytes([byte ^ 0x40]))


def _shard(folder, epoch, rank):
    return os.path.join(folder, f"epoch{epoch:04d}-rank{rank:03d}.tshard")


def test_epoch_table_equals_the_shards_read_one_by_one(tmp_path):
    folder = str(tmp_path)
    make_dataset(folder, ranks=4)
    dataset = Dataset(folder)
    entries, shard_of, ordinal_of = dataset.epoch_table(1)
    for position, entry in enumerate(entries):
        ids = dataset.reader(entry).sample_ids()
        mine = np.flatnonzero(shard_of == position)
        assert sorted(ids[ordinal_of[mine]].tolist()) == mine.tolist()


@pytest.mark.parametrize("damaged", [(0,), (2,), (1, 3), (0, 3)])
def test_epoch_table_reports_the_first_damaged_shard_in_rank_order(tmp_path, damaged):
    folder = str(tmp_path)
    make_dataset(folder, ranks=4)
    for rank in damaged:
        _damage_first_payload(_shard(folder, 0, rank))
    with pytest.raises(ShardError) as info:
        Dataset(folder).epoch_table(0, rank=3)
    assert info.value.code == "block-crc"
    assert info.value.file == _shard(folder, 0, min(damaged))
    assert info.value.block == 0


def test_epoch_table_reports_a_shard_that_cannot_open_in_rank_order(tmp_path):
    folder = str(tmp_path)
    make_dataset(folder, ranks=3)
    _damage_first_payload(_shard(folder, 0, 1))
    path = _shard(folder, 0, 2)
    with open(path, "r+b") as f:                     # rank 2's footer: the shard does not open
        f.seek(-3, os.SEEK_END)
        f.write(b"\0\0\0")
    with pytest.raises(ShardError) as info:
        Dataset(folder).epoch_table(0)
    assert (info.value.code, info.value.file) == ("block-crc", _shard(folder, 0, 1))


# ------------------------------------------------------------------------------------------------
# the inflater: zlib-ng and the standard library give one answer


def _inflate_outcome(module, stored, decoded_len):
    inflater = module.decompressobj()
    try:
        out = inflater.decompress(stored, decoded_len + 1)
    except module.error:
        return "error"
    return out, inflater.eof, inflater.unused_data


def test_the_backend_is_named_and_can_be_forced():
    assert _zlib.BACKEND in ("zlib-ng", "stdlib")
    env = dict(os.environ, TINYSHARD_ZLIB="stdlib", PYTHONPATH=PACKAGE_ROOT)
    out = subprocess.run([sys.executable, "-c", "import tinyshard._zlib as z; print(z.BACKEND)"], env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "stdlib"
    env["TINYSHARD_ZLIB"] = "fast"
    failed = subprocess.run([sys.executable, "-c", "import tinyshard._zlib"], env=env, capture_output=True, text=True)
    assert failed.returncode != 0 and "TINYSHARD_ZLIB='fast'" in failed.stderr


def test_zlib_ng_and_the_standard_library_agree_on_mutated_streams():
    zlib_ng = pytest.importorskip("zlib_ng.zlib_ng", reason="the zlib-ng package is not installed")
    rng = np.random.default_rng(3)
    for case in range(3000):
        plain = rng.integers(0, 1 + int(rng.integers(1, 256)), int(rng.integers(0, 3000)), dtype=np.uint8).tobytes()
        stored = bytearray(zlib.compress(plain, int(rng.integers(0, 10))))
        kind = case % 4
        if kind == 0 and stored:                              # flip bits
            for _ in range(int(rng.integers(1, 4))):
                stored[int(rng.integers(0, len(stored)))] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:                                       # cut short
            del stored[int(rng.integers(0, len(stored))):]
        elif kind == 2:                                       # trailing bytes
            stored += rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
        claimed = len(plain) + int(rng.integers(-2, 3)) if case % 3 == 0 else len(plain)
        claimed = max(claimed, 0)
        ours = _inflate_outcome(zlib, bytes(stored), claimed)
        theirs = _inflate_outcome(zlib_ng, bytes(stored), claimed)
        assert ours == theirs, f"case {case}: the standard library and zlib-ng disagree"
        data = bytes(stored)
        assert zlib.crc32(data) == zlib_ng.crc32(data)
        assert zlib.crc32(data, case) == zlib_ng.crc32(data, case)
