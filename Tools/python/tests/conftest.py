"""Shared helpers: random record generation and assembling shards byte by byte (to make files
that a correct writer never produces, with valid checksums, to test one rule at a time)."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinyshard import format as F  # noqa: E402
from tinyshard.codec import encode_block  # noqa: E402

FIXTURES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..",
                                        "shared", "fixtures", "official_logits"))


def header(**fields):
    """A valid Header with defaults for a small probability shard."""
    base = dict(classes=1000, k=3, records_per_block=4,
                provenance={"dataset_checksum": "00000000"})
    base.update(fields)
    return F.Header(**base).validate()


def random_probabilities(rng, k, sorted_=True):
    """K float values of a random distribution over more than K classes (valid after float16
    rounding), descending when sorted_."""
    p = rng.dirichlet(np.full(k + 3, 0.3))[:k]
    return -np.sort(-p) if sorted_ else rng.permutation(p)


def assemble(h, blocks, records, index_entries=None, footer_blocks=None):
    """Preamble + header + the given block bytes + index + footer, all checksums valid."""
    out = bytearray(F.pack_preamble_and_header(h))
    entries = []
    for block in blocks:
        entries.append((len(out), len(block)))
        out += block
    index_offset = len(out)
    entries = entries if index_entries is None else index_entries
    out += F.pack_index(entries)
    count = len(entries) if footer_blocks is None else footer_blocks
    out += F.with_crc(F.FOOTER_BODY.pack(F.FOOTER_MAGIC, count, index_offset, records,
                                         F.index_length(count)))
    return bytes(out)


def raw_block(first, n, sections, reserved=0, n_field=None, first_field=None):
    """A block from explicit (codec, stored bytes, D) sections, checksums valid."""
    payload = b"".join(F.SECTION_HEADER.pack(codec, b"\0\0\0", len(stored), d) + stored
                       for codec, stored, d in sections)
    body = F.BLOCK_HEADER.pack(F.BLOCK_MAGIC, n if n_field is None else n_field,
                               first if first_field is None else first_field, len(payload),
                               F.crc32(payload), reserved)
    return F.with_crc(body) + payload


def block_of(h, first, ids, indices, values, aug=None):
    """encode_block without the writer's checks: records may break content rules."""
    ids = np.asarray(ids, dtype=np.uint32)
    aug = np.zeros((len(ids), h.aug_bytes), np.uint8) if aug is None else aug
    bits = np.asarray(values, dtype=np.float16).view(np.uint16)
    return encode_block(h, first, ids, aug, np.asarray(indices), bits)


@pytest.fixture
def write_file(tmp_path):
    """write_file(bytes, name='x.tshard') -> path"""
    def write(data, name="x.tshard"):
        path = tmp_path / name
        path.write_bytes(data)
        return str(path)
    return write
