"""Issue 11 in the Python twin: the spec's JSON grammar rule by rule, the key table's streamed checks
(chunk boundaries, the vectorised ascending check against plain comparison), the manifest cap, the
check order within a block and a record, and the verifier's bounded cost paths."""

import math
import os
import struct
import zlib

import numpy as np
import pytest

from tinyshard import ShardError, verify_shard
from tinyshard import format as F
from tinyshard import keys as K
from tinyshard import manifest as M
from tinyshard.codec import decode_block, order_out_of_range

from conftest import assemble, header, raw_block


def code(data, what=F.parse_json_object):
    try:
        what(data)
        return None
    except ShardError as error:
        return error.code


@pytest.mark.parametrize("text", [
    b'{"a":1,}', b'{"a":1,"a":1}', b'{"a":1,"\\u0061":2}', b'\xef\xbb\xbf{}', b'{"a":NaN}', b'{"a":Infinity}',
    b'{"a":"\\ud800"}', b'{"a":"\\udc00\\ud800"}', b'{"a":"\\ud800\\u0041"}', b'{"a":"\xc0\x80"}', b'{"a":"\xed\xa0\x80"}',
    b'{"a":"\xf4\x90\x80\x80"}', b'{"a":01}', b'{"a":1.}', b'{"a":.5}', b'{"a":+1}', b'{"a":"\x01"}', b'[1]', b'{} {}',
    b'{"a":' + b"[" * 64 + b"]" * 64 + b"}", '{"a":1}'.encode("utf-16-le"), '{"a":1}'.encode("utf-32"),
])
def test_grammar_rejects(text):
    assert code(text) == "bad-header"
    assert code(text, lambda d: F.parse_json_object(d, code="manifest-mismatch")) == "manifest-mismatch"


def test_grammar_accepts_and_keeps_integer_tokens():
    obj = F.parse_json_object(b' {"\\u0063":1, "d":1.0, "e":1e3, "f":"\\ud83d\\ude00", "g":' + b"[" * 63 + b"]" * 63
                              + b', "h":-0, "caf\xc3\xa9":1, "cafe\xcc\x81":2, "big":' + b"9" * 5000 + b"}")
    assert type(obj["c"]) is int and type(obj["d"]) is float and type(obj["e"]) is float
    assert obj["f"] == "\U0001F600" and obj["h"] == 0 and len(obj) == 9
    assert isinstance(obj["big"], F.BigInt)


def header_bytes(**changes):
    obj = header(classes=10, k=3).to_json_object()
    obj.update(changes)
    return F.json.dumps(obj).encode()


@pytest.mark.parametrize("changes", [
    {"classes": 10.0}, {"classes": 1e1}, {"sorted": 1}, {"provenance": {"teacher": 1}},
    {"augmentation": {"kind": "none", "version": 1, "output_size": None}},
    {"augmentation": {"kind": "none", "version": 1, "output_size": [0, 0]}},
    {"augmentation": {"kind": "seed", "version": 1.0}}, {"temperature": 0}, {"temperature": F.BigInt("1" + "0" * 400)},
])
def test_header_key_types(changes):
    data = header_bytes(**{k: v for k, v in changes.items() if not isinstance(v, F.BigInt)})
    if any(isinstance(v, F.BigInt) for v in changes.values()):
        data = data.replace(b'"temperature": 1.0', b'"temperature": 1' + b"0" * 400)
    with pytest.raises(ShardError) as caught:
        F.validate_header_object(F.parse_json_object(data))
    assert caught.value.code == "bad-header"


def test_header_number_forms_accepted():
    obj = F.parse_json_object(header_bytes(temperature=2).replace(b'"temperature": 2', b'"temperature": 2e0'))
    assert F.validate_header_object(obj).temperature == 2.0
    seed = header_bytes(augmentation={"kind": "seed", "version": 1, "output_size": [224, 224]})
    assert F.validate_header_object(F.parse_json_object(seed)).augmentation_kind == "seed"


def table(text, count=None, decoded=None):
    stored = zlib.compress(text, 9)
    count = text.count(b"\n") if count is None else count
    return struct.pack("<4sIIIII", b"TSKY", 1, count, len(stored), len(text) if decoded is None else decoded,
                       F.crc32(stored)) + stored


def test_nesting_limit_counts_arrays_and_objects_not_brackets_in_strings():
    def document(depth, inner="0"):
        return ('{"a":' + "[" * (depth - 1) + inner + "]" * (depth - 1) + "}").encode()
    assert F.parse_json_object(document(64))["a"]
    with pytest.raises(ShardError, match="nesting deeper than 64"):
        F.parse_json_object(document(65))
    assert F.parse_json_object(document(64, inner='"[[[[{{{{"'))
    assert F.parse_json_object(b'{"a":[{"b":{}},[[]]],"c":"]]}}"}')["c"] == "]]}}"
    with pytest.raises(ShardError) as caught:   # past the interpreter's recursion limit: still one code
        F.parse_json_object(document(100_000))
    assert caught.value.code == "bad-header"


def test_key_table_chunks_and_order(monkeypatch):
    rng = np.random.default_rng(4)
    prefixes = [b"p" * n for n in (0, 7, 8, 9, 40)]
    keys = sorted({rng.choice(prefixes) + b"%d" % rng.integers(0, 10 ** 6) for _ in range(3000)})
    monkeypatch.setattr(K, "CHUNK", 1000)          # many chunk boundaries, keys cut across them
    text = b"".join(k + b"\n" for k in keys)
    assert list(K.decode_keys(table(text))) == [k.decode() for k in keys]
    for i in (1, 500, len(keys) - 1):               # each swap of neighbours is caught at its key
        bad = list(keys)
        bad[i - 1], bad[i] = bad[i], bad[i - 1]
        with pytest.raises(ShardError) as caught:
            K.decode_keys(table(b"".join(k + b"\n" for k in bad)))
        assert caught.value.code == "bad-keys" and caught.value.record == i
    dup = list(keys)
    dup[7] = dup[6]
    with pytest.raises(ShardError):
        K.decode_keys(table(b"".join(k + b"\n" for k in dup)))


def test_descending_pairs_match_plain_comparison():
    rng = np.random.default_rng(5)
    for _ in range(20):
        keys = [b"x" * int(rng.integers(0, 20)) + bytes(rng.integers(1, 4, int(rng.integers(1, 12))).astype(np.uint8) + 96)
                for _ in range(300)]
        text = b"".join(k + b"\n" for k in keys)
        arr = np.frombuffer(text, np.uint8)
        ends = np.flatnonzero(arr == 10)
        starts = np.concatenate([[0], ends[:-1] + 1])
        expected = [i for i in range(1, len(keys)) if not keys[i - 1] < keys[i]]
        assert K._descending_pairs(arr, starts, ends).tolist() == expected


def test_key_table_rules():
    assert code(b"", K.decode_keys) == "bad-magic"
    assert code(b"TS", K.decode_keys) == "bad-keys"
    assert code(b"TSKX" + bytes(20), K.decode_keys) == "bad-magic"
    bomb = b"".join(b"x" * 990 + b"%010d\n" % i for i in range(150))
    assert code(table(bomb), K.decode_keys) == "bad-keys"        # above 32:1 + 64 KiB
    stored = os.urandom(1000)
    claim = struct.pack("<4sIIIII", b"TSKY", 1, 0xFFFFFFFF, 1000, 1032000, F.crc32(stored)) + stored
    assert code(claim, K.decode_keys) == "bad-keys"
    with pytest.raises(ShardError):                 # the ratio rule is version 1's (version 2 pages cannot break it)
        K.encode_keys([b"x".decode() * 990 + "%010d" % i for i in range(150)], version=1)


def test_manifest_size_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(M, "MAX_MANIFEST_BYTES", 100)
    (tmp_path / "manifest.json").write_bytes(b"{" + b" " * 200 + b"}")
    with pytest.raises(ShardError) as caught:
        M.read_manifest(str(tmp_path))
    assert caught.value.code == "manifest-mismatch"


def test_order_numbers_checked_without_permutations():
    for k in (1, 2, 3, 5, 20, 21, 100):
        length = F.order_bytes(k)
        limit = math.factorial(k)
        numbers = [0, limit - 1, limit, limit + 1, (1 << (8 * length)) - 1] if length else [0]
        data = b"".join(min(x, (1 << (8 * length)) - 1).to_bytes(length, "little") for x in numbers) if length else b""
        bad = order_out_of_range(np.frombuffer(data, np.uint8), len(numbers) if length else 1, k)
        expected = [min(x, (1 << (8 * length)) - 1) >= limit for x in numbers] if length else [False]
        assert bad.tolist() == expected, k


def test_first_problem_per_record_in_section_order(write_file):
    h = header(classes=10, k=3, records_per_block=4)
    ids = np.arange(2, dtype=np.uint32)
    values = np.array([[0.25, 0.5, np.nan], [0.5, 0.25, 0.125]], np.float16).view(np.uint16)
    from tinyshard.codec import encode_values, to_planes
    gaps = np.array([[0, 0, 9], [0, 0, 0]], np.uint32)   # record 0: index 11 >= C
    sections = [(0, bytes(to_planes(ids, 4)), 8), (0, b"", 0), (0, bytes(encode_values(values)), 12),
                (0, bytes(to_planes(gaps, 1)), 6), (0, bytes([0, 6]), 2)]   # record 1: order 6 = 3!
    path = write_file(assemble(h, [raw_block(0, 2, sections)], 2))
    problems = verify_shard(path)
    assert [(p.code, p.record) for p in problems] == [("bad-value", 0), ("bad-order", 1)]


def test_sections_framed_before_records(write_file):
    h = header(classes=10, k=3, records_per_block=4)
    from tinyshard.codec import encode_values, to_planes
    values = np.array([[0.5, 0.25, 0.125]], np.float16).view(np.uint16)
    sections = [(0, bytes(to_planes(np.zeros(1, np.uint32), 4)), 4), (0, b"", 0), (0, bytes(encode_values(values)), 6),
                (0, bytes([0, 0, 9]), 3), (2, bytes([0]), 1)]     # index out of range, then a bad codec
    path = write_file(assemble(h, [raw_block(0, 1, sections)], 1))
    assert [p.code for p in verify_shard(path)] == ["bad-section"]


def test_decode_block_check_only_matches_full():
    h = header(classes=300, k=4, records_per_block=8)
    rng = np.random.default_rng(6)
    from tinyshard.codec import encode_values, encode_indices, encode_order, lehmer_digits, to_planes
    n = 8
    idx = np.sort(rng.choice(300, size=(n, 4), replace=False), axis=1)
    idx[3, -1] = 299
    values = np.sort(rng.dirichlet(np.ones(6), n)[:, :4], axis=1)[:, ::-1].astype(np.float16).view(np.uint16)
    order = encode_order(lehmer_digits(np.tile(np.arange(4), (n, 1))))
    order[5, 0] = 24                                   # 4! : bad order
    sections = (to_planes(np.arange(n, dtype=np.uint32), 4), np.zeros(0, np.uint8), encode_values(values),
                encode_indices(idx, 2), order.reshape(-1))
    sections = tuple(np.frombuffer(bytes(s), np.uint8) for s in sections)
    full = decode_block(h, 0, n, sections)
    quick = decode_block(h, 0, n, sections, check_only=True)
    assert full.problems == quick.problems and full.problems == [("bad-order", 5, "order number >= K!")]


def test_id_set_matches_a_set():
    from tinyshard.verify import IdSet
    rng = np.random.default_rng(8)
    ids, reference = IdSet(), set()
    for step in range(60):
        kind = step % 3
        if kind == 0:
            block = rng.integers(0, 200_000, 500)
        elif kind == 1:
            block = rng.integers(0, 1 << 32, 500)
        else:
            block = (rng.integers(0, 300, 500) << 16) | rng.integers(0, 100, 500)
        block = block.astype(np.uint32)
        expected = []
        for position, value in enumerate(block.tolist()):
            if value in reference:
                expected.append(position)
            reference.add(value)
        assert ids.add_block(block) == expected
