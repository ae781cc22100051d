"""Locating and checking a shard's structure: preamble, header, footer, index and block frames.

The checks run in a fixed order so that a file with one defect yields one predictable error code
in every implementation (the order is written down in SPEC_QUESTIONS.md Q1). Every offset and
length is checked against the buffer size before it is read.
"""

import zlib
from dataclasses import dataclass

import numpy as np

from . import format as F
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
    return entries["offset"].tolist(), entries["length"].tolist()


def _check_block_chain(offsets, lengths, data_start, index_offset):
    expected = data_start
    for b, (offset, length) in enumerate(zip(offsets, lengths)):
        if offset != expected:
            raise ShardError("bad-index", f"block {b} starts at {offset}, expected {expected}",
                             block=b)
        if length < F.BLOCK_HEADER_SIZE:
            raise ShardError("bad-index", f"block {b} length {length} < 32", block=b)
        expected = offset + length
    if expected != index_offset:
        raise ShardError("bad-index", f"index starts at {index_offset}, blocks end at {expected}")


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
                  index_offset=index_offset, block_offsets=tuple(offsets),
                  block_lengths=tuple(lengths), file_size=len(buf))


# --------------------------------------------------------------------------------------------
# Blocks


def section_lengths(header, n):
    """Decoded length D of each of the five sections for a block of n records (section 3)."""
    k = header.k
    return (4 * n, header.aug_bytes * n, 2 * n * k, header.index_width * n * k,
            header.order_bytes * n)


def _check_block_frame(buf, layout, b):
    offset, length = layout.block_offsets[b], layout.block_lengths[b]
    magic, n, first, payload_len, payload_crc, reserved = F.BLOCK_HEADER.unpack_from(buf, offset)
    if magic != F.BLOCK_MAGIC:
        raise ShardError("block-structure", "block magic missing")
    if F.crc32(buf[offset:offset + F.BLOCK_HEADER.size]) != _crc_at(
            buf, offset + F.BLOCK_HEADER.size):
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
    payload = buf[offset + F.BLOCK_HEADER_SIZE:offset + length]
    if F.crc32(payload) != payload_crc:
        raise ShardError("block-crc", "block payload checksum mismatch")
    return first, n, payload


def _inflate(stored, decoded_len):
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(stored, decoded_len + 1)
    except zlib.error as exc:
        raise ShardError("bad-section", f"zlib stream is invalid: {exc}") from None
    if len(data) != decoded_len or not inflater.eof or inflater.unused_data:
        raise ShardError("bad-section", "zlib section does not inflate to exactly D bytes "
                         "using exactly S bytes")
    return np.frombuffer(data, dtype=np.uint8)


def _read_section(payload, pos, expected_len):
    """(decoded bytes, S) of the section at `pos` in a payload."""
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
        return np.asarray(stored, dtype=np.uint8), stored_len
    return _inflate(bytes(stored), decoded_len), stored_len


def read_block(buf, layout, b):
    """Check block b's frame, checksums and sections; return its decoded section bytes."""
    try:
        first, n, payload = _check_block_frame(buf, layout, b)
        sections, sizes, pos = [], [], 0
        for expected_len in section_lengths(layout.header, n):
            data, stored_len = _read_section(payload, pos, expected_len)
            sections.append(data)
            sizes.append(stored_len)
            pos += F.SECTION_HEADER_SIZE + stored_len
        if pos != len(payload):
            raise ShardError("bad-section", f"sections end at {pos}, payload is {len(payload)}")
    except ShardError as exc:
        raise exc.located(block=b) from None
    return RawBlock(index=b, first=first, n=n, sections=tuple(sections),
                    stored_sizes=tuple(sizes))


def read_block_ids(buf, layout, b):
    """Only block b's sample ids (FORMAT.md 1.3: what lookup tables are built from): its frame, payload
    checksum and sample-id section are checked, not its other sections, which are checked when a record of
    the block is read. The decoded id planes as bytes (4n)."""
    try:
        first, n, payload = _check_block_frame(buf, layout, b)
        data, _ = _read_section(payload, 0, section_lengths(layout.header, n)[0])
    except ShardError as exc:
        raise exc.located(block=b) from None
    return n, data
