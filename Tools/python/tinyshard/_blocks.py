"""Many blocks of one shard read at once (record order, where every record of a block is read soon):
exactly layout.read_block's checks of each block (FORMAT.md 1.4 rule 4: frame, both checksums, all five
sections, the payload filled exactly), with the per-block work vectorised across the blocks.

The 32-byte block headers are read with one numpy gather and checked as arrays; the five section heads
likewise, one gather per section over all blocks (each section starts where the one before it ends).
What stays per block is one CRC-32 call for the header, one for the payload and one inflation per zlib
section. The decoded sections of the blocks that pass are laid end to end and cut into the byte planes
of codec.RecordBytes for all of them at once (a few numpy copies, not a few per block).

A block that fails any check is handed to layout.read_block, whose error (the spec's first for that
block) is then the one raised: the answer and the error are read_block's for every file, and the blocks
before the first damaged one are returned (as read one by one).
"""

import numpy as np

from . import _zlib as zlib
from . import format as F
from .codec import RecordBytes, record_bytes
from .errors import ShardError
from .layout import _BLOCK_HEAD, _SECTION_HEAD, _inflate, as_view, read_block, section_lengths

_SECTIONS = 5


class BlockReader:
    """One shard's map and its index as arrays, for reading many of its blocks at once."""

    def __init__(self, reader):
        self.reader = reader
        self.layout = reader.layout
        self.view = as_view(reader._buf)
        self.data = np.frombuffer(self.view, dtype=np.uint8)
        self.offsets = np.array(self.layout.block_offsets, dtype=np.int64)
        self.lengths = np.array(self.layout.block_lengths, dtype=np.int64)
        self.header = self.layout.header
        r = self.header.records_per_block
        self.records = np.full(self.layout.blocks, r, dtype=np.int64)
        if self.layout.blocks:
            self.records[-1] = self.layout.block_records(self.layout.blocks - 1)


def _gather(groups, at, width):
    """(B, width) bytes at the file positions `at` (concatenated over the groups, each group's from its
    own shard)."""
    parts, start = [], 0
    for reader, blocks in groups:
        parts.append(reader.data[at[start:start + len(blocks), None] + np.arange(width)])
        start += len(blocks)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _passing(groups):
    """For the blocks of all groups ((BlockReader, shard-local block numbers) each), concatenated: (mask of
    the blocks passing every check of the frame and the section heads, (B, 5) section starts in their
    files, (B, 5) stored lengths, (B, 5) codecs, (B, 5) decoded lengths, the map of each block)."""
    count = sum(len(blocks) for _, blocks in groups)
    offsets = np.concatenate([reader.offsets[blocks] for reader, blocks in groups])
    lengths = np.concatenate([reader.lengths[blocks] for reader, blocks in groups])
    n = np.concatenate([reader.records[blocks] for reader, blocks in groups])
    firsts = np.concatenate([blocks.astype(np.uint64) * np.uint64(reader.header.records_per_block)
                             for reader, blocks in groups])
    views = [reader.view for reader, blocks in groups for _ in range(len(blocks))]
    heads = _gather(groups, offsets, _BLOCK_HEAD.itemsize).view(_BLOCK_HEAD).reshape(count)
    crc = zlib.crc32
    offset_list, length_list = offsets.tolist(), lengths.tolist()
    header_crcs = np.fromiter((crc(view[o:o + F.BLOCK_HEADER.size]) for view, o in zip(views, offset_list)),
                              np.int64, count)
    payload_len = lengths - F.BLOCK_HEADER_SIZE
    good = ((heads["magic"] == F.BLOCK_MAGIC) & (header_crcs == heads["crc"]) & (heads["reserved"] == 0)
            & (heads["n"] == n) & (heads["first"] == firsts) & (heads["payload_len"] == payload_len))
    # The payload's CRC is computed only for blocks whose frame passed (as read_block would).
    payload_crcs = np.fromiter((crc(view[o + F.BLOCK_HEADER_SIZE:o + size]) if ok else -1
                                for view, o, size, ok in zip(views, offset_list, length_list, good.tolist())),
                               np.int64, count)
    good &= payload_crcs == heads["payload_crc"]
    # C, K, A and the index width are one epoch's; only n varies (a shard's last block).
    header = groups[0][0].header
    per_record = np.array(section_lengths(header, 1), dtype=np.int64)
    expected = n[:, None] * per_record
    starts = np.zeros((count, _SECTIONS), np.int64)
    stored = np.zeros((count, _SECTIONS), np.int64)
    codecs = np.zeros((count, _SECTIONS), np.uint8)
    pos = np.zeros(count, np.int64)
    payload = offsets + F.BLOCK_HEADER_SIZE
    for s in range(_SECTIONS):
        good &= pos + F.SECTION_HEADER_SIZE <= payload_len
        # A payload is followed by at least the index and footer: 12 bytes at its start can be read
        # whatever it holds; they are a section head only where the mask says so.
        at = np.where(good, payload + pos, payload)
        head = _gather(groups, at, _SECTION_HEAD.itemsize).view(_SECTION_HEAD).reshape(count)
        size = head["stored"].astype(np.int64)
        codec = head["codec"]
        good &= (((codec == F.CODEC_STORED) | (codec == F.CODEC_ZLIB)) & ~head["reserved"].any(axis=1)
                 & (head["decoded"] == expected[:, s])
                 & (pos + F.SECTION_HEADER_SIZE + size <= payload_len)
                 & ((codec == F.CODEC_ZLIB) | (size == expected[:, s])))
        starts[:, s] = at + F.SECTION_HEADER_SIZE
        stored[:, s] = np.where(good, size, 0)
        codecs[:, s] = codec
        pos = np.where(good, pos + F.SECTION_HEADER_SIZE + size, 0)
    good &= pos == payload_len
    return good, starts, stored, codecs, expected, views


def inflate_groups(groups):
    """For each group (BlockReader, shard-local block numbers), in order: (uint8 array: the five decoded
    sections of each of its leading blocks that pass every check, laid end to end, block after block; how
    many blocks that is; the ShardError of its first block that fails, located at the block, or None).
    Reading stops at the first block that fails: the groups after it get (empty, 0, None)."""
    given = [(reader, np.asarray(blocks, dtype=np.int64)) for reader, blocks in groups]
    empty = (np.zeros(0, np.uint8), 0, None)
    answers = [empty] * len(given)
    asked = [g for g, (_, blocks) in enumerate(given) if len(blocks)]
    if not asked:
        return answers
    groups = [given[g] for g in asked]
    good, starts, stored, codecs, expected, views = _passing(groups)
    done = len(good) if good.all() else int(np.argmin(good))
    parts = []
    zlib_codec = F.CODEC_ZLIB
    for i, (view, at_row, size_row, codec_row, length_row) in enumerate(zip(
            views, starts[:done].tolist(), stored[:done].tolist(), codecs[:done].tolist(),
            expected[:done].tolist())):
        try:
            parts.append(b"".join([_inflate(view[at:at + size], length) if codec == zlib_codec
                                   else view[at:at + size]
                                   for at, size, codec, length in zip(at_row, size_row, codec_row, length_row)]))
        except ShardError:
            done = i
            break
    start = 0
    for position, (g, (reader, blocks)) in enumerate(zip(asked, groups)):
        mine = min(max(done - start, 0), len(blocks))
        data = np.frombuffer(b"".join(parts[start:start + mine]), dtype=np.uint8)
        answers[g] = (data, mine, None)
        if mine < len(blocks):
            answers[g] = _rest(reader, blocks, mine, data)
            if answers[g][2] is None:                     # read_block passed the block: read on
                later = asked[position + 1:]
                for h, answer in zip(later, inflate_groups([given[h] for h in later])):
                    answers[h] = answer
            break
        start += len(blocks)
    return answers


def _rest(reader, blocks, done, data):
    """A group's answer from its first block that failed a check on: read_block's error for it, or (should
    the checks above ever be stricter than read_block's) that block's sections and the blocks after it."""
    b = int(blocks[done])
    try:
        raw = read_block(reader.view, reader.layout, b)
    except ShardError as exc:
        return data, done, exc.located(block=b)
    rest, more, error = inflate_blocks(reader, blocks[done + 1:])
    joined = np.frombuffer(b"".join([data.tobytes()] + [bytes(x) for x in raw.sections] + [rest.tobytes()]),
                           dtype=np.uint8)
    return joined, done + 1 + more, error


def inflate_blocks(block_reader, blocks):
    """inflate_groups for the blocks of one shard."""
    return inflate_groups([(block_reader, blocks)])[0]


def read_groups(groups):
    """inflate_groups' answers with each group's bytes cut into codec.RecordBytes (None for no block)."""
    return [(_record_bytes(reader.header, reader.records[np.asarray(blocks)[:done]], data) if done else None,
             done, error) for (reader, blocks), (data, done, error) in zip(groups, inflate_groups(groups))]


def read_blocks(block_reader, blocks):
    """read_groups for the blocks of one shard."""
    return read_groups([(block_reader, blocks)])[0]


def _record_bytes(header, n, buffer):
    """RecordBytes of blocks of n[i] records whose five decoded sections are laid end to end, block after
    block, in `buffer`: full blocks cut with a few numpy copies, any shorter block on its own."""
    count = len(n)
    r = int(n.max())
    width = sum(section_lengths(header, 1))
    if (n == r).all():
        return _full_blocks(header, buffer.reshape(count, width * r), r)
    # Rare (a shard's last block is the only short one): each block on its own, in order.
    ends = np.cumsum(n * width)
    pieces = []
    for i in range(count):
        block = buffer[ends[i] - n[i] * width:ends[i]]
        cuts = np.cumsum((0,) + section_lengths(header, int(n[i])))
        pieces.append(record_bytes(header, int(n[i]), [block[cuts[s]:cuts[s + 1]] for s in range(_SECTIONS)]))
    return RecordBytes.concatenate(pieces)


def _full_blocks(header, matrix, r):
    """RecordBytes of B blocks of r records each, the five sections of block i laid end to end in row i of
    `matrix` (B, W r)."""
    b = len(matrix)
    k, aug, width, length = header.k, header.aug_bytes, header.index_width, header.order_bytes
    cuts = np.cumsum((0,) + section_lengths(header, r)).tolist()
    ids = matrix[:, cuts[0]:cuts[1]].reshape(b, 4, r).transpose(1, 0, 2).reshape(4, b * r)
    codes = matrix[:, cuts[1]:cuts[2]].reshape(b * r, aug)
    values = matrix[:, cuts[2]:cuts[3]]
    first = values[:, :2 * r].reshape(b, 2, r).transpose(1, 0, 2).reshape(2, b * r)
    rest = values[:, 2 * r:].reshape(b, 2, r, k - 1).transpose(1, 0, 2, 3).reshape(2, b * r, k - 1)
    gaps = matrix[:, cuts[3]:cuts[4]].reshape(b, width, r, k).transpose(1, 0, 2, 3).reshape(width, b * r, k)
    order = matrix[:, cuts[4]:cuts[5]].reshape(b * r, length)
    return RecordBytes(ids=ids, aug=codes, first=first, rest=rest, gaps=gaps, order=order)
