"""The vectorised key operations (tinyshard._keyvec) against plain bytes comparisons, on keys built to
hit every path: lengths around word boundaries, long shared prefixes, bytes 0x00 and 0xFF, keys longer
than the hashed prefix."""

import numpy as np
import pytest

from tinyshard import _keyvec as V


def random_keys(rng, count):
    prefixes = [b"", b"x" * 7, b"x" * 8, b"x" * 9, b"y" * 63, b"y" * 64, b"y" * 65, b"z" * 300]
    keys = []
    for _ in range(count):
        tail = bytes(rng.choice([0, 1, 97, 98, 255], int(rng.integers(0, 12))).astype(np.uint8))
        keys.append(prefixes[int(rng.integers(0, len(prefixes)))] + tail)
    return keys


def buffer_of(keys):
    data = b"".join(keys)
    starts = np.cumsum([0] + [len(k) for k in keys[:-1]]).astype(np.int64)
    return V.KeyBuffer(V.padded(data), starts, np.array([len(k) for k in keys], np.int64))


@pytest.mark.parametrize("seed", range(6))
def test_compare_equal_ascending_match_plain_bytes(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    if seed % 2:
        monkeypatch.setattr(V, "_FEW", 0)              # word rounds to the end, no plain-bytes shortcut
    if seed % 3 == 0:
        monkeypatch.setattr(V, "CHUNK", 7)             # passes cut into many steps
        monkeypatch.setattr(V, "SCAN", 13)
    keys = random_keys(rng, 3000)
    buffer = buffer_of(keys)
    a, b = rng.integers(0, len(keys), 4000), rng.integers(0, len(keys), 4000)
    assert V.compare(buffer, a, buffer, b).tolist() == [(keys[x] > keys[y]) - (keys[x] < keys[y])
                                                        for x, y in zip(a.tolist(), b.tolist())]
    assert V.equal(buffer, a, buffer, b).tolist() == [keys[x] == keys[y] for x, y in zip(a.tolist(), b.tolist())]
    assert V.ascending(buffer).tolist() == [False] + [keys[i - 1] < keys[i] for i in range(1, len(keys))]
    table = sorted(set(keys))
    queries = keys + [b"absent", b"y" * 64 + b"\x02"]
    found = V.match(buffer_of(table), buffer_of(queries))
    rows = {key: i for i, key in enumerate(table)}
    assert found.tolist() == [rows.get(q, -1) for q in queries]


def test_match_survives_colliding_home_slots(monkeypatch):
    """Every hash equal (as if a table were built to collide): the probe still finds each key exactly."""
    monkeypatch.setattr(V, "hashes", lambda keys, salt: np.full(len(keys), 12345, np.uint64))
    keys = [b"k%03d" % i for i in range(300)]
    queries = keys[::-1] + [b"k999"]
    assert V.match(buffer_of(keys), buffer_of(queries)).tolist() == list(range(299, -1, -1)) + [-1]


def test_a_keys_hash_does_not_depend_on_the_other_keys():
    rng = np.random.default_rng(9)
    keys = random_keys(rng, 500)
    alone = [int(V.hashes(buffer_of([key]), 77)[0]) for key in keys]
    assert V.hashes(buffer_of(keys), 77).tolist() == alone
    short_first = sorted(keys, key=len)[:400]            # mostly short: the other path through the words
    assert V.hashes(buffer_of(short_first), 77).tolist() == [alone[keys.index(k)] for k in short_first]


@pytest.mark.parametrize("seed", range(4))
def test_equal_and_match_of_newline_terminated_keys(seed):
    """Keys split at newlines (key tables, encoded queries) are compared with their newline, which decides
    the length: the same answers as plain bytes, prefixes and keys at the end of the buffer included."""
    rng = np.random.default_rng(seed)
    keys = [k.replace(b"\n", b"") for k in random_keys(rng, 2000)]
    keys = [k for k in keys if k and b"\0" not in k] + [b"a", b"ab", b"abcdefgh", b"abcdefg", b"abcdefghi"]
    table = sorted(set(keys))
    table_buffer = V.split_lines(V.padded(b"".join(k + b"\n" for k in table)), sum(len(k) + 1 for k in table))
    assert table_buffer.terminated
    queries = [keys[int(i)] for i in rng.integers(0, len(keys), 3000)] + [b"abcdefghij", b"zz", b"abcdef"]
    query_buffer = V.split_lines(V.padded(b"".join(k + b"\n" for k in queries)), sum(len(k) + 1 for k in queries))
    a, b = rng.integers(0, len(table), 4000), rng.integers(0, len(queries), 4000)
    assert V.equal(table_buffer, a, query_buffer, b).tolist() == [table[x] == queries[y]
                                                                  for x, y in zip(a.tolist(), b.tolist())]
    position = {k: i for i, k in enumerate(table)}
    assert V.match(table_buffer, query_buffer).tolist() == [position.get(q, -1) for q in queries]
