"""Locating and checking a shard's structure: preamble, header, footer, index and block frames.

The checks run in a fixed order so that a file with one defect yields one predictable error code
in every implementation (the order is written down in SPEC_QUESTIONS.md Q1). Every offset and
length is checked against the buffer size before it is read.
"""

from dataclasses import dataclass

import numpy as np

from . import _zlib as zlib
from . import format as F
from ._crcvec import crc32_rows
from .errors import ShardError


@dataclass(frozen=True)
class Layout:
    """Where everything is in a complete shard whose header, footer and index are valid."""

    header: F.Header
    minor_version: int
    header_len: int
    records: int
    index_offset: int
    block_offsets: tuple
    block_lengths: tuple
    file_size: int

    @property
    def blocks(self):
        return len(self.block_offsets)

    @property
    def data_start(self):
        return F.PREAMBLE_SIZE + self.header_len + F.CRC.size

    def block_records(self, b):
        """n_b: every block holds R records except the last, which holds the rest."""
        r = self.header.records_per_block
        return min(r, self.records - b * r)


@dataclass(frozen=True)
class RawBlock:
    """A block whose frame and checksums are valid, with its five sections decoded to bytes
    (sample ids, augmentation, values, indices, order), each a uint8 numpy array."""

    index: int
    first: int
    n: int
    sections: tuple
    stored_sizes: tuple      # S of each section as found in the file


def _crc_at(buf, offset):
    return F.CRC.unpack_from(buf, offset)[0]


def _check_magic_and_version(buf):
    size = len(buf)
    head = bytes(buf[:min(size, 8)])
    if head != F.SHARD_MAGIC[:len(head)]:
        raise ShardError("bad-magic", "file does not start with the TinyShard magic")
    if size < F.PREAMBLE_SIZE:
        raise ShardError("incomplete", f"file is {size} bytes, shorter than the preamble")
    _, major, minor, header_len = F.PREAMBLE.unpack_from(buf, 0)
    if major != F.MAJOR_VERSION:
        raise ShardError("unsupported-version", f"major version {major} is not 1")
    return minor, header_len


def _read_header(buf, header_len):
    if not F.MIN_HEADER_LEN <= header_len <= F.MAX_HEADER_LEN:
        raise ShardError("bad-header", f"header length {header_len} outside [2, 1048576]")
    end = F.PREAMBLE_SIZE + header_len
    if len(buf) < end + F.CRC.size:
        raise ShardError("incomplete", "file ends inside the header")
    if F.crc32(buf[:end]) != _crc_at(buf, end):
        raise ShardError("header-crc", "header checksum mismatch")
    return F.validate_header_object(F.parse_json_object(buf[F.PREAMBLE_SIZE:end]))


def _read_footer(buf, data_start):
    size = len(buf)
    if size < data_start + F.index_length(0) + F.FOOTER_SIZE:
        raise ShardError("incomplete", "file too short to hold an index and a footer")
    at = size - F.FOOTER_SIZE
    magic, blocks, index_offset, records, index_len = F.FOOTER_BODY.unpack_from(buf, at)
    if magic != F.FOOTER_MAGIC:
        raise ShardError("incomplete", "no footer: the writer did not finish")
    if F.crc32(buf[at:at + F.FOOTER_BODY.size]) != _crc_at(buf, at + F.FOOTER_BODY.size):
        raise ShardError("footer-crc", "footer checksum mismatch")
    if index_len != F.index_length(blocks):
        raise ShardError("bad-index", f"footer index length {index_len} is not 12 + 12*{blocks}")
    if index_offset + index_len != at:
        raise ShardError("bad-index", "the footer does not follow the index directly")
    return blocks, index_offset, records


def _read_index(buf, index_offset, blocks):
    magic, count = F.INDEX_HEAD.unpack_from(buf, index_offset)
    if magic != F.INDEX_MAGIC:
        raise ShardError("bad-index", "index magic missing")
    body_end = index_offset + F.index_length(blocks) - F.CRC.size
    if F.crc32(buf[index_offset:body_end]) != _crc_at(buf, body_end):
        raise ShardError("bad-index", "index checksum mismatch")
    if count != blocks:
        raise ShardError("bad-index", f"index holds {count} blocks, footer says {blocks}")
    entries = np.frombuffer(buf, dtype=np.dtype([("offset", "<u8"), ("length", "<u4")]),
                            count=blocks, offset=index_offset + F.INDEX_HEAD.size)
    return entries["offset"], entries["length"]


def _check_block_chain(offsets, lengths, data_start, index_offset):
    """Blocks back to back from data_start to the index, each at least a block header long; the first
    break in block order is the error. Checked as arrays (a shard has ~10^5 blocks at scale)."""
    offsets = np.asarray(offsets, dtype=np.uint64)
    lengths = np.asarray(lengths, dtype=np.uint64)
    expected = np.empty_like(offsets)
    expected[:1] = data_start
    np.add(offsets[:-1], lengths[:-1], out=expected[1:])
    broken = (offsets != expected) | (lengths < F.BLOCK_HEADER_SIZE)
    if broken.any():
        b = int(np.argmax(broken))
        offset, length, start = int(offsets[b]), int(lengths[b]), int(expected[b])
        if offset != start:
            raise ShardError("bad-index", f"block {b} starts at {offset}, expected {start}", block=b)
        raise ShardError("bad-index", f"block {b} length {length} < 32", block=b)
    end = int(offsets[-1]) + int(lengths[-1]) if len(offsets) else data_start
    if end != index_offset:
        raise ShardError("bad-index", f"index starts at {index_offset}, blocks end at {end}")


def parse_layout(buf):
    """Check everything outside the blocks' contents and return the Layout (section 1)."""
    minor, header_len = _check_magic_and_version(buf)
    header = _read_header(buf, header_len)
    data_start = F.PREAMBLE_SIZE + header_len + F.CRC.size
    blocks, index_offset, records = _read_footer(buf, data_start)
    offsets, lengths = _read_index(buf, index_offset, blocks)
    r = header.records_per_block
    if blocks != -(-records // r):
        raise ShardError("bad-index", f"{records} records need {-(-records // r)} blocks of "
                         f"{r}, the index has {blocks}")
    _check_block_chain(offsets, lengths, data_start, index_offset)
    return Layout(header=header, minor_version=minor, header_len=header_len, records=records,
                  index_offset=index_offset, block_offsets=tuple(offsets.tolist()),
                  block_lengths=tuple(lengths.tolist()), file_size=len(buf))


# --------------------------------------------------------------------------------------------
# Blocks


def section_lengths(header, n):
    """Decoded length D of each of the five sections for a block of n records (section 3)."""
    k = header.k
    return (4 * n, header.aug_bytes * n, 2 * n * k, header.index_width * n * k,
            header.order_bytes * n)


def as_view(buf):
    """A memoryview of a shard's bytes (a memmap, an array, bytes): its slices cost ~10x less than numpy
    memmap slices, and zlib and struct read them without a copy."""
    return buf if isinstance(buf, memoryview) else memoryview(buf)


def _check_block_frame(view, layout, b):
    """(first, n, payload) of block b after its frame and payload checksum (FORMAT.md 1.4 rule 4, up to the
    sections); `payload` is a memoryview slice of `view`."""
    offset, length = layout.block_offsets[b], layout.block_lengths[b]
    magic, n, first, payload_len, payload_crc, reserved = F.BLOCK_HEADER.unpack_from(view, offset)
    if magic != F.BLOCK_MAGIC:
        raise ShardError("block-structure", "block magic missing")
    if F.crc32(view[offset:offset + F.BLOCK_HEADER.size]) != _crc_at(
            view, offset + F.BLOCK_HEADER.size):
        raise ShardError("block-crc", "block header checksum mismatch")
    if reserved != 0:
        raise ShardError("block-structure", "block header reserved field is not 0")
    if n != layout.block_records(b):
        raise ShardError("block-structure", f"block holds {n} records, expected "
                         f"{layout.block_records(b)}")
    if first != b * layout.header.records_per_block:
        raise ShardError("block-structure", f"block's first ordinal is {first}, expected "
                         f"{b * layout.header.records_per_block}")
    if payload_len != length - F.BLOCK_HEADER_SIZE:
        raise ShardError("block-structure", f"payload length {payload_len} disagrees with the "
                         f"index's block length {length}")
    payload = view[offset + F.BLOCK_HEADER_SIZE:offset + length]
    if F.crc32(payload) != payload_crc:
        raise ShardError("block-crc", "block payload checksum mismatch")
    return first, n, payload


def _inflate(stored, decoded_len):
    """The D bytes one zlib stream of exactly S bytes inflates to (bytes), or ShardError('bad-section')."""
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(stored, decoded_len + 1)
    except zlib.error as exc:
        raise ShardError("bad-section", f"zlib stream is invalid: {exc}") from None
    if len(data) != decoded_len or not inflater.eof or inflater.unused_data:
        raise ShardError("bad-section", "zlib section does not inflate to exactly D bytes "
                         "using exactly S bytes")
    return data


def _section_bytes(payload, pos, expected_len):
    """(decoded bytes, S) of the section at `pos` in a payload (a memoryview): bytes for a zlib section, a
    slice of the payload for a stored one."""
    if pos + F.SECTION_HEADER_SIZE > len(payload):
        raise ShardError("bad-section", "section header runs past the payload")
    codec, reserved, stored_len, decoded_len = F.SECTION_HEADER.unpack_from(payload, pos)
    if codec not in (F.CODEC_STORED, F.CODEC_ZLIB):
        raise ShardError("bad-section", f"unknown section codec {codec}")
    if reserved != b"\0\0\0":
        raise ShardError("bad-section", "section reserved bytes are not 0")
    if decoded_len != expected_len:
        raise ShardError("bad-section", f"section decoded length {decoded_len}, expected "
                         f"{expected_len}")
    start = pos + F.SECTION_HEADER_SIZE
    if start + stored_len > len(payload):
        raise ShardError("bad-section", "section runs past the payload")
    stored = payload[start:start + stored_len]
    if codec == F.CODEC_STORED:
        if stored_len != decoded_len:
            raise ShardError("bad-section", "stored section with S != D")
        return stored, stored_len
    return _inflate(stored, decoded_len), stored_len


def block_sections(buf, layout, b, lengths=None):
    """(first, n, sections, stored sizes) of block b after every check of FORMAT.md 1.4 rule 4: frame,
    checksums, then all five sections (codec, reserved bytes, D, S, inflation, in section order) and the
    payload filled exactly. `sections` holds the five decoded sections as bytes-like objects (bytes for a
    zlib section, a memoryview of `buf` for a stored one). `lengths`, when given, is
    section_lengths(layout.header, layout.block_records(b)) (a caller reading many blocks keeps it).
    Errors carry the block number."""
    try:
        first, n, payload = _check_block_frame(as_view(buf), layout, b)
        sections, sizes, pos = [], [], 0
        for expected_len in (section_lengths(layout.header, n) if lengths is None else lengths):
            data, stored_len = _section_bytes(payload, pos, expected_len)
            sections.append(data)
            sizes.append(stored_len)
            pos += F.SECTION_HEADER_SIZE + stored_len
        if pos != len(payload):
            raise ShardError("bad-section", f"sections end at {pos}, payload is {len(payload)}")
    except ShardError as exc:
        raise exc.located(block=b) from None
    return first, n, sections, sizes


def read_block(buf, layout, b):
    """Check block b's frame, checksums and sections; return its decoded section bytes."""
    first, n, sections, sizes = block_sections(buf, layout, b)
    return RawBlock(index=b, first=first, n=n,
                    sections=tuple(np.frombuffer(s, dtype=np.uint8) for s in sections),
                    stored_sizes=tuple(sizes))


def read_block_ids(buf, layout, b):
    """Only block b's sample ids (FORMAT.md 1.3: what lookup tables are built from): its frame, payload
    checksum and sample-id section are checked, not its other sections, which are checked when a record of
    the block is read. The decoded id planes as bytes (4n)."""
    try:
        first, n, payload = _check_block_frame(as_view(buf), layout, b)
        data, _ = _section_bytes(payload, 0, section_lengths(layout.header, n)[0])
    except ShardError as exc:
        raise exc.located(block=b) from None
    return n, np.frombuffer(data, dtype=np.uint8)


_BLOCK_HEAD = np.dtype([("magic", "S4"), ("n", "<u4"), ("first", "<u8"), ("payload_len", "<u4"),
                        ("payload_crc", "<u4"), ("reserved", "<u4"), ("crc", "<u4")])
_SECTION_HEAD = np.dtype([("codec", "u1"), ("reserved", "u1", (3,)), ("stored", "<u4"), ("decoded", "<u4")])


def gather_at(data, offsets, dtype):
    """The item of `dtype` starting at each byte offset of `data` (a uint8 array): one gather through a
    view that starts an item at every byte, so the index array holds an entry per item, not per byte.
    Every offset must leave a whole item inside `data`."""
    # Gathered as opaque items and viewed after: numpy copies a structured item field by field, ~10x slower.
    opaque = np.dtype((np.void, dtype.itemsize))
    starts = len(data) - dtype.itemsize + 1
    if starts <= 0:
        return np.zeros(0, opaque)[np.asarray(offsets, dtype=np.int64)].view(dtype)
    every_byte = np.ndarray(shape=(starts,), dtype=opaque, buffer=data, strides=(1,))
    return every_byte[offsets].view(dtype)


def crc32_ranges(view, starts, ends):
    """int64 CRC-32 of view[start:end] for each pair: one C-level map over the ranges (a Python-level loop
    per block cost as much as the checksums themselves)."""
    return np.fromiter(map(zlib.crc32, map(view.__getitem__, map(slice, starts.tolist(), ends.tolist()))),
                       np.int64, len(starts))


def shard_sample_ids(buf, layout):
    """All sample ids of a shard (uint32, ordinal order), from the sample-id sections alone, with exactly
    read_block_ids' checks of every block (FORMAT.md 1.3: frame, payload checksum, sample-id section), the
    per-block work vectorised across the blocks: the 32-byte block headers and the id sections' heads are
    read with one numpy gather each and checked as arrays; what stays per block is one CRC-32 call for the
    header, one for the payload and one inflation for a zlib id section. A block that fails any check is
    handed, with every later block, to read_block_ids, whose error (the spec's first, FORMAT.md 1.4) is
    then the one raised: the answer and the error are read_block_ids' for every file."""
    blocks = layout.blocks
    if blocks == 0:
        return np.zeros(0, dtype=np.uint32)
    view = as_view(buf)
    data = np.frombuffer(view, dtype=np.uint8)
    r = layout.header.records_per_block
    offsets = np.array(layout.block_offsets, dtype=np.int64)
    lengths = np.array(layout.block_lengths, dtype=np.int64)
    n = np.full(blocks, r, dtype=np.int64)
    n[-1] = layout.block_records(blocks - 1)
    heads = gather_at(data, offsets, _BLOCK_HEAD)
    # Every block's payload is followed by at least the index and footer, so its first 12 bytes can be read
    # whatever its length; they are a section head only where the payload holds one (checked below).
    sections = gather_at(data, offsets + F.BLOCK_HEADER_SIZE, _SECTION_HEAD)
    header_crcs = crc32_rows(heads.view(np.uint8).reshape(blocks, _BLOCK_HEAD.itemsize)[:, :F.BLOCK_HEADER.size])
    payload_crcs = crc32_ranges(view, offsets + F.BLOCK_HEADER_SIZE, offsets + lengths)
    payload_len = lengths - F.BLOCK_HEADER_SIZE
    stored_len = sections["stored"].astype(np.int64)
    codec = sections["codec"]
    good = ((heads["magic"] == F.BLOCK_MAGIC) & (header_crcs == heads["crc"]) & (heads["reserved"] == 0)
            & (heads["n"] == n) & (heads["first"] == np.arange(blocks, dtype=np.uint64) * np.uint64(r))
            & (heads["payload_len"] == payload_len) & (payload_crcs == heads["payload_crc"])
            & (payload_len >= F.SECTION_HEADER_SIZE)
            & ((codec == F.CODEC_STORED) | (codec == F.CODEC_ZLIB)) & ~sections["reserved"].any(axis=1)
            & (sections["decoded"] == 4 * n) & (F.SECTION_HEADER_SIZE + stored_len <= payload_len)
            & ((codec == F.CODEC_ZLIB) | (stored_len == 4 * n)))
    first_bad = blocks if good.all() else int(np.argmin(good))
    start = offsets + (F.BLOCK_HEADER_SIZE + F.SECTION_HEADER_SIZE)
    # Inflated id sections (zlib: sequential ids), block by block, up to the first that fails.
    inflated = {}
    for b in np.flatnonzero(codec[:first_bad] == F.CODEC_ZLIB).tolist():
        at, size = int(start[b]), int(stored_len[b])
        try:
            inflated[b] = _inflate(view[at:at + size], 4 * int(n[b]))
        except ShardError:
            first_bad = b
            break
    ids = np.empty(layout.records, dtype="<u4")
    full = blocks if n[-1] == r else blocks - 1
    by_block = ids[:full * r].view(np.uint8).reshape(full, r, 4)
    # Stored id sections of full blocks: one gather of their bytes, one transposing copy into the ids.
    plain = np.flatnonzero(codec[:min(first_bad, full)] == F.CODEC_STORED)
    if len(plain):
        planes = gather_at(data, start[plain], np.dtype((np.uint8, 4 * r))).reshape(len(plain), 4, r)
        by_block[plain] = planes.transpose(0, 2, 1)
    # Zlib id sections, the last (short) block, and from the first block that fails a check on:
    # read_block_ids raises that block's error (or, should the checks above ever be stricter than its,
    # reads the blocks).
    rest = [b for b in inflated if b < full] + list(range(min(first_bad, full), blocks))
    for b in rest:
        if b in inflated:
            count, planes = int(n[b]), np.frombuffer(inflated[b], dtype=np.uint8)
        elif b < first_bad and codec[b] == F.CODEC_STORED:
            count = int(n[b])
            planes = data[int(start[b]):int(start[b]) + 4 * count]
        else:
            count, planes = read_block_ids(view, layout, b)
        ids[b * r:b * r + count].view(np.uint8).reshape(count, 4)[...] = planes.reshape(4, count).T
    return ids.astype(np.uint32, copy=False)
