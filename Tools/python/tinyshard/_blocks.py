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

import zlib

import numpy as np

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

    def _passing(self, blocks):
        """(mask of the blocks passing every check of the frame and the section heads, (B, 5) section
        starts in the file, (B, 5) stored lengths, (B, 5) codecs)."""
        count = len(blocks)
        offsets, lengths, n = self.offsets[blocks], self.lengths[blocks], self.records[blocks]
        data, view = self.data, self.view
        heads = data[offsets[:, None] + np.arange(_BLOCK_HEAD.itemsize)].view(_BLOCK_HEAD).reshape(count)
        crc = zlib.crc32
        offset_list, length_list = offsets.tolist(), lengths.tolist()
        header_crcs = np.fromiter((crc(view[o:o + F.BLOCK_HEADER.size]) for o in offset_list), np.int64, count)
        payload_len = lengths - F.BLOCK_HEADER_SIZE
        good = ((heads["magic"] == F.BLOCK_MAGIC) & (header_crcs == heads["crc"]) & (heads["reserved"] == 0)
                & (heads["n"] == n)
                & (heads["first"] == blocks.astype(np.uint64) * np.uint64(self.header.records_per_block))
                & (heads["payload_len"] == payload_len))
        # The payload's CRC is computed only for blocks whose frame passed (as read_block would).
        payload_crcs = np.fromiter((crc(view[o + F.BLOCK_HEADER_SIZE:o + size]) if ok else -1
                                    for o, size, ok in zip(offset_list, length_list, good.tolist())),
                                   np.int64, count)
        good &= payload_crcs == heads["payload_crc"]
        expected = np.stack([np.asarray(d, dtype=np.int64) * np.ones(count, np.int64)
                             for d in section_lengths(self.header, n)], axis=1)
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
            head = data[at[:, None] + np.arange(_SECTION_HEAD.itemsize)].view(_SECTION_HEAD).reshape(count)
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
        return good, starts, stored, codecs, expected


def read_blocks(block_reader, blocks):
    """(RecordBytes of the records of the leading blocks that pass every check, their count, the
    ShardError of the first block that fails or None). `blocks`: shard-local block numbers, int64."""
    blocks = np.asarray(blocks, dtype=np.int64)
    if not len(blocks):
        return None, 0, None
    good, starts, stored, codecs, expected = block_reader._passing(blocks)
    first_bad = len(blocks) if good.all() else int(np.argmin(good))
    view = block_reader.view
    parts = []
    error = None
    zlib_codec = F.CODEC_ZLIB
    for i, (at_row, size_row, codec_row, length_row) in enumerate(zip(
            starts[:first_bad].tolist(), stored[:first_bad].tolist(), codecs[:first_bad].tolist(),
            expected[:first_bad].tolist())):
        block_parts = []
        try:
            for at, size, codec, length in zip(at_row, size_row, codec_row, length_row):
                block_parts.append(_inflate(view[at:at + size], length) if codec == zlib_codec
                                   else view[at:at + size])
        except ShardError:
            first_bad = i
            break
        parts += block_parts
    if first_bad < len(blocks):
        b = int(blocks[first_bad])
        try:
            raw = read_block(view, block_reader.layout, b)
        except ShardError as exc:
            error = exc.located(block=b)
        else:                 # read_block's checks found nothing (never, while the checks agree): use it
            parts += list(raw.sections)
            first_bad += 1
            extra, more, error = read_blocks(block_reader, blocks[first_bad:])
            head = _record_bytes(block_reader.header, block_reader.records[blocks[:first_bad]], parts)
            return (RecordBytes.concatenate([head, extra]) if more else head), first_bad + more, error
    return _record_bytes(block_reader.header, block_reader.records[blocks[:first_bad]], parts), first_bad, error


def _record_bytes(header, n, parts):
    """RecordBytes of blocks of n[i] records whose five decoded sections are `parts` (5 per block, in
    order): full blocks cut from one buffer with a few numpy copies, any shorter block on its own."""
    count = len(n)
    if not count:
        return None
    buffer = np.frombuffer(b"".join(parts), dtype=np.uint8)
    r = int(n.max())
    full = np.flatnonzero(n == r)
    width = sum(section_lengths(header, 1))
    if len(full) == count:
        return _full_blocks(header, buffer.reshape(count, width * r), r)
    # Rare (a shard's last block is the only short one): each block on its own, in order.
    ends = np.cumsum(n * width)
    pieces = []
    for i in range(count):
        block = buffer[ends[i] - n[i] * width:ends[i]]
        lengths = section_lengths(header, int(n[i]))
        cuts = np.cumsum((0,) + lengths)
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
