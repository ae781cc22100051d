"""Damaged and invalid files: every single-byte change and every truncation of a small shard is
reported, and each rule's defect (made with valid checksums) yields its spec error code."""

import math
import zlib

import numpy as np
import pytest

from tinyshard import format as F
from tinyshard.augment import Box, Params, View, encode_params
from tinyshard.codec import encode_indices, encode_values, to_planes
from tinyshard.errors import ERROR_CODES, ShardError
from tinyshard.reader import ShardReader
from tinyshard.verify import verify_shard
from tinyshard.writer import ShardWriter

from conftest import assemble, block_of, header, random_probabilities, raw_block


@pytest.fixture(scope="module")
def small_shard(tmp_path_factory):
    """5 records in blocks of 2, params augmentation: every structure appears."""
    path = tmp_path_factory.mktemp("small") / "small.tshard"
    rng = np.random.default_rng(5)
    code = encode_params(Params(View(64, 48, Box(1, 2, 30, 20), flip=True)), (32, 32))
    with ShardWriter(str(path), 300, 3, augmentation_kind="params", output_size=(32, 32),
                     records_per_block=2, provenance={"teacher": "x"}) as writer:
        for i in range(5):
            writer.append(i * 11, rng.choice(300, 3, replace=False),
                          random_probabilities(rng, 3), code)
    return path.read_bytes()


def read_everything(path):
    with ShardReader(path) as reader:
        list(reader)
        reader.find(0)


def test_small_shard_is_valid(small_shard, write_file):
    path = write_file(small_shard)
    assert verify_shard(path) == []
    read_everything(path)


@pytest.mark.parametrize("mask", [0xFF, 0x01])
def test_every_byte_change_is_reported(small_shard, tmp_path, mask):
    path = tmp_path / "flip.tshard"
    for at in range(len(small_shard)):
        damaged = bytearray(small_shard)
        damaged[at] ^= mask
        path.write_bytes(damaged)
        problems = verify_shard(str(path))
        assert problems, f"flip at {at} not reported"
        assert all(p.code in ERROR_CODES for p in problems)
        with pytest.raises(ShardError):
            read_everything(str(path))


def test_every_truncation_is_reported(small_shard, tmp_path):
    path = tmp_path / "cut.tshard"
    for size in range(len(small_shard)):
        path.write_bytes(small_shard[:size])
        problems = verify_shard(str(path))
        assert [p.code for p in problems] == ["incomplete"], (size, problems)
        with pytest.raises(ShardError) as info:
            ShardReader(str(path))
        assert info.value.code == "incomplete"


def test_appended_bytes_make_the_file_incomplete(small_shard, write_file):
    assert [p.code for p in verify_shard(write_file(small_shard + b"\0"))] == ["incomplete"]


# ---- one defect at a time, checksums valid ---------------------------------------------------


def codes(data, write_file):
    return [p.code for p in verify_shard(write_file(data))]


def reader_code(data, write_file):
    path = write_file(data)
    with pytest.raises(ShardError) as info:
        read_everything(path)
    return info.value.code


def preamble(h_bytes, magic=F.SHARD_MAGIC, major=1, minor=0, length=None):
    body = F.PREAMBLE.pack(magic, major, minor, len(h_bytes) if length is None else length)
    return F.with_crc(body + h_bytes)


def stored_sections(ids, sorted_indices, bits, width, order):
    """The five sections of a block, stored (codec 0), from explicit contents."""
    parts = [to_planes(np.array(ids), 4).tobytes(), b"",
             encode_values(np.array(bits, np.uint16)).tobytes(),
             encode_indices(np.array(sorted_indices), width).tobytes(), bytes(order)]
    return [(0, part, len(part)) for part in parts]


def one_record_shard(h):
    block = block_of(h, 0, [9], [[1, 2, 3][:h.k]], [[0.5, 0.25, 0.125][:h.k]])
    return assemble(h, [block], 1)


def test_bad_magic(write_file):
    assert codes(b"PNG\r\n" + bytes(100), write_file) == ["bad-magic"]
    assert codes(b"", write_file) == ["incomplete"]
    assert codes(F.SHARD_MAGIC[:5], write_file) == ["incomplete"]


def test_header_rules(write_file):
    h = header()
    good = h.to_bytes()
    tail = one_record_shard(h)[F.PREAMBLE_SIZE + len(good) + 4:]
    assert codes(preamble(good, major=2) + tail, write_file) == ["unsupported-version"]
    assert codes(preamble(good, minor=7) + tail, write_file) == []
    assert codes(preamble(b"{}", length=1) + tail, write_file) == ["bad-header"]
    assert codes(preamble(b"x" * 10, length=(1 << 20) + 1), write_file) == ["bad-header"]
    bad_crc = bytearray(preamble(good) + tail)
    bad_crc[F.PREAMBLE_SIZE + len(good)] ^= 1
    assert codes(bytes(bad_crc), write_file) == ["header-crc"]


@pytest.mark.parametrize("mutate", [
    lambda o: o.pop("classes"),
    lambda o: o.update(classes=True),
    lambda o: o.update(classes=1000.0),
    lambda o: o.update(k=0),
    lambda o: o.update(k=1001),
    lambda o: o.update(temperature=float("nan")),
    lambda o: o.update(sorted=1),
    lambda o: o.update(value_dtype="float32"),
    lambda o: o.update(index_codec="plain"),
    lambda o: o.update(augmentation={"kind": "params", "version": 1}),
    lambda o: o.update(augmentation={"kind": "seed"}),
    lambda o: o.update(augmentation={"kind": "none", "version": 1, "output_size": [0, 5]}),
    lambda o: o.update(epoch=-1),
    lambda o: o.update(records_per_block=0),
    lambda o: o.update(provenance={"teacher": 3}),
])
def test_invalid_header_fields(write_file, mutate):
    import json
    obj = header().to_json_object()
    mutate(obj)
    text = json.dumps(obj, allow_nan=True).encode()
    assert codes(preamble(text) + bytes(80), write_file) == ["bad-header"]


@pytest.mark.parametrize("text", [b"[1, 2]", b'{"a": 1, "a": 2}', b"\xff\xfe", b"{"])
def test_header_must_be_strict_json_object(write_file, text):
    assert codes(preamble(text) + bytes(80), write_file) == ["bad-header"]


def test_unknown_header_keys_are_kept(write_file):
    h = header(extra={"future": [1, 2]})
    with ShardReader(write_file(one_record_shard(h))) as reader:
        assert reader.header.extra == {"future": [1, 2]}


def test_footer_and_index_rules(write_file):
    h = header()
    good = one_record_shard(h)
    footer_at = len(good) - 32
    no_crc = bytearray(good)
    no_crc[-1] ^= 1
    assert codes(bytes(no_crc), write_file) == ["footer-crc"]
    block = block_of(h, 0, [9], [[1, 2, 3]], [[0.5, 0.25, 0.125]])
    assert codes(assemble(h, [block], 5), write_file) == ["bad-index"]           # N vs B
    assert codes(assemble(h, [block], 2), write_file) == ["block-structure"]     # N vs n
    assert codes(assemble(h, [block], 1, footer_blocks=0), write_file) == ["bad-index"]
    start = F.PREAMBLE_SIZE + len(h.to_bytes()) + 4
    assert codes(assemble(h, [block], 1, index_entries=[(start + 1, len(block))]),
                 write_file) == ["bad-index"]
    assert codes(assemble(h, [block], 1, index_entries=[(start, len(block) - 1)]),
                 write_file) == ["bad-index"]
    bad_index_crc = bytearray(good)
    bad_index_crc[footer_at - 1] ^= 1
    assert codes(bytes(bad_index_crc), write_file) == ["bad-index"]
    assert codes(assemble(h, [], 0), write_file) == []


def test_block_frame_rules(write_file):
    h = header(records_per_block=2)
    sections = stored_sections([0], [[1, 2, 3]], [[0x3800, 0x3400, 0x3000]], 2, [0])
    ok = raw_block(0, 1, sections)
    assert codes(assemble(h, [ok], 1), write_file) == []
    assert codes(assemble(h, [raw_block(0, 1, sections, reserved=1)], 1),
                 write_file) == ["block-structure"]
    assert codes(assemble(h, [raw_block(0, 1, sections, n_field=2)], 1),
                 write_file) == ["block-structure"]
    assert codes(assemble(h, [raw_block(0, 1, sections, first_field=1)], 1),
                 write_file) == ["block-structure"]
    bad_magic = b"TSBX" + ok[4:]
    assert codes(assemble(h, [bad_magic], 1), write_file) == ["block-structure"]
    bad_payload = ok[:-1] + b"\x01"
    assert codes(assemble(h, [bad_payload], 1), write_file) == ["block-crc"]
    for broken in ([(2,) + sections[0][1:]] + sections[1:],                  # codec
                   [(0, bytes(4), 5)] + sections[1:],                          # D wrong
                   [(1, zlib.compress(bytes(4)) + b"x", 4)] + sections[1:],    # trailing bytes
                   [(1, b"garbage", 4)] + sections[1:],                        # not zlib
                   sections + [(0, b"", 0)],                                   # sixth section
                   sections[:4]):                                              # missing one
        assert codes(assemble(h, [raw_block(0, 1, broken)], 1), write_file) == ["bad-section"]
    zlib_ok = [(1, zlib.compress(bytes(4)), 4)] + sections[1:]                 # bigger, allowed
    assert codes(assemble(h, [raw_block(0, 1, zlib_ok)], 1), write_file) == []


@pytest.mark.parametrize("ids,indices,values,code", [
    ([1], [[1, 2, 3]], [[0.5, float("inf"), 0.1]], "bad-value"),
    ([1], [[1, 2, 3]], [[0.5, 0.25, -0.0625]], "bad-value"),
    ([1], [[1, 2, 3]], [[0.5, 0.5, 0.25]], "bad-value"),
    ([1], [[1, 2, 3]], [[0.25, 0.5, 0.125]], "not-sorted"),
    ([1], [[1, 2, 1001]], [[0.5, 0.25, 0.125]], "index-out-of-range"),
    ([1, 1], [[1, 2, 3], [4, 5, 6]], [[0.5, 0.25, 0.125]] * 2, "duplicate-sample"),
])
def test_record_rules(write_file, ids, indices, values, code):
    h = header()
    data = assemble(h, [block_of(h, 0, ids, indices, values)], len(ids))
    found = verify_shard(write_file(data))
    assert [p.code for p in found] == [code]
    assert found[0].sample_id == 1 and found[0].record == len(ids) - 1
    assert reader_code(data, write_file) == code


def test_bad_order_number(write_file):
    h = header()
    sections = stored_sections([1], [[1, 2, 3]], [[0x3800, 0x3400, 0x3000]], 2,
                               [math.factorial(3)])                 # X = 3! is invalid
    data = assemble(h, [raw_block(0, 1, sections)], 1)
    assert codes(data, write_file) == ["bad-order"]
    assert reader_code(data, write_file) == "bad-order"


def test_bad_augmentation_code(write_file):
    h = header(augmentation_kind="params", output_size=(32, 32))
    aug = np.zeros((1, 80), np.uint8)                   # source size 0: invalid
    data = assemble(h, [block_of(h, 0, [1], [[1, 2, 3]], [[0.5, 0.25, 0.125]], aug=aug)], 1)
    assert codes(data, write_file) == ["bad-augmentation"]
    assert reader_code(data, write_file) == "bad-augmentation"


def test_logit_values_only_need_to_be_finite(write_file):
    h = header(value_kind="logit", sorted=False)
    ok = assemble(h, [block_of(h, 0, [1], [[1, 2, 3]], [[-40.0, 7.5, 100.0]])], 1)
    assert codes(ok, write_file) == []
    bad = assemble(h, [block_of(h, 0, [1], [[1, 2, 3]], [[-40.0, float("nan"), 1.0]])], 1)
    assert codes(bad, write_file) == ["bad-value"]


def test_verifier_keeps_going_after_a_bad_block(write_file):
    h = header(records_per_block=1)
    blocks = [block_of(h, i, [i], [[1, 2, 3]], [[0.5, 0.25, 0.125]]) for i in range(3)]
    blocks[1] = blocks[1][:-1] + bytes([blocks[1][-1] ^ 1])
    blocks[2] = block_of(h, 2, [0], [[1, 2, 3]], [[0.25, 0.5, 0.125]])   # not sorted, dup id
    found = verify_shard(write_file(assemble(h, blocks, 3)))
    assert [(p.code, p.block) for p in found] == [("block-crc", 1), ("not-sorted", 2),
                                                  ("duplicate-sample", 2)]
