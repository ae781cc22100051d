"""Key table version 2 (FORMAT.md 5.2): bytes, O(1) open, lookups, the rule groups and when each is
checked, bulk lookups, the verifier; and every key-table vector in Spec/vectors."""

import glob
import json
import os
import struct
import zlib

import numpy as np
import pytest

import tinyshard._keypages as KP
import tinyshard._keyvec as V
from tinyshard.__main__ import main
from tinyshard.errors import ShardError
from tinyshard.keys import KeyTable, NotFound, decode_keys, encode_keys, read_keys, write_keys
from tinyshard.verify import verify_key_table

VECTORS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "Spec", "vectors"))
KEY_VECTORS = sorted(glob.glob(os.path.join(VECTORS, "*keys*.tsk")))

MIXED = sorted(["Zebra", "apple", "café", "cafe\u0301", "n01440764/n01440764_10026.JPEG", "z", "日本", "😀",
                "x" * 70 + "a", "x" * 70 + "b", "x" * 70, "x" * 200 + "q"], key=lambda k: k.encode())


def table_of(data):
    return KeyTable(np.frombuffer(data, np.uint8))


def code_of(call, *args):
    with pytest.raises(ShardError) as caught:
        call(*args)
    return caught.value


# ---- an independent reading of the byte layout -----------------------------------------------------------

class Parts:
    """A version-2 table taken apart (head fields, directory, fences, stored pages), to break one rule at
    a time and put it back together with every checksum and offset recomputed unless a test says not."""

    def __init__(self, data):
        _, self.version, self.count, self.per_page, self.pages, self.fence_len, self.reserved = \
            struct.unpack_from("<4sIIIIII", data)
        self.entries = [list(struct.unpack_from("<QIIII", data, 32 + 24 * g)) for g in range(self.pages)]
        fences_at = 32 + 24 * self.pages
        self.fences = data[fences_at:fences_at + self.fence_len]
        self.stored = [data[e[0]:e[0] + e[1]] for e in self.entries]
        self.magic = b"TSKY"

    def set_page(self, g, keys, decoded=None):
        """Page g holds `keys` (bytes, each given its newline), its decoded length set to match."""
        self.set_text(g, b"".join(k + b"\n" for k in keys), decoded)

    def set_text(self, g, text, decoded=None):
        """Page g decodes to `text`."""
        self.stored[g] = zlib.compress(text)
        self.entries[g][2] = len(text) if decoded is None else decoded

    def bytes(self, head_crc=True, body_crc=True, page_crcs=True, chain=True):
        body_len = 24 * self.pages + len(self.fences)
        offset = 36 + body_len
        for entry, page in zip(self.entries, self.stored):
            if chain:
                entry[0], entry[1] = offset, len(page)
            if page_crcs:
                entry[3] = zlib.crc32(page)
            offset += len(page)
        head = struct.pack("<4sIIIIII", self.magic, self.version, self.count, self.per_page, self.pages,
                           self.fence_len, self.reserved)
        head += struct.pack("<I", zlib.crc32(head) if head_crc else zlib.crc32(head) ^ 1)
        body = b"".join(struct.pack("<QIIII", *e) for e in self.entries) + self.fences
        body += struct.pack("<I", zlib.crc32(body) if body_crc else zlib.crc32(body) ^ 1)
        return head + body + b"".join(self.stored)


def test_bytes_follow_the_spec_read_independently():
    keys = ["ant", "bee", "cat", "dog", "eel"]
    data = encode_keys(keys, keys_per_page=2)
    magic, version, count, per_page, pages, fence_len, reserved, head_crc = struct.unpack_from("<4sIIIIIII", data)
    assert (magic, version, count, per_page, pages, fence_len, reserved) == (b"TSKY", 2, 5, 2, 3, 9, 0)
    assert head_crc == zlib.crc32(data[:28])
    entries = [struct.unpack_from("<QIIII", data, 32 + 24 * g) for g in range(3)]
    assert data[32 + 72:32 + 72 + 9] == b"antcateel"
    assert [e[4] for e in entries] == [3, 6, 9]
    assert struct.unpack_from("<I", data, 32 + 72 + 9)[0] == zlib.crc32(data[32:32 + 72 + 9])
    offset = 36 + 72 + 9
    for entry, text in zip(entries, [b"ant\nbee\n", b"cat\ndog\n", b"eel\n"]):
        assert entry[0] == offset and entry[2] == len(text)
        stored = data[offset:offset + entry[1]]
        assert zlib.decompress(stored) == text and zlib.crc32(stored) == entry[3]
        offset += entry[1]
    assert offset == len(data)
    empty = encode_keys([])
    assert struct.unpack_from("<4sIIIIII", empty) == (b"TSKY", 2, 0, 256, 0, 0, 0) and len(empty) == 36


@pytest.mark.parametrize("version,per_page", [(1, 256), (2, 1), (2, 2), (2, 3), (2, 256), (2, 65536)])
def test_round_trip_and_lookups(version, per_page):
    for keys in (MIXED, [], ["only"], [f"k{i:04d}" for i in range(1000)]):
        table = table_of(encode_keys(keys, version, per_page))
        assert table.version == version and len(table) == len(keys)
        assert list(table.all_keys()) == keys and list(table) == keys
        assert [table[i] for i in range(len(keys))] == keys
        assert [table.sample_id(k) for k in keys] == list(range(len(keys)))
        for absent in ("", "0", "zz", "\U0010ffff", "café\n", "\ud800", keys[-1] + "\0" if keys else "q"):
            assert table.sample_id(absent) is None
        assert table.problems() == []
        with pytest.raises(IndexError):
            table[len(keys)]


def test_writer_refusals():
    for bad, at in ((["b", "a"], 1), (["a", "a"], 1), (["a", ""], 1), (["a", "b\n"], 1), (["a\r"], 0),
                    (["\0"], 0), (["a", "\ud800"], 1), (["a", 3], 1)):
        for version in (1, 2):
            error = code_of(encode_keys, bad, version)
            assert (error.code, error.record) == ("bad-keys", at)
    assert code_of(encode_keys, ["a" * 65536]).code == "bad-keys"       # version 2: keys up to 65,535 bytes
    assert len(table_of(encode_keys(["a" * 65535])).all_keys()[0]) == 65535
    assert decode_keys(encode_keys(["a" * 65536], version=1)) == ["a" * 65536]
    assert code_of(encode_keys, ["k%05d" % i + "x" * 600 for i in range(60000)], 2, 65536).code == "bad-keys"
    for per_page in (0, 65537):
        with pytest.raises(ValueError):
            encode_keys(["a"], keys_per_page=per_page)


# ---- when each rule group is checked ---------------------------------------------------------------------

def parts_of(keys=("ant", "bee", "cat", "dog", "eel", "fox", "gnu"), per_page=3):
    return Parts(encode_keys(list(keys), keys_per_page=per_page))


def head_break(name, parts):
    """The bytes of `parts` with one rule of the head (rule 3) broken."""
    if name == "short":
        return parts.bytes()[:35]
    if name == "head-crc":
        return parts.bytes(head_crc=False)
    field, value = {"reserved": ("reserved", 1), "per-page-0": ("per_page", 0),
                    "per-page-big": ("per_page", 65537), "page-count": ("per_page", 4),
                    "shorter-than-fences": ("fence_len", 10 ** 6)}[name]
    setattr(parts, field, value)
    return parts.bytes()


HEAD_BREAKS = ("short", "head-crc", "reserved", "per-page-0", "per-page-big", "page-count",
               "shorter-than-fences")


@pytest.mark.parametrize("name", HEAD_BREAKS)
def test_head_rules_at_open(name):
    error = code_of(table_of, head_break(name, parts_of()))
    assert error.code == "bad-keys"


def test_first_rules_shared_with_version_1():
    data = encode_keys(["a", "b"])
    assert code_of(table_of, b"").code == "bad-magic"
    assert code_of(table_of, b"TSK").code == "bad-keys"                     # the magic's start, too short
    assert code_of(table_of, b"TSKX" + data[4:]).code == "bad-magic"
    assert code_of(table_of, data[:23]).code == "bad-keys"
    assert code_of(table_of, data[:4] + struct.pack("<I", 3) + data[8:]).code == "unsupported-version"
    assert code_of(table_of, b"TSKX" + struct.pack("<I", 3)).code == "bad-magic"   # magic first


def directory_break(name, parts):
    """The bytes of `parts` (ant bee cat | dog eel fox | gnu) with one rule of the directory (rule 4)
    broken."""
    parts.bytes()                                   # offsets and lengths filled in, to edit
    entries = parts.entries
    if name == "crc":
        return parts.bytes(body_crc=False)
    if name == "trailing-byte":
        return parts.bytes() + b"\0"
    if name in ("first-offset", "gap"):
        g = 0 if name == "first-offset" else 1
        entries[g][0] += 1
        return parts.bytes(chain=False)
    if name == "ratio":
        entries[0][2] = 1032 * len(parts.stored[0]) + 1
    elif name == "above-2^25":
        entries[0][2] = (1 << 25) + 1
    elif name == "fence-end-equal":
        entries[1][4] = entries[0][4]
    elif name == "fence-end-short":
        entries[2][4] -= 1
    else:
        parts.fences = {"fence-order": b"dogant" + parts.fences[6:],
                        "fence-cr": b"a\rt" + parts.fences[3:],
                        "fence-utf8": b"a\xc3t" + parts.fences[3:],
                        "fence-split-character": b"an\xc3\xa9at" + parts.fences[6:]}[name]
    return parts.bytes()


DIRECTORY_BREAKS = ("crc", "trailing-byte", "first-offset", "gap", "ratio", "above-2^25", "fence-end-equal",
                    "fence-end-short", "fence-order", "fence-cr", "fence-utf8", "fence-split-character")


@pytest.mark.parametrize("name", DIRECTORY_BREAKS)
def test_directory_rules_before_the_first_lookup(name):
    table = table_of(directory_break(name, parts_of()))        # opens: the head is fine
    assert len(table) == 7
    for lookup in (lambda: table.sample_id("ant"), lambda: table[6], lambda: table.all_keys(),
                   lambda: table.sample_ids(["cat"] * 300)):
        assert code_of(lookup).code == "bad-keys"
    (problem,) = table.problems()
    assert problem.code == "bad-keys" and problem.message.startswith("directory: ")


def page_break(name, parts):
    """The bytes of `parts` (ant bee cat | dog eel fox | gnu) with one rule of page 1 (rule 5) broken."""
    parts.bytes()
    text = b"dog\neel\nfox\n"
    if name == "crc":
        parts.entries[1][3] ^= 1
        return parts.bytes(page_crcs=False)
    if name in ("not-zlib", "trailing", "no-newline"):
        parts.stored[1] = {"not-zlib": text, "trailing": zlib.compress(text) + b"\0",
                           "no-newline": zlib.compress(text[:-1])}[name]
        parts.entries[1][2] = len(text) - (name == "no-newline")
        return parts.bytes()
    keys, decoded = {"shorter": ([b"dog", b"eel", b"fox"], 13), "longer": ([b"dog", b"eel", b"fox"], 11),
                     "empty-key": ([b"dog", b"", b"fox"], None), "nul": ([b"dog", b"e\0l", b"fox"], None),
                     "utf8": ([b"dog", b"e\xffl", b"fox"], None), "order": ([b"dog", b"fox", b"eel"], None),
                     "repeat": ([b"dog", b"eel", b"eel"], None), "count": ([b"dog", b"eel"], None),
                     "not-fence": ([b"doe", b"eel", b"fox"], None),
                     "past-next-fence": ([b"dog", b"eel", b"gnu"], None)}[name]
    parts.set_page(1, keys, decoded)
    return parts.bytes()


PAGE_BREAKS = ("crc", "not-zlib", "trailing", "no-newline", "shorter", "longer", "empty-key", "nul", "utf8",
               "order", "repeat", "count", "not-fence", "past-next-fence")


@pytest.mark.parametrize("name", PAGE_BREAKS)
def test_page_rules_before_its_keys_are_used(name, tmp_path):
    data = page_break(name, parts_of())
    table = table_of(data)
    # Lookups that land in pages 0 and 2 answer; those that land in page 1 fail, whatever was read before.
    found = [table.sample_id(k) for k in ("ant", "bee", "cat", "gnu", "a", "cot", "zebra")]
    assert found == [0, 1, 2, 6, None, None, None]
    for key in ("dog", "eel", "dz", "fox", "fz", "gn"):
        error = code_of(table.sample_id, key)
        assert error.code == "bad-keys" and error.message.startswith("page 1:")
    for sample_id in (3, 4, 5):
        assert code_of(table.__getitem__, sample_id).message.startswith("page 1:")
    assert [table[i] for i in (0, 2, 6)] == ["ant", "cat", "gnu"]
    assert code_of(table.all_keys).message.startswith("page 1:")
    (problem,) = table.problems()
    assert problem.message.startswith("page 1:")
    (tmp_path / "keys.tsk").write_bytes(data)
    assert [(p.code, p.message) for p in verify_key_table(tmp_path / "keys.tsk")] == [("bad-keys", problem.message)]


def test_open_is_o1_and_lookups_inflate_one_page():
    """A table whose every page is garbage opens and reports its length; a lookup names its page."""
    parts = parts_of([f"k{i:05d}" for i in range(3000)], per_page=100)
    for g in range(parts.pages):
        parts.stored[g] = b"garbage"
    table = table_of(parts.bytes())
    assert len(table) == 3000 and table.keys_per_page == 100
    assert code_of(table.sample_id, "k01234").message.startswith("page 12:")
    assert len(table.problems()) == 30


def test_page_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(KP, "CACHE_BYTES", 2000)
    keys = [f"key{i:06d}" for i in range(5000)]
    table = table_of(encode_keys(keys, keys_per_page=50))
    for i in range(0, 5000, 7):
        assert table.sample_id(keys[i]) == i
    cache = table._table._cache
    held = sum(len(k) + 1 for keys_of_page, _ in cache.values() for k in keys_of_page)
    assert 1 <= len(cache) and held == table._table._cached_bytes <= 2000


# ---- bulk lookups --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [1, 2])
def test_bulk_equals_one_by_one(version):
    rng = np.random.default_rng(3)
    keys = sorted({"p" * int(rng.integers(0, 80)) + str(int(rng.integers(0, 10 ** 6))) for _ in range(4000)})
    table = table_of(encode_keys(keys, version, 37))
    order = rng.permutation(len(keys))
    queries = [keys[i] for i in order] + [keys[5]] * 3
    expected = np.concatenate([order, [5] * 3])
    assert (table._bulk(queries) == expected).all()
    assert (table._one_by_one(queries) == expected).all()
    assert (table.sample_ids(queries) == expected).all()
    assert table.sample_ids([]).shape == (0,)
    for extra in ("nope", "a\nb", "\ud800", "p"):
        for make in (table._bulk, table._one_by_one):
            with pytest.raises(NotFound) as caught:
                make(queries[:700] + [extra] + queries[700:] + ["zz-also-missing"])
            assert caught.value.args[0] == extra and "(key 700 of" in str(caught.value)


def test_bulk_meets_damage_as_one_by_one():
    """With pages 1 and 3 damaged, a bulk lookup fails at the first key (in the order given) whose lookup
    lands in a damaged page or finds nothing, with the error one-by-one lookups give."""
    keys = [f"k{i:04d}" for i in range(500)]
    parts = Parts(encode_keys(keys, keys_per_page=100))
    parts.set_page(1, [k.encode() for k in keys[100:199]] + [b"k0100"])          # out of order
    parts.stored[3] = b"garbage"
    table = table_of(parts.bytes())
    rng = np.random.default_rng(0)
    good = [keys[i] for i in rng.permutation(np.r_[0:100, 200:300, 400:500])]
    assert (table._bulk(good) == [keys.index(k) for k in good]).all()
    for bad in ("k0150", "k0301", "k0150x", "j", "k0499x"):
        queries = good[:250] + [bad] + good[250:]
        outcomes = []
        for make in (table._bulk, table._one_by_one):
            try:
                make(queries)
            except (ShardError, NotFound) as error:
                outcomes.append((type(error).__name__, str(error)))
        assert outcomes[0] == outcomes[1] and len(outcomes) == 2


@pytest.mark.parametrize("version", [1, 2])
def test_bulk_meets_a_damaged_table_as_one_by_one(version):
    """Every lookup needs the directory (version 1: the whole table), even one of a string no key can
    equal, so a bulk lookup that meets a damaged directory fails as the first single lookup would."""
    keys = [f"k{i:04d}" for i in range(500)]
    data = bytearray(encode_keys(keys, version, 100))
    if version == 2:
        parts = Parts(bytes(data))
        parts.fences = b"k0100" + parts.fences[5:]          # fence 0 differs: the directory breaks rule 4
        data = parts.bytes()
    else:
        data[-3] ^= 0xFF                                    # the zlib stream: the CRC breaks
    table = table_of(bytes(data))
    for queries in (keys, ["\ud800"] + keys, ["a\nb"] + keys):
        outcomes = set()
        for make in (table._bulk, table._one_by_one):
            with pytest.raises(ShardError) as caught:
                make(queries)
            outcomes.add(str(caught.value))
        assert len(outcomes) == 1


def test_page_checkers_agree(monkeypatch, trials=400):
    """The plain-bytes checker (one page, lookups) and the numpy one (many pages, bulk and verifier) give
    each page the same verdict and message, over random damage that keeps the checksums valid."""
    monkeypatch.setattr(V, "CHUNK", 5)                  # numpy passes cut in steps across pages
    monkeypatch.setattr(V, "SCAN", 11)
    rng = np.random.default_rng(11)
    base = sorted({b"k" + bytes(rng.integers(97, 100, int(rng.integers(1, 12))).astype(np.uint8)) for _ in range(600)})
    for trial in range(trials):
        keys = list(base)
        per_page = int(rng.integers(1, 40))
        parts = Parts(encode_keys([k.decode() for k in keys], keys_per_page=per_page))
        g = int(rng.integers(0, parts.pages))
        page = keys[g * per_page:(g + 1) * per_page]
        action = trial % 7
        text = None
        if action == 6:
            text = bytearray(b"".join(k + b"\n" for k in page))
            for _ in range(int(rng.integers(1, 4))):
                text[int(rng.integers(0, len(text)))] = int(rng.choice([0, 10, 13, 0x80, 0xC3, 0xE2, 98, 107]))
        elif action == 0 and len(page) > 1:
            i = int(rng.integers(1, len(page)))
            page[i - 1], page[i] = page[i], page[i - 1]
        elif action == 1:
            page[int(rng.integers(0, len(page)))] += bytes([int(rng.choice([0, 13, 0xC3, 0xFF]))])
        elif action == 2:
            page = page[:-1] if len(page) > 1 else page + [b"kzzz"]
        elif action == 3:
            page[0] = page[0] + b"!"
        elif action == 4:
            page[-1] = b"z" + page[-1]
        else:
            page.insert(int(rng.integers(0, len(page) + 1)), b"")
        if text is None:
            parts.set_page(g, page)
        else:
            parts.set_text(g, bytes(text))
        table = table_of(parts.bytes())
        batch = table._table.batch()
        try:
            table._table.page(g)
            plain = None
        except ShardError as error:
            plain = str(error)
        numpy_view = str(batch.problems[g]) if g in batch.problems else None
        assert plain == numpy_view, (trial, page)
        assert set(batch.problems) <= {g}


def test_verifier_lists_every_damaged_page_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(KP, "BATCH_BYTES", 64)          # several batches, each a few pages
    keys = [f"k{i:04d}" for i in range(400)]
    parts = Parts(encode_keys(keys, keys_per_page=10))
    for g in (3, 17, 18, 39):
        parts.set_page(g, [k.encode() for k in keys[g * 10:g * 10 + 9]])
    path = tmp_path / "keys.tsk"
    path.write_bytes(parts.bytes())
    problems = verify_key_table(path)
    assert [p.message.split(":")[0] for p in problems] == ["page 3", "page 17", "page 18", "page 39"]
    assert {p.code for p in problems} == {"bad-keys"} and all(p.file == str(path) for p in problems)


def test_errors_name_the_file(tmp_path):
    parts = parts_of()
    parts.stored[1] = b"garbage"
    path = tmp_path / "keys.tsk"
    path.write_bytes(parts.bytes())
    table = KeyTable.open(path)
    error = code_of(table.sample_id, "eel")
    assert error.file == str(path) and str(path) in str(error) and "\n" not in str(error)
    with pytest.raises(NotFound) as caught:
        table.sample_ids(["ant", "ann"])
    assert str(path) in str(caught.value) and "'ann'" in str(caught.value)


def test_manifest_crc_is_checked_on_whole_reads(tmp_path):
    path = tmp_path / "keys.tsk"
    write_keys(path, [f"k{i:04d}" for i in range(1000)])
    table = KeyTable.open(path, expected_crc32="00000000")
    assert table.sample_id("k0005") == 5                           # a lookup reads one page, not the file
    assert code_of(table.all_keys).code == "manifest-mismatch"
    assert code_of(table.sample_ids, [f"k{i:04d}" for i in range(1000)]).code == "manifest-mismatch"


# ---- Spec/vectors --------------------------------------------------------------------------------------------

def test_key_vectors_exist():
    assert KEY_VECTORS, f"no key-table vectors in {VECTORS}"


@pytest.mark.parametrize("path", KEY_VECTORS, ids=[os.path.basename(p) for p in KEY_VECTORS])
def test_key_vector(path):
    with open(path[:-len(".tsk")] + ".json") as f:
        spec = json.load(f)
    if spec["valid"]:
        keys = spec["keys"]
        assert read_keys(path) == keys and len(keys) == spec["count"]
        table = KeyTable.open(path)
        assert len(table) == len(keys) and [table[i] for i in range(len(keys))] == keys
        assert [table.sample_id(k) for k in keys] == list(range(len(keys)))
        assert table._bulk(keys[::-1]).tolist() == list(range(len(keys)))[::-1]
        assert verify_key_table(path) == []
        return
    try:
        KeyTable.open(path).all_keys()          # at open (head) or on the whole read
    except ShardError as error:
        assert error.code == spec["error"]
    else:
        pytest.fail("an invalid key table read whole")
    with pytest.raises(ShardError) as caught:
        read_keys(path)
    assert caught.value.code == spec["error"]
    problems = verify_key_table(path)
    assert problems and problems[0].code == spec["error"]


def test_cli_verify_and_inspect(tmp_path, capsys):
    good, bad = tmp_path / "good.tsk", tmp_path / "bad.tsk"
    write_keys(good, [f"k{i:03d}" for i in range(300)], keys_per_page=100)
    parts = Parts(good.read_bytes())
    parts.stored[1] = b"junk"
    bad.write_bytes(parts.bytes())
    assert main(["verify", str(good)]) == 0
    assert main(["verify", str(bad), "--json"]) == 1
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["code"] == "bad-keys" and json.loads(line)["message"].startswith("page 1:")
    assert main(["inspect", str(good)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["version"], summary["keys"], summary["keys_per_page"], summary["pages"]) == (2, 300, 100, 3)
    (tmp_path / "empty.tsk").write_bytes(b"")
    assert main(["verify", str(tmp_path / "empty.tsk"), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["code"] == "bad-magic"
