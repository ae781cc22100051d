"""_blocks.read_blocks and read_groups (many blocks of one or several shards checked and inflated at once) gives read_block's answer for
every block and read_block's error for the first damaged one, whatever byte of the blocks is damaged:
each byte of the block region of a small shard (frames, section heads, stored and zlib sections) flipped
in turn, and lengths and codecs rewritten."""

import struct
import zlib

import numpy as np
import pytest

from tinyshard import ShardError
from tinyshard._blocks import BlockReader, read_blocks, read_groups
from tinyshard.layout import parse_layout, read_block

from test_labels import write_dataset


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    folder = tmp_path_factory.mktemp("blocks") / "ds"
    write_dataset(folder, np.random.default_rng(7), epochs=1, ranks=2, per_rank=45, per_block=8,
                  overlap=False)
    path = sorted(p for p in folder.iterdir() if p.suffix == ".tshard")[0]
    return path.read_bytes()


class _Reader:
    def __init__(self, data):
        self._buf = np.frombuffer(data, np.uint8)
        self.layout = parse_layout(memoryview(data))


def one_by_one(data, blocks):
    """(decoded sections of the leading good blocks, (code, message, block) of the first bad or None)."""
    layout = parse_layout(memoryview(data))
    sections = []
    for b in blocks:
        try:
            raw = read_block(memoryview(data), layout, int(b))
        except ShardError as exc:
            return sections, (exc.code, exc.message, exc.block)
        sections.append(raw)
    return sections, None


def vectorised(data, blocks):
    records, done, error = read_blocks(BlockReader(_Reader(data)), np.asarray(blocks, np.int64))
    return records, done, None if error is None else (error.code, error.message, error.block)


def check_same(data, blocks):
    sections, error = one_by_one(data, blocks)
    records, done, got = vectorised(data, blocks)
    assert done == len(sections)
    assert got == error
    if done:
        ids = np.concatenate([raw.sections[0].reshape(4, raw.n) for raw in sections], axis=1)
        assert np.array_equal(records.ids, ids)
        gaps = np.concatenate([raw.sections[3] for raw in sections])
        assert np.array_equal(np.sort(records.gaps.reshape(-1)), np.sort(gaps))


def test_intact_shard_reads_every_block(shard):
    layout = parse_layout(memoryview(shard))
    check_same(shard, range(layout.blocks))
    check_same(shard, [4, 1, 5])
    check_same(shard, [5])


def test_every_damaged_byte_gives_read_blocks_error(shard):
    layout = parse_layout(memoryview(shard))
    start, end = layout.block_offsets[0], layout.index_offset
    blocks = list(range(layout.blocks))
    for at in range(start, end, 3):
        for flip in (0x01, 0x80):
            damaged = bytearray(shard)
            damaged[at] ^= flip
            try:
                parse_layout(memoryview(bytes(damaged)))
            except ShardError:
                continue
            check_same(bytes(damaged), blocks)


def test_sections_rewritten_with_their_crc_fixed(shard):
    """Section heads that lie (codec, S, D, reserved) behind a valid payload CRC: the section checks decide."""
    layout = parse_layout(memoryview(shard))
    for b in range(layout.blocks):
        offset, length = layout.block_offsets[b], layout.block_lengths[b]
        for field, value in ((0, 2), (0, 0), (0, 1), (1, 1), (4, 0), (4, 1 << 20), (8, 0), (8, 7)):
            damaged = bytearray(shard)
            payload = offset + 32
            if field == 0:
                damaged[payload] = value
            elif field == 1:
                damaged[payload + 1] = value
            else:
                struct.pack_into("<I", damaged, payload + field, value)
            crc = zlib.crc32(bytes(damaged[payload:offset + length]))
            struct.pack_into("<I", damaged, offset + 20, crc)
            struct.pack_into("<I", damaged, offset + 28, zlib.crc32(bytes(damaged[offset:offset + 28])))
            check_same(bytes(damaged), list(range(layout.blocks)))


def test_frames_rewritten_with_their_crc_fixed(shard):
    """Block header fields that lie (n, first ordinal, payload length, reserved) behind a valid header CRC,
    and section heads further into the payload (the second to fifth section)."""
    layout = parse_layout(memoryview(shard))
    seen = set()
    for b in range(layout.blocks):
        offset, length = layout.block_offsets[b], layout.block_lengths[b]
        for at, fmt, value in ((4, "<I", 7), (8, "<Q", 1), (16, "<I", length), (24, "<I", 1)):
            damaged = bytearray(shard)
            struct.pack_into(fmt, damaged, offset + at, value)
            struct.pack_into("<I", damaged, offset + 28, zlib.crc32(bytes(damaged[offset:offset + 28])))
            check_same(bytes(damaged), list(range(layout.blocks)))
            found = one_by_one(bytes(damaged), range(layout.blocks))[1]
            seen.add(found and found[1])
        pos, payload = 0, offset + 32
        for section in range(5):
            head = payload + pos
            stored, decoded = struct.unpack_from("<II", shard, head + 4)
            for field, value in ((4, stored + 1), (4, max(stored - 1, 0)), (8, decoded + 1), (0, 1 - shard[head])):
                damaged = bytearray(shard)
                if field:
                    struct.pack_into("<I", damaged, head + field, value)
                else:
                    damaged[head] = value
                struct.pack_into("<I", damaged, offset + 20, zlib.crc32(bytes(damaged[payload:offset + length])))
                struct.pack_into("<I", damaged, offset + 28, zlib.crc32(bytes(damaged[offset:offset + 28])))
                check_same(bytes(damaged), list(range(layout.blocks)))
                found = one_by_one(bytes(damaged), range(layout.blocks))[1]
                seen.add(found and found[1])
            pos += 12 + stored
    assert len(seen) >= 6


def test_groups_stop_at_the_first_damaged_block(shard):
    """Two shards read together: a damaged block in the first ends the reading (the second gets nothing);
    one in the second leaves the first whole."""
    layout = parse_layout(memoryview(shard))
    damaged = bytearray(shard)
    damaged[layout.block_offsets[2] + 40] ^= 0x10                  # block 2's payload: its CRC fails
    damaged = bytes(damaged)
    every = np.arange(layout.blocks)
    first, second = read_groups([(BlockReader(_Reader(damaged)), every), (BlockReader(_Reader(shard)), every)])
    assert first[1] == 2 and (first[2].code, first[2].block) == ("block-crc", 2)
    assert second[0] is None and second[1:] == (0, None)
    first, second = read_groups([(BlockReader(_Reader(shard)), every), (BlockReader(_Reader(damaged)), every)])
    assert first[1] == layout.blocks and first[2] is None
    assert second[1] == 2 and (second[2].code, second[2].block) == ("block-crc", 2)
    alone = read_blocks(BlockReader(_Reader(shard)), every)[0]
    assert np.array_equal(first[0].gaps, alone.gaps) and np.array_equal(second[0].ids, alone.ids[:, :2 * 8])
    empty = read_groups([(BlockReader(_Reader(shard)), every[:0]), (BlockReader(_Reader(shard)), every[3:])])
    assert empty[0][1] == 0 and empty[1][1] == layout.blocks - 3
