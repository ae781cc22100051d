"""The Python image store reader (Spec/IMAGESTORE.md): a round trip through the Python writer, every
reading rule breaking with its code (each case breaks one rule, checksums kept valid), and the Swift
reader agreeing on the code of every case."""

import os
import pickle
import struct
import zlib

import numpy as np
import pytest

from conftest import run_swift, swift_binary
from tinyshard.imagestore import ImageStore, ImageStoreError
from tinyshard.imagestore_writer import write_image_store
from tinyshard.split import held_out_split, unit_hash

HEADER = struct.Struct("<4sHHIIQIII")
ENTRY = struct.Struct("<QHHiIHHII")


def sample_images(rng, count=5):
    images = []
    for i in range(count):
        h, w = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        images.append((f"img/{count - i:03d}-é", rng.integers(0, 256, (h, w, 3), dtype=np.uint8), i % 3))
    return images


@pytest.fixture
def store_bytes(tmp_path):
    path = tmp_path / "s.tsimg"
    write_image_store(path, sample_images(np.random.default_rng(0)), class_names=["a", "b", "c"])
    return path.read_bytes()


def test_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    images = sample_images(rng, 7)
    path = tmp_path / "s.tsimg"
    write_image_store(path, images, class_names=["cat", "dog", "émeu"])
    store = ImageStore(path)
    assert len(store) == 7 and store.classes == 3 and store.class_names == ["cat", "dog", "émeu"]
    expected = sorted(images, key=lambda item: item[0].encode())
    assert store.keys() == [key for key, _, _ in expected]
    for i, (key, pixels, label) in enumerate(expected):
        assert store.key(i) == key and store.label(i) == label and store.index(key) == i
        assert store.size(i) == (pixels.shape[1], pixels.shape[0])
        assert np.array_equal(store.image(i), pixels)
        assert not store.image(i).flags.writeable
        image, got_label = store[i]
        assert got_label == label and np.array_equal(image, pixels)
    with pytest.raises(KeyError):
        store.index("img/000")
    with pytest.raises(IndexError, match=r"\[invalid-argument\] image 7 is out of range"):
        store.image(7)
    again = pickle.loads(pickle.dumps(store))
    assert again.keys() == store.keys() and np.array_equal(again.image(3), store.image(3))
    assert len(pickle.dumps(store)) < 200           # the path, not the pixels


def test_empty_and_unlabelled(tmp_path):
    path = tmp_path / "e.tsimg"
    write_image_store(path, [])
    store = ImageStore(path)
    assert len(store) == 0 and store.classes == 0 and store.keys() == []
    write_image_store(path, [("k", np.zeros((2, 3, 3), np.uint8), -1)])
    store = ImageStore(path)
    assert store.label(0) == -1 and store.classes == 0


def test_writer_refuses_bad_input(tmp_path):
    path = tmp_path / "x.tsimg"
    with pytest.raises(ValueError, match="appears twice"):
        write_image_store(path, [("a", np.zeros((1, 1, 3), np.uint8), 0)] * 2)
    with pytest.raises(ValueError, match="must not contain"):
        write_image_store(path, [("a\nb", np.zeros((1, 1, 3), np.uint8), 0)])
    with pytest.raises(ValueError, match="label 5"):
        write_image_store(path, [("a", np.zeros((1, 1, 3), np.uint8), 5)], classes=2)
    with pytest.raises(ValueError, match=r"uint8 \(H, W, 3\)"):
        write_image_store(path, [("a", np.zeros((1, 1), np.uint8), 0)])
    assert not path.exists()


# ---- one broken rule at a time -------------------------------------------------------------------

class Parts:
    """A store split into fields, re-serialised with valid checksums unless told otherwise."""

    def __init__(self, data):
        (self.magic, self.major, self.minor, self.count, self.classes, self.index_offset, self.key_bytes,
         self.name_bytes, _) = HEADER.unpack_from(data)
        self.flags_and_reserved = bytearray(data[36:60])
        self.pixels = bytearray(data[64:self.index_offset])
        self.entries = [list(ENTRY.unpack_from(data, self.index_offset + 32 * i)) for i in range(self.count)]
        keys_at = self.index_offset + 32 * self.count
        self.keys = bytearray(data[keys_at:keys_at + self.key_bytes])
        self.names = bytearray(data[keys_at + self.key_bytes:])
        self.header_crc = self.metadata_crc = None
        self.extra = b""

    def build(self):
        metadata = b"".join(ENTRY.pack(*e) for e in self.entries) + bytes(self.keys) + bytes(self.names)
        crc = zlib.crc32(metadata) if self.metadata_crc is None else self.metadata_crc
        head = HEADER.pack(self.magic, self.major, self.minor, self.count, self.classes, self.index_offset,
                           self.key_bytes, self.name_bytes, crc) + bytes(self.flags_and_reserved)
        head += struct.pack("<I", zlib.crc32(head) if self.header_crc is None else self.header_crc)
        return head + bytes(self.pixels) + metadata + self.extra


def rewrite_key(parts, image, new):
    """Replace image's key bytes (same length) in the key blob."""
    offset, length = parts.entries[image][4], parts.entries[image][5]
    assert len(new) == length
    parts.keys[offset:offset + length] = new


def swap_first_keys(parts):
    a, b = parts.entries[0], parts.entries[1]
    first = bytes(parts.keys[a[4]:a[4] + a[5]])
    second = bytes(parts.keys[b[4]:b[4] + b[5]])
    if len(first) == len(second):
        rewrite_key(parts, 0, second)
        rewrite_key(parts, 1, first)


CASES = {
    # name: (mutation of Parts, or raw bytes function), expected code, image index or None
    "short-zeros": (lambda data: bytes(10), "incomplete", None),
    "short-magic-prefix": (lambda data: b"TSI", "incomplete", None),
    "short-other": (lambda data: b"PNG\x00", "bad-magic", None),
    "empty": (lambda data: b"", "incomplete", None),
    "header-zero": (lambda data: bytes(64) + data[64:], "incomplete", None),
    "bad-magic": (lambda p: setattr(p, "magic", b"TSIX"), "bad-magic", None),
    "major-2": (lambda p: setattr(p, "major", 2), "unsupported-version", None),
    "header-crc": (lambda p: setattr(p, "header_crc", 12345), "header-crc", None),
    "flags": (lambda p: p.flags_and_reserved.__setitem__(0, 1), "bad-header", None),
    "reserved": (lambda p: p.flags_and_reserved.__setitem__(23, 1), "bad-header", None),
    "classes": (lambda p: setattr(p, "classes", 1 << 31), "bad-header", None),
    "index-offset-low": (lambda p: setattr(p, "index_offset", 10), "size-mismatch", None),
    "padded": (lambda p: setattr(p, "extra", b"\0"), "size-mismatch", None),
    "truncated": (lambda data: data[:-1], "size-mismatch", None),
    "metadata-crc": (lambda p: setattr(p, "metadata_crc", 7), "metadata-crc", None),
    "key-offset": (lambda p: p.entries[1].__setitem__(4, p.entries[1][4] + 1), "bad-index", 1),
    "key-length-zero": (lambda p: p.entries[0].__setitem__(5, 0), "bad-index", 0),
    "key-newline": (lambda p: rewrite_key(p, 2, b"img/0\n3-\xc3\xa9"), "bad-keys", 2),
    "key-not-utf8": (lambda p: rewrite_key(p, 2, b"img/003-\xc3\xc3"), "bad-keys", 2),
    "key-order": (swap_first_keys, "bad-keys", 1),
    "channels": (lambda p: p.entries[3].__setitem__(6, 4), "bad-index", 3),
    "entry-reserved": (lambda p: p.entries[3].__setitem__(8, 1), "bad-index", 3),
    "width-zero": (lambda p: p.entries[4].__setitem__(1, 0), "bad-index", 4),
    "pixel-offset": (lambda p: p.entries[2].__setitem__(0, p.entries[2][0] + 3), "bad-index", 2),
    "pixels-past-index": (lambda p: p.entries[4].__setitem__(2, 60000), "bad-index", 4),
    "label-high": (lambda p: p.entries[1].__setitem__(3, 3), "bad-label", 1),
    "label-negative": (lambda p: p.entries[1].__setitem__(3, -2), "bad-label", 1),
    "pixels-gap": (lambda p: p.pixels.extend(b"\0\0\0") or setattr(p, "index_offset", p.index_offset + 3),
                   "bad-index", None),
    "key-bytes-left": (lambda p: (p.keys.extend(b"x"), setattr(p, "key_bytes", p.key_bytes + 1)),
                       "bad-index", None),
    "names-newline": (lambda p: (p.names.__delitem__(-1), setattr(p, "name_bytes", p.name_bytes - 1)),
                      "bad-classes", None),
    "names-count": (lambda p: setattr(p, "classes", 4), "bad-classes", None),
    "names-duplicate": (lambda p: p.names.__setitem__(2, ord("a")), "bad-classes", None),
}


def broken(store_bytes, name):
    mutate, code, image = CASES[name]
    if name in ("short-zeros", "short-magic-prefix", "short-other", "empty", "header-zero", "truncated"):
        return mutate(store_bytes), code, image
    parts = Parts(store_bytes)
    mutate(parts)
    return parts.build(), code, image


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_rule(store_bytes, tmp_path, name):
    data, code, image = broken(store_bytes, name)
    path = tmp_path / f"{name}.tsimg"
    path.write_bytes(data)
    with pytest.raises(ImageStoreError) as caught:
        ImageStore(path)
    error = caught.value
    assert error.code == code, str(error)
    assert error.image == image, str(error)
    text = str(error)
    assert "\n" not in text and text.startswith(str(path)) and f"[{code}]" in text
    if image is not None:
        assert f"image {image}" in text


def test_pixel_crc_on_read_and_verify(store_bytes, tmp_path):
    data = bytearray(store_bytes)
    parts = Parts(store_bytes)
    data[parts.entries[2][0]] ^= 1                      # first pixel byte of image 2
    path = tmp_path / "p.tsimg"
    path.write_bytes(bytes(data))
    store = ImageStore(path)
    store.image(1)
    with pytest.raises(ImageStoreError, match=r"image 2 \(key img/003-é\): \[pixel-crc\]"):
        store.image(2)
    unchecked = ImageStore(path, pixel_check="never")
    unchecked.image(2)
    with pytest.raises(ImageStoreError) as caught:
        unchecked.verify_pixels()
    assert caught.value.code == "pixel-crc" and caught.value.image == 2


def test_minor_version_may_use_flags(store_bytes, tmp_path):
    parts = Parts(store_bytes)
    parts.minor = 1
    parts.flags_and_reserved[0] = 1
    path = tmp_path / "m.tsimg"
    path.write_bytes(parts.build())
    assert len(ImageStore(path)) == 5


def test_not_a_file(tmp_path):
    with pytest.raises(ImageStoreError, match=r"\[io\]"):
        ImageStore(tmp_path)
    with pytest.raises(ImageStoreError, match=r"\[io\]"):
        ImageStore(tmp_path / "missing.tsimg")


def test_swift_reader_agrees(store_bytes, tmp_path):
    """Swift opens the Python-written store, and reports the same code for every broken case (its
    store is opened first by `tinyshard render`, before the dataset)."""
    binary = swift_binary()
    good = tmp_path / "good.tsimg"
    good.write_bytes(store_bytes)
    result = run_swift(binary, "render", "--images", good, "--shards", tmp_path / "none", "--epoch", 0,
                       "--key", "k", "--out", tmp_path / "x.png", check=False)
    assert result.returncode != 0 and "good.tsimg" not in result.stderr and "none" in result.stderr, \
        result.stderr                              # the store opened; the (absent) dataset did not
    disagreements = []
    for name in sorted(CASES):
        data, code, _ = broken(store_bytes, name)
        path = tmp_path / f"{name}.tsimg"
        path.write_bytes(data)
        result = run_swift(binary, "render", "--images", path, "--shards", tmp_path / "none", "--epoch", 0,
                           "--key", "k", "--out", tmp_path / "x.png", check=False)
        if f"[{code}]" not in result.stderr:
            disagreements.append((name, code, result.stderr.strip()))
    assert disagreements == []


def test_held_out_split_matches_swift_rule():
    # FNV-1a-64 of "" is the offset basis; with salt 0 the split is deterministic per key.
    assert 0 <= unit_hash("digits_00000") < 1
    keys = [f"digits_{i:05d}" for i in range(1797)]
    train, held_out = held_out_split(keys, 0.2)
    assert len(train) + len(held_out) == 1797 and 300 < len(held_out) < 420
    assert held_out_split(keys, 0.2) == (train, held_out)


def test_jpeg_store_round_trip(tmp_path):
    """Version 2.0 (IMAGESTORE.md 3.2): the Python writer's JPEG store reads back as its streams decode,
    near the originals; a damaged stream is bad-jpeg when read, a damaged index entry at open."""
    pytest.importorskip("PIL")
    import io
    from PIL import Image
    from tinyshard import jpeg
    rng = np.random.default_rng(4)
    smooth = [(f"k{i}", np.repeat(np.repeat(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8), 8, 0), 8, 1), i % 2)
              for i in range(4)]
    path = tmp_path / "j.tsimg"
    write_image_store(path, smooth, class_names=["a", "b"], encoding="jpeg", quality=95, subsampling="444")
    store = ImageStore(path)
    assert store.encoding == "jpeg" and len(store) == 4
    data = path.read_bytes()
    parts = Parts(data)
    for i, (key, pixels, label) in enumerate(smooth):
        image = store.image(i)
        assert image.shape == pixels.shape and store.label(i) == label
        assert np.abs(image.astype(int) - pixels).mean() < 3
        offset, length = parts.entries[i][0], parts.entries[i][8]
        stream = data[offset:offset + length]
        assert jpeg.frame_problem(stream, 40, 32) is None
        assert np.array_equal(image, np.asarray(Image.open(io.BytesIO(stream)).convert("RGB")))
    # A stream cut short (EOI kept, CRC and lengths recomputed) fails when read, naming the image.
    offset, length = parts.entries[1][0], parts.entries[1][8]
    stream = data[offset:offset + length]
    bad = stream[:length // 2] + b"\xff\xd9"
    parts.pixels[offset - 64:offset - 64 + length] = bad + bytes(length - len(bad))
    parts.entries[1][7] = zlib.crc32(bad + bytes(length - len(bad)))
    path.write_bytes(parts.build())
    with pytest.raises(ImageStoreError, match=r"image 1 \(key k1\): \[bad-jpeg\]"):
        ImageStore(path).image(1)
    # An index claiming more pixels than the bytes present can hold: refused at open.
    parts = Parts(data)
    parts.entries[2][8] = 4
    path.write_bytes(parts.build())
    with pytest.raises(ImageStoreError, match=r"image 2 .*\[bad-index\]"):
        ImageStore(path)


def test_streaming_writer(tmp_path):
    from tinyshard.imagestore_writer import ImageStoreWriter
    path = tmp_path / "w.tsimg"
    with ImageStoreWriter(path, class_names=["x", "y"]) as writer:
        writer.append("a", np.zeros((2, 2, 3), np.uint8), 1)
        writer._file.flush()
        assert (tmp_path / "w.tsimg.partial").read_bytes()[:64] == bytes(64)    # header written last
        with pytest.raises(ValueError, match="strictly ascending"):
            writer.append("a", np.zeros((2, 2, 3), np.uint8), 0)
        writer.append("b", np.ones((1, 3, 3), np.uint8), -1)
    store = ImageStore(path)
    assert store.keys() == ["a", "b"] and store.label(0) == 1 and store.size(1) == (3, 1)
    assert not (tmp_path / "w.tsimg.partial").exists()
    with pytest.raises(RuntimeError):
        with ImageStoreWriter(tmp_path / "v.tsimg") as writer:
            writer.append("a", np.zeros((2, 2, 3), np.uint8))
            raise RuntimeError("interrupted")
    assert not (tmp_path / "v.tsimg").exists() and not (tmp_path / "v.tsimg.partial").exists()
