"""The fast block paths: SoftLabels' random access (labels._RandomRows: blocks checked whole, inflated bytes
cached, only the rows asked for decoded) and the vectorised sample-id pass (layout.shard_sample_ids) give
the same rows and raise the same errors as the block-by-block reader they replace.

The oracle for errors is the block checker as it was before these paths (copied below from layout.py):
for every byte of a block's payload changed (checksums recomputed, so the section rules are reached) and
for every byte of a file changed (checksums left alone), the new functions must return the same bytes or
raise the same code and message for the same block."""

import os
import zlib

import numpy as np
import pytest

from conftest import count_block_reads, random_probabilities
from tinyshard import Dataset, ShardError
from tinyshard import format as F
from tinyshard import labels as labels_module
from tinyshard.codec import from_planes
from tinyshard.files import file_size_and_crc
from tinyshard.keys import write_keys
from tinyshard.labels import SoftLabels
from tinyshard._blocks import BlockReader, inflate_blocks
from tinyshard.layout import block_sections, parse_layout, read_block, read_block_ids, shard_sample_ids
from tinyshard.manifest import write_manifest
from tinyshard.writer import ShardWriter

CLASSES, K, KEYS = 300, 7, 600


# ---- the block checker before the fast paths (layout.py at 11cf4b9), kept as the oracle ----------------


def _old_frame(buf, layout, b):
    offset, length = layout.block_offsets[b], layout.block_lengths[b]
    magic, n, first, payload_len, payload_crc, reserved = F.BLOCK_HEADER.unpack_from(buf, offset)
    if magic != F.BLOCK_MAGIC:
        raise ShardError("block-structure", "block magic missing")
    if F.crc32(buf[offset:offset + F.BLOCK_HEADER.size]) != F.CRC.unpack_from(buf, offset + F.BLOCK_HEADER.size)[0]:
        raise ShardError("block-crc", "block header checksum mismatch")
    if reserved != 0:
        raise ShardError("block-structure", "block header reserved field is not 0")
    if n != layout.block_records(b):
        raise ShardError("block-structure", f"block holds {n} records, expected {layout.block_records(b)}")
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


def _old_section(payload, pos, expected_len):
    if pos + F.SECTION_HEADER_SIZE > len(payload):
        raise ShardError("bad-section", "section header runs past the payload")
    codec, reserved, stored_len, decoded_len = F.SECTION_HEADER.unpack_from(payload, pos)
    if codec not in (F.CODEC_STORED, F.CODEC_ZLIB):
        raise ShardError("bad-section", f"unknown section codec {codec}")
    if reserved != b"\0\0\0":
        raise ShardError("bad-section", "section reserved bytes are not 0")
    if decoded_len != expected_len:
        raise ShardError("bad-section", f"section decoded length {decoded_len}, expected {expected_len}")
    start = pos + F.SECTION_HEADER_SIZE
    if start + stored_len > len(payload):
        raise ShardError("bad-section", "section runs past the payload")
    stored = bytes(payload[start:start + stored_len])
    if codec == F.CODEC_STORED:
        if stored_len != decoded_len:
            raise ShardError("bad-section", "stored section with S != D")
        return stored, stored_len
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(stored, decoded_len + 1)
    except zlib.error as exc:
        raise ShardError("bad-section", f"zlib stream is invalid: {exc}") from None
    if len(data) != decoded_len or not inflater.eof or inflater.unused_data:
        raise ShardError("bad-section", "zlib section does not inflate to exactly D bytes using exactly S bytes")
    return data, stored_len


def _old_lengths(header, n):
    k = header.k
    return (4 * n, header.aug_bytes * n, 2 * n * k, header.index_width * n * k, header.order_bytes * n)


def old_read_block(buf, layout, b):
    """(sections as bytes) or ShardError located at the block."""
    try:
        first, n, payload = _old_frame(buf, layout, b)
        sections, pos = [], 0
        for expected_len in _old_lengths(layout.header, n):
            data, stored_len = _old_section(payload, pos, expected_len)
            sections.append(data)
            pos += F.SECTION_HEADER_SIZE + stored_len
        if pos != len(payload):
            raise ShardError("bad-section", f"sections end at {pos}, payload is {len(payload)}")
    except ShardError as exc:
        raise exc.located(block=b) from None
    return sections


def old_sample_ids(buf, layout):
    parts = []
    for b in range(layout.blocks):
        try:
            first, n, payload = _old_frame(buf, layout, b)
            data, _ = _old_section(payload, 0, _old_lengths(layout.header, n)[0])
        except ShardError as exc:
            raise exc.located(block=b) from None
        parts.append(from_planes(np.frombuffer(data, np.uint8), 4, n))
    return np.concatenate(parts) if parts else np.zeros(0, np.uint32)


def new_sections(buf, layout, b):
    return block_sections(buf, layout, b)[2]


class _Shard:
    def __init__(self, buf, layout):
        self._buf, self.layout = np.frombuffer(buf, np.uint8), layout


def many_sections(buf, layout, b):
    """Block b's sections as _blocks.inflate_blocks reads them (blocks b and b + 1 asked together: the
    next block's answer must not change b's), raising its error."""
    asked = [x for x in (b, b + 1) if x < layout.blocks]
    data, done, error = inflate_blocks(BlockReader(_Shard(buf, layout)), np.array(asked))
    at = asked.index(b)
    if done <= at:
        raise error
    lengths = [_old_lengths(layout.header, layout.block_records(x)) for x in asked]
    start = sum(sum(x) for x in lengths[:at])
    cuts = np.cumsum([0] + list(lengths[at])) + start
    return [data[cuts[s]:cuts[s + 1]] for s in range(5)]


def outcome(function, *args):
    """('ok', value) or ('error', code, message, block, record)."""
    try:
        return ("ok", function(*args))
    except ShardError as exc:
        return ("error", exc.code, exc.message, exc.block, exc.record)


def same(a, b):
    if a[0] != b[0]:
        return False
    if a[0] == "error":
        return a == b
    x, y = a[1], b[1]
    if isinstance(x, np.ndarray):
        return np.array_equal(x, y)
    return [bytes(s) for s in x] == [bytes(s) for s in y]


# ---- files ---------------------------------------------------------------------------------------------


def write_shard(path, rng, ids, per_block, aug="seed", epoch=0, rank=0, crc="00000000"):
    with ShardWriter(str(path), CLASSES, K, augmentation_kind=aug, epoch=epoch, rank=rank,
                     records_per_block=per_block, provenance={"dataset_checksum": crc}) as writer:
        for sample in ids:
            code = rng.integers(0, 256, 4, dtype=np.uint8).tobytes() if aug == "seed" else b""
            writer.append(int(sample), rng.choice(CLASSES, K, replace=False), random_probabilities(rng, K), code)


def write_dataset(folder, rng, per_block=(16, 5, 64), per_rank=150, epochs=1):
    """Ranks with different records_per_block (the slab's rows per slot is their largest; the other
    shards' blocks all hold fewer records), seed codes (A = 4), padded copies across ranks."""
    os.makedirs(folder, exist_ok=True)
    write_keys(os.path.join(folder, "keys.tsk"), [f"k{i:05d}" for i in range(KEYS)])
    _, crc = file_size_and_crc(os.path.join(folder, "keys.tsk"))
    names = []
    for epoch in range(epochs):
        order = rng.permutation(KEYS)
        for rank, r in enumerate(per_block):
            part = list(order[rank * per_rank:(rank + 1) * per_rank]) + (list(order[:3]) if rank else [])
            name = f"epoch{epoch:04d}-rank{rank:03d}.tshard"
            write_shard(os.path.join(folder, name), rng, part, r, epoch=epoch, rank=rank, crc=crc)
            names.append(name)
    write_manifest(str(folder), names)
    return str(folder)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("rr") / "ds", np.random.default_rng(11), epochs=2)


def rechecksum(data, layout, b):
    """Recompute block b's payload and header checksums in place (after its payload was changed)."""
    offset, length = layout.block_offsets[b], layout.block_lengths[b]
    payload = bytes(data[offset + F.BLOCK_HEADER_SIZE:offset + length])
    magic, n, first, payload_len, _, reserved = F.BLOCK_HEADER.unpack_from(data, offset)
    data[offset:offset + F.BLOCK_HEADER_SIZE] = F.pack_block_header(n, first, payload_len, F.crc32(payload))


# ---- layout: block_sections and shard_sample_ids against the old checker -------------------------------


@pytest.mark.parametrize("per_block,count,sequential", [(2, 7, False), (16, 50, False), (64, 128, True),
                                                        (64, 130, True), (5, 5, False)])
def test_every_payload_byte_with_valid_checksums(tmp_path, per_block, count, sequential):
    """Section rules (codec, reserved, D, S, inflation, exact fill) are reached when the checksums hold:
    every byte of every payload changed, both ways of reading give the old checker's answer."""
    rng = np.random.default_rng(per_block + count)
    path = tmp_path / "s.tshard"
    ids = np.arange(count) if sequential else rng.choice(100_000, count, replace=False)  # zlib / stored ids
    write_shard(path, rng, ids, per_block)
    clean = bytearray(path.read_bytes())
    layout = parse_layout(bytes(clean))
    assert np.array_equal(shard_sample_ids(bytes(clean), layout), ids)
    codecs = set()
    for b in range(layout.blocks):
        offset, length = layout.block_offsets[b], layout.block_lengths[b]
        codecs.add(clean[offset + F.BLOCK_HEADER_SIZE])
        for at in range(offset + F.BLOCK_HEADER_SIZE, offset + length):
            for mask in (0xFF, 0x01):
                data = bytearray(clean)
                data[at] ^= mask
                rechecksum(data, layout, b)
                data = bytes(data)
                assert same(outcome(new_sections, data, layout, b), outcome(old_read_block, data, layout, b)), at
                assert same(outcome(many_sections, data, layout, b), outcome(old_read_block, data, layout, b)), at
                want = outcome(old_sample_ids, data, layout)
                assert same(outcome(shard_sample_ids, data, layout), want), at
                assert same(outcome(shard_sample_ids, memoryview(data), layout), want), at
                got = outcome(read_block_ids, data, layout, b)
                if want[0] == "error" and want[3] == b:
                    assert got[0] == "error" and got[1:3] == want[1:3]
    # Both kinds of sample-id section are met: zlib (sequential ids), stored (few random ids).
    assert (F.CODEC_ZLIB if sequential else F.CODEC_STORED) in codecs


@pytest.mark.parametrize("per_block", [2, 16])
def test_every_file_byte_with_checksums_left_alone(tmp_path, per_block):
    """Every byte of the blocks and index changed as found on disk: the same answer as the old checker
    whenever the layout still opens."""
    rng = np.random.default_rng(per_block)
    path = tmp_path / "s.tshard"
    write_shard(path, rng, rng.choice(1000, 40, replace=False), per_block)
    clean = path.read_bytes()
    layout = parse_layout(clean)
    for at in range(layout.data_start, len(clean)):
        data = bytearray(clean)
        data[at] ^= 0x55
        data = bytes(data)
        try:
            damaged = parse_layout(data)
        except ShardError:
            continue
        assert same(outcome(shard_sample_ids, data, damaged), outcome(old_sample_ids, data, damaged)), at
        for b in range(damaged.blocks):
            assert same(outcome(new_sections, data, damaged, b), outcome(old_read_block, data, damaged, b)), at
            assert same(outcome(many_sections, data, damaged, b), outcome(old_read_block, data, damaged, b)), at


def test_read_block_sections_are_arrays(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "s.tshard"
    write_shard(path, rng, rng.choice(1000, 40, replace=False), 16, aug="none")
    data = path.read_bytes()
    layout = parse_layout(data)
    for b in range(layout.blocks):
        raw = read_block(data, layout, b)
        assert all(isinstance(s, np.ndarray) and s.dtype == np.uint8 for s in raw.sections)
        assert [bytes(s) for s in raw.sections] == old_read_block(data, layout, b)


# ---- SoftLabels' random access: the same rows as the reader ---------------------------------------------


def reference_records(folder, epoch, ids):
    ds = Dataset(folder)
    return [ds.get(epoch, ds.keys[int(i)]) for i in ids]


@pytest.mark.parametrize("cache_bytes", [1, 30_000, 1 << 24])
def test_random_rows_equal_the_reader(dataset, cache_bytes):
    labels = SoftLabels(dataset, cache_bytes=cache_bytes)
    rng = np.random.default_rng(cache_bytes % 1000)
    for epoch in (0, 1, 0):
        ids = labels.ids_in_epoch(epoch)
        for size in (1, 7, 64, 300):
            pick = rng.choice(ids, size, replace=size > len(ids))
            pick = np.concatenate([pick, pick[:3]])                    # a record asked twice in a request
            codes, indices, values, residual = labels.records(pick, epoch)
            dense = labels.dense(pick, epoch)
            sparse = labels.sparse(pick, epoch)
            want = reference_records(dataset, epoch, pick)
            assert codes.tolist() == [list(r.aug) for r in want]
            assert np.array_equal(indices, np.stack([r.indices for r in want]))
            assert np.array_equal(values.astype(np.float16).view(np.uint16),
                                  np.stack([r.values for r in want]).view(np.uint16))
            assert np.array_equal(sparse[0], indices) and np.array_equal(sparse[2], residual)
            ds = Dataset(dataset)
            rows = np.stack([ds.dense_row(epoch, ds.keys[int(i)]) for i in pick])
            assert np.array_equal(dense.view(np.uint32), rows.view(np.uint32))


def test_random_rows_equal_record_order(dataset):
    """The same records through the record-order reader (blocks decoded whole) and random access (which
    reads a padded sample's copy from the lowest rank)."""
    labels = SoftLabels(dataset, cache_bytes=50_000)
    reader = labels.in_record_order(1, 1, 0, window=2, seed=3)
    batch = reader.batch(0, len(reader))
    lowest = {}
    for sample, rank in zip(batch.ids.tolist(), reader.ranks.tolist()):
        lowest[sample] = min(rank, lowest.get(sample, rank))
    keep = np.array([p for p, (sample, rank) in enumerate(zip(batch.ids.tolist(), reader.ranks.tolist()))
                     if lowest[sample] == rank])
    keep = np.random.default_rng(5).permutation(keep)
    assert len(keep) == len(labels.ids_in_epoch(1))
    for start in range(0, len(keep), 97):
        part = keep[start:start + 97]
        dense = labels.dense(batch.ids[part], epoch=1)
        assert np.array_equal(dense.view(np.uint32), scatter(batch, part).view(np.uint32))
        assert np.array_equal(labels.codes(batch.ids[part], epoch=1), batch.codes[part])


def scatter(batch, part):
    return labels_module.scatter_dense(batch.indices[part], batch.values[part], batch.residual[part], batch.classes)


def test_ring_smaller_than_requests_and_evictions(dataset, monkeypatch):
    monkeypatch.setattr(labels_module._RandomRows, "RING_ROWS", 8)
    labels = SoftLabels(dataset, cache_bytes=1)
    ids = labels.ids_in_epoch(0)
    rng = np.random.default_rng(9)
    ds = Dataset(dataset)
    for size in (3, 40, 5, 200, 2):
        pick = rng.choice(ids, size)
        rows = np.stack([ds.dense_row(0, ds.keys[int(i)]) for i in pick])
        assert np.array_equal(labels.dense(pick, 0).view(np.uint32), rows.view(np.uint32))


def test_one_record_at_a_time_through_a_one_block_cache(dataset):
    """Byte slots reused at every request while the ring still holds rows decoded from their earlier blocks
    (records at the same row of different blocks share a slot row): each answer is its own record's."""
    labels = SoftLabels(dataset, cache_bytes=1)
    ds = Dataset(dataset)
    ids = np.random.default_rng(4).permutation(labels.ids_in_epoch(0))[:150]
    for i in ids.tolist():
        want = ds.get(0, ds.keys[i])
        codes, indices, values, _ = labels.records([i], 0)
        assert bytes(codes[0]) == want.aug and np.array_equal(indices[0], want.indices), i
    assert labels._slab.random().slots <= 3


def test_each_block_is_checked_once_while_cached(dataset, monkeypatch):
    calls = count_block_reads(monkeypatch, labels_module, "inflate_groups")
    labels = SoftLabels(dataset, cache_bytes=1 << 24)
    ids = labels.ids_in_epoch(0)
    labels.dense(ids[:50], 0)
    first = len(calls)
    assert first == len(set(calls)) > 1
    labels.sparse(ids[:50], 0)
    labels.codes(ids[10:40], 0)
    labels.dense(ids[:60], 0)
    assert len(calls) == len(set(calls))


# ---- SoftLabels' random access: errors --------------------------------------------------------------


def copy_epoch0(dataset, tmp_path):
    folder = tmp_path / "damaged"
    os.makedirs(folder)
    for name in os.listdir(dataset):
        if name.startswith("epoch0000") or name == "keys.tsk":
            with open(os.path.join(dataset, name), "rb") as src, open(folder / name, "wb") as dst:
                dst.write(src.read())
    write_manifest(str(folder), sorted(n for n in os.listdir(folder) if n.endswith(".tshard")))
    return str(folder)


def damaged_copy(dataset, tmp_path, rank, change):
    """A copy of epoch 0 of `dataset` whose shard `rank` went through change(bytearray, layout), the manifest
    rewritten so that only the damage differs. Returns (folder, path of the shard, its layout)."""
    folder = copy_epoch0(dataset, tmp_path)
    path = os.path.join(folder, f"epoch0000-rank{rank:03d}.tshard")
    data = bytearray(open(path, "rb").read())
    layout = parse_layout(bytes(data))
    data = change(data, layout) or data
    open(path, "wb").write(bytes(data))
    write_manifest(folder, sorted(n for n in os.listdir(folder) if n.endswith(".tshard")))
    return folder, path, layout


def block_ids(folder, path, b):
    """(sample ids, ordinals) of block b's records that random access reads from the shard at `path`
    (padded copies are read from the lowest rank)."""
    ds = Dataset(folder)
    entries = ds._entries(0)
    position = [os.path.join(folder, e.file) for e in entries].index(path)
    reader = ds.reader(entries[position])
    ids = reader.sample_ids()
    _, shard_of, _ = ds.epoch_table(0)
    r = reader.header.records_per_block
    ordinals = [o for o in range(b * r, min((b + 1) * r, len(ids))) if shard_of[ids[o]] == position]
    return [int(ids[o]) for o in ordinals], ordinals, reader.layout


def section_offset(data, layout, b, section):
    pos = layout.block_offsets[b] + F.BLOCK_HEADER_SIZE
    for _ in range(section):
        pos += F.SECTION_HEADER_SIZE + F.SECTION_HEADER.unpack_from(data, pos)[2]
    return pos


def damage(case, data, layout, b):
    """Change block b in `data` (same length): a checksum broken, or a section rule broken with both
    checksums recomputed."""
    offset = layout.block_offsets[b]
    if case == "payload-crc":
        data[offset + F.BLOCK_HEADER_SIZE + 20] ^= 0xFF
        return
    if case == "header-crc":
        data[offset + 8] ^= 1
        return
    section = {"codec-values": 2, "reserved-indices": 3, "zlib-values": 2, "zlib-indices": 3,
               "order-stored-length": 4}[case]
    base = section_offset(data, layout, b, section)
    codec, _, stored, _ = F.SECTION_HEADER.unpack_from(data, base)
    if case == "codec-values":
        data[base] = 9
    elif case == "reserved-indices":
        data[base + 2] = 1
    elif case.startswith("zlib"):
        assert codec == F.CODEC_ZLIB
        data[base + F.SECTION_HEADER_SIZE + stored - 1] ^= 0x5A      # the stream's Adler-32
    else:
        data[base + 4] ^= 1                                           # S of the order section
    rechecksum(data, layout, b)


@pytest.mark.parametrize("case", ["payload-crc", "header-crc", "codec-values", "reserved-indices", "zlib-values",
                                  "zlib-indices", "order-stored-length"])
def test_damaged_block_met_by_random_request(dataset, tmp_path, case):
    """A block damaged after the epoch's table was built, met by a random request: the error the old block
    checker gives for that block, naming the file, the block and the first record asked of it; other
    blocks keep answering, the damaged block keeps raising. With the damage there before the table is built,
    a section rule (the table reads only the sample-id section) is met by the request just the same."""
    rank, b = 2, 1                                      # R = 64: values and indices zlib, order stored
    folder = copy_epoch0(dataset, tmp_path)
    path = os.path.join(folder, f"epoch{0:04d}-rank{rank:03d}.tshard")
    ids, ordinals, layout = block_ids(folder, path, b)
    labels = SoftLabels(folder, cache_bytes=1 << 20)
    other = [int(i) for i in labels.ids_in_epoch(0) if int(i) not in ids]
    labels.dense(other[:20])
    data = bytearray(open(path, "rb").read())
    damage(case, data, layout, b)
    with open(path, "r+b") as f:                        # in place: the mapped file sees it
        f.write(bytes(data))
    want = outcome(old_read_block, bytes(data), layout, b)
    assert want[0] == "error" and want[3] == b
    pick = other[:5] + ids[3:5]
    for attempt in range(2):
        with pytest.raises(ShardError) as caught:
            labels.dense(pick)
        error = caught.value
        assert (error.code, error.message, error.file, error.block, error.record) == \
            (want[1], want[2], path, b, ordinals[3])
        assert "\n" not in str(error)
        assert labels.dense(other[20:40]).shape == (20, CLASSES)      # other blocks still read
    with pytest.raises(ShardError) as old:              # the old path: the shard reader
        Dataset(folder).reader(Dataset(folder).manifest.shards[rank]).record(ordinals[3])
    assert (old.value.code, old.value.message, old.value.block) == (want[1], want[2], b)
    if case.endswith("crc"):
        return
    fresh = SoftLabels(folder)
    fresh.dense(other[:3])
    with pytest.raises(ShardError) as caught:
        fresh.codes(ids[1:2])
    assert (caught.value.code, caught.value.message, caught.value.block, caught.value.record) == \
        (want[1], want[2], b, ordinals[1])


def test_damaged_block_met_while_building_the_table(dataset, tmp_path):
    """Payload damage found by the sample-id pass: the first record of the block is named (as before)."""
    b = 3

    def change(data, layout):
        data[layout.block_offsets[b] + F.BLOCK_HEADER_SIZE + 30] ^= 0xFF

    folder, path, layout = damaged_copy(dataset, tmp_path, 1, change)
    labels = SoftLabels(folder)
    with pytest.raises(ShardError) as caught:
        labels.ids_in_epoch(0)
    r = layout.header.records_per_block
    assert (caught.value.code, caught.value.file, caught.value.block, caught.value.record) == \
        ("block-crc", path, b, b * r)


def test_truncated_shard(dataset, tmp_path):
    folder = copy_epoch0(dataset, tmp_path)
    path = os.path.join(folder, "epoch0000-rank002.tshard")
    data = open(path, "rb").read()
    open(path, "wb").write(data[:-7])
    labels = SoftLabels(folder)
    with pytest.raises(ShardError) as caught:
        labels.dense([0])
    assert (caught.value.code, caught.value.file) == ("incomplete", path)
    with pytest.raises(ShardError) as old:
        Dataset(folder).reader(Dataset(folder).manifest.shards[2])
    assert (old.value.code, old.value.message, old.value.file) == (caught.value.code, caught.value.message, path)


def test_bad_record_is_named_and_its_neighbours_read(dataset, tmp_path):
    """A record breaking a content rule (order number >= K!) in a block whose checksums and sections hold:
    asking for it raises the reader's error for that record; the rest of the block reads."""
    b, row = 1, 4

    def change(data, layout):
        offset = layout.block_offsets[b]
        base = section_offset(data, layout, b, 4)
        codec, _, stored, decoded = F.SECTION_HEADER.unpack_from(data, base)
        n = layout.block_records(b)
        length = decoded // n
        order = bytearray(zlib.decompress(bytes(data[base + 12:base + 12 + stored])) if codec else
                          data[base + 12:base + 12 + stored])
        order[row * length:(row + 1) * length] = b"\xff" * length                 # X = 2^(8L) - 1 >= K!
        payload = bytearray(data[offset + F.BLOCK_HEADER_SIZE:offset + layout.block_lengths[b]])
        start = base - offset - F.BLOCK_HEADER_SIZE
        payload[start:] = F.SECTION_HEADER.pack(0, b"\0\0\0", len(order), len(order)) + bytes(order)
        block = F.pack_block_header(n, b * layout.header.records_per_block, len(payload), F.crc32(payload)) + bytes(payload)
        data[offset:offset + layout.block_lengths[b]] = block
        return rewrite_index(data)          # the block's length may have changed (its order section stored)

    folder, path, layout = damaged_copy(dataset, tmp_path, 0, change)
    layout = parse_layout(open(path, "rb").read())
    r = layout.header.records_per_block
    labels = SoftLabels(folder)
    reader = Dataset(folder).reader(Dataset(folder).manifest.shards[0])
    ids = reader.sample_ids()
    bad = int(ids[b * r + row])
    neighbours = [int(ids[b * r + i]) for i in range(r) if i != row]
    with pytest.raises(ShardError) as caught:
        labels.dense(neighbours[:2] + [bad])
    with pytest.raises(ShardError) as old:
        reader.record(b * r + row)
    assert caught.value.code == old.value.code == "bad-order"
    assert (caught.value.file, caught.value.block, caught.value.record) == (path, b, b * r + row)
    ds = Dataset(folder)
    got = labels.dense(neighbours)
    want = np.stack([ds.dense_row(0, ds.keys[i]) for i in neighbours])
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def rewrite_index(data):
    """A shard's bytes with its index and footer rebuilt after blocks were rewritten (lengths changed)."""
    data = bytes(data)
    _, _, _, header_len = F.PREAMBLE.unpack_from(data, 0)
    pos = F.PREAMBLE_SIZE + header_len + F.CRC.size
    footer = F.FOOTER_BODY.unpack_from(data, len(data) - F.FOOTER_SIZE)
    blocks, records = footer[1], footer[3]
    entries = []
    for _ in range(blocks):
        payload_len = F.BLOCK_HEADER.unpack_from(data, pos)[3]
        entries.append((pos, F.BLOCK_HEADER_SIZE + payload_len))
        pos += F.BLOCK_HEADER_SIZE + payload_len
    out = bytearray(data[:pos]) + F.pack_index(entries)
    out += F.with_crc(F.FOOTER_BODY.pack(F.FOOTER_MAGIC, blocks, pos, records, F.index_length(blocks)))
    return out
