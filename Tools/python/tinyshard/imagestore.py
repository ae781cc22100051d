"""The image store (Spec/IMAGESTORE.md): N RGB images with keys and labels in one file, as raw pixels
(version 1.0) or JPEG streams decoded on read (version 2.0, tinyshard.jpeg).

`ImageStore(path)` memory-maps the file and, at open, checks everything but the pixels in the order of
IMAGESTORE.md section 5 (header, file size, metadata CRC, every index entry, key, label, class name), as
the Swift reader does, so that no later read can leave the file. An image's pixel CRC is checked before
its pixels are returned (or once for all, with pixel_check="never" and verify_pixels()); a JPEG store's
image is also checked against the JPEG rules each time it is decoded.

Per-image rules are checked with numpy over the whole index at once; the image reported is the first
that breaks a rule, and for it the first rule in the spec's order (the entries before it all passed, so
their running offsets are the ones a one-by-one reader computes).

`ImageStoreWriter` / `write_image_store` (imagestore_writer.py) write stores from Python.
"""

import os
import struct
import zlib

import numpy as np

from . import _process

from . import jpeg
from .jpeg import MAX_PIXELS, MAX_PIXELS_PER_STORED_BYTE

MAGIC = b"TSIM"
RAW_MAJOR = 1
JPEG_MAJOR = 2
JPEG_ENCODING = 1
MINOR_VERSION = 0
HEADER_SIZE = 64
ENTRY_SIZE = 32
CHANNELS = 3
MAX_KEY_BYTES = 65535
MAX_CLASSES = (1 << 31) - 1

IMAGE_STORE_ERROR_CODES = (
    "io", "bad-magic", "unsupported-version", "incomplete", "header-crc", "bad-header",
    "size-mismatch", "metadata-crc", "bad-index", "bad-keys", "bad-label", "bad-classes", "pixel-crc",
    "bad-jpeg", "invalid-argument",
)

_HEADER = struct.Struct("<4sHHIIQIII")          # magic .. metadata CRC (36 bytes), then flags/encoding
_ENTRY = np.dtype([("offset", "<u8"), ("width", "<u2"), ("height", "<u2"), ("label", "<i4"),
                   ("key_offset", "<u4"), ("key_length", "<u2"), ("channels", "<u2"),
                   ("crc", "<u4"), ("word28", "<u4")])      # word28: reserved (raw) or S (JPEG)
assert _ENTRY.itemsize == ENTRY_SIZE


class ImageStoreError(Exception):
    """A store breaks a rule of IMAGESTORE.md (code: one of IMAGE_STORE_ERROR_CODES), printed as one
    line naming the file and, for a rule of one image, its index and key:
    `store.tsimg: image 17 (key digits_00017): [pixel-crc] pixel checksum mismatch`."""

    def __init__(self, code, message, file=None, image=None, key=None):
        if code not in IMAGE_STORE_ERROR_CODES:
            raise ValueError(f"unknown image store error code {code!r}")
        self.code, self.message, self.file, self.image, self.key = code, message, file, image, key
        super().__init__(self._describe())

    def _describe(self):
        where = []
        if self.file is not None:
            where.append(str(self.file))
        key = None if self.key is None else \
            self.key.replace("\n", "\\n").replace("\r", "\\r").replace("\0", "\\0")  # one line
        if self.image is not None:
            where.append(f"image {self.image}" + (f" (key {key})" if key is not None else ""))
        elif key is not None:
            where.append(f"key {key}")
        prefix = ": ".join(where) + ": " if where else ""
        return f"{prefix}[{self.code}] {self.message}"


def _key_problem(raw, what="key"):
    """The key rule of IMAGESTORE.md section 0 for one key's bytes, or None."""
    if not raw:
        return f"a {what} must not be empty"
    if len(raw) > MAX_KEY_BYTES:
        return f"a {what} is at most {MAX_KEY_BYTES} bytes, got {len(raw)}"
    if b"\n" in raw or b"\r" in raw or b"\0" in raw:
        return f"a {what} must not contain \\n, \\r or NUL"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"a {what} must be valid UTF-8"
    return None


class ImageStore:
    """A memory-mapped image store, opened read-only.

    len(store), store.key(i), store.label(i) (-1: no label), store.size(i) -> (width, height),
    store.index(key) (KeyError when absent), store.image(i) -> uint8 (H, W, 3) array, store[i] ->
    (image, label) like a torchvision dataset. Images are read-only views of the map (no copy).

    Each process maps the file itself: a pickled store carries only its path and is opened (and
    checked) where it is unpickled, and a DataLoader worker forked from the opener maps the file
    again on first use."""

    def __init__(self, path, pixel_check="on_read"):
        if pixel_check not in ("on_read", "never"):
            raise ValueError("pixel_check must be 'on_read' or 'never'")
        self.path = os.fspath(path)
        self.pixel_check = pixel_check
        self._open()

    # ---- opening and checking ------------------------------------------------------------------

    def _fail(self, code, message, image=None, key=None):
        return ImageStoreError(code, message, file=self.path, image=image, key=key)

    def _open(self):
        self._pid = _process.generation()
        buf = self._map()
        self._buf = buf
        header = self._check_header(buf)
        self.count, self.classes, self._index_offset, key_bytes, name_bytes = header
        self._entries = np.frombuffer(buf, dtype=_ENTRY, count=self.count, offset=self._index_offset)
        self._keys_offset = self._index_offset + ENTRY_SIZE * self.count
        self._key_blob = bytes(buf[self._keys_offset:self._keys_offset + key_bytes])
        self._check_entries(key_bytes)
        names = bytes(buf[self._keys_offset + key_bytes:])
        self.class_names = self._check_class_names(names)
        self._key_list = None

    def _map(self):
        try:
            if not os.path.isfile(self.path):
                raise OSError("not a regular file")
            if os.path.getsize(self.path) == 0:
                return np.zeros(0, dtype=np.uint8)
            return np.memmap(self.path, dtype=np.uint8, mode="r")
        except (OSError, ValueError) as exc:
            raise self._fail("io", f"cannot open or map the file: {exc}") from None

    def _check_header(self, buf):
        size = len(buf)
        if size < HEADER_SIZE:
            start = bytes(buf[:4])
            unfinished = not np.any(buf) or start == MAGIC[:len(start)]
            raise self._fail("incomplete" if unfinished else "bad-magic",
                             f"the file has {size} bytes, fewer than the 64-byte header")
        head = bytes(buf[:HEADER_SIZE])
        if not any(head):
            raise self._fail("incomplete", "the header is all zero: the writer did not finish")
        if head[:4] != MAGIC:
            raise self._fail("bad-magic", "not an image store (no TSIM magic)")
        _, major, minor, count, classes, index_offset, key_bytes, name_bytes, metadata_crc = \
            _HEADER.unpack_from(head)
        if major not in (RAW_MAJOR, JPEG_MAJOR):
            raise self._fail("unsupported-version",
                             f"major version {major} is not supported (this reader knows 1 and 2)")
        if zlib.crc32(head[:60]) != struct.unpack_from("<I", head, 60)[0]:
            raise self._fail("header-crc", "header checksum mismatch")
        self.encoding = "raw" if major == RAW_MAJOR else "jpeg"
        word36 = struct.unpack_from("<I", head, 36)[0]
        if self.encoding == "jpeg" and word36 != JPEG_ENCODING:
            raise self._fail("unsupported-version",
                             f"encoding {word36} is not supported (this reader knows 1, JPEG)")
        if minor == 0 and ((self.encoding == "raw" and word36) or any(head[40:60])):
            raise self._fail("bad-header", "flags and reserved header bytes 36-59 must be 0"
                             if self.encoding == "raw" else "reserved header bytes 40-59 must be 0")
        if classes > MAX_CLASSES:
            raise self._fail("bad-header", f"class count {classes} exceeds 2^31 - 1")
        if not HEADER_SIZE <= index_offset <= size:
            raise self._fail("size-mismatch",
                             f"index offset {index_offset} is outside the {size}-byte file")
        expected = index_offset + ENTRY_SIZE * count + key_bytes + name_bytes
        if expected != size:
            raise self._fail("size-mismatch", f"the header describes a {expected}-byte file, the "
                             f"file has {size} bytes (truncated or padded)")
        if zlib.crc32(buf[index_offset:]) != metadata_crc:
            raise self._fail("metadata-crc",
                             "checksum of the index, keys and class names does not match")
        return count, classes, index_offset, key_bytes, name_bytes

    def _check_entries(self, key_bytes):
        """Every per-image rule of section 5, in its order, for all images at once."""
        e = self._entries
        n = self.count
        if n == 0:
            self._check_totals(HEADER_SIZE, 0, key_bytes)
            return
        key_offset = e["key_offset"].astype(np.int64)
        key_length = e["key_length"].astype(np.int64)
        expected_key = np.concatenate([[0], np.cumsum(key_length)[:-1]])
        key_bad = (key_offset != expected_key) | (key_length < 1) | (key_offset + key_length > key_bytes)
        # Keys are only looked at where their place is valid (the first bad place stops the reader).
        first_bad_place = int(np.argmax(key_bad)) if key_bad.any() else n
        key_rule = self._first_key_problem(key_offset, key_length, first_bad_place)
        area = e["width"].astype(np.uint64) * e["height"].astype(np.uint64)
        stored = e["word28"].astype(np.uint64)
        jpeg = self.encoding == "jpeg"
        pixels = stored if jpeg else area * np.uint64(3)
        pixel_end = np.uint64(HEADER_SIZE) + np.cumsum(pixels, dtype=np.uint64)
        pixel_start = pixel_end - pixels
        labels = e["label"].astype(np.int64)
        no_rule = np.zeros(n, dtype=bool)
        rules = [
            ("bad-index", key_bad, None),                                        # key place
            ("bad-keys", key_rule[0], key_rule[1]),                              # key rule, order
            ("bad-index", e["channels"] != CHANNELS, "channels {channels} must be 3"),
            ("bad-index", (stored < 1) if jpeg else (stored != 0),
             "the JPEG length must be at least 1" if jpeg else "reserved entry bytes 28-31 must be 0"),
            ("bad-index", (e["width"] < 1) | (e["height"] < 1),
             "image size {width}x{height} must be at least 1x1"),
            ("bad-index", (area > MAX_PIXELS) if jpeg else no_rule,
             "image size {width}x{height} is over the limit of " + str(MAX_PIXELS) + " pixels"),
            ("bad-index", (area > np.uint64(MAX_PIXELS_PER_STORED_BYTE) * stored) if jpeg else no_rule,
             "a {width}x{height} image cannot be a {stored}-byte JPEG (at most "
             + str(MAX_PIXELS_PER_STORED_BYTE) + " pixels per byte)"),
            ("bad-index", e["offset"] != pixel_start,
             "data offset {offset} must be {start} (images are packed in order after the header)"),
            ("bad-index", pixel_end > np.uint64(self._index_offset),
             "image data ends at {end}, past the index at " + str(self._index_offset)),
            ("bad-label", (labels != -1) & ((labels < 0) | (labels >= self.classes)),
             "label {label} is not -1 or in 0..<" + str(self.classes)),
        ]
        first = min((int(np.argmax(mask)) for _, mask, _ in rules if np.any(mask)), default=None)
        if first is not None:
            entry = e[first]
            for code, mask, message in rules:
                if not mask[first]:
                    continue
                if message is None:
                    raise self._fail(code, f"key offset {entry['key_offset']} length "
                                     f"{entry['key_length']}: keys must be packed in order (expected "
                                     f"offset {expected_key[first]}) inside the {key_bytes} key bytes",
                                     image=first)
                key = self._key_text(first)
                if callable(message):
                    message = message(first)
                raise self._fail(code, message.format(
                    channels=entry["channels"], width=entry["width"], height=entry["height"],
                    offset=entry["offset"], start=pixel_start[first], end=pixel_end[first],
                    label=entry["label"], stored=entry["word28"]), image=first, key=key)
        self._check_totals(int(pixel_end[-1]), int(key_offset[-1] + key_length[-1]), key_bytes)

    def _first_key_problem(self, key_offset, key_length, limit):
        """(mask, message function) of the key rule and the ascending order for images < limit."""
        mask = np.zeros(len(key_offset), dtype=bool)
        problems = {}
        blob = self._key_blob
        previous = None
        for i in range(limit):
            raw = blob[key_offset[i]:key_offset[i] + key_length[i]]
            problem = _key_problem(raw)
            if problem is None and previous is not None and not previous < raw:
                problem = ("keys must be strictly ascending in byte order; this key does not follow "
                           f"\"{previous.decode('utf-8', 'replace')}\"")
            if problem is not None:
                mask[i] = True
                problems[i] = problem
                break                       # only the first can be reported
            previous = raw
        return mask, lambda i: problems[i]

    def _check_totals(self, pixel_end, keys_used, key_bytes):
        if pixel_end != self._index_offset:
            raise self._fail("bad-index", f"the images' data ends at {pixel_end} but the index "
                             f"starts at {self._index_offset}")
        if keys_used != key_bytes:
            raise self._fail("bad-index", f"the keys use {keys_used} of the {key_bytes} key bytes")

    def _check_class_names(self, raw):
        if not raw:
            return []
        if not raw.endswith(b"\n"):
            raise self._fail("bad-classes", "class names must each end in \\n")
        parts = raw[:-1].split(b"\n")
        if len(parts) != self.classes:
            raise self._fail("bad-classes", f"{len(parts)} class names for {self.classes} classes")
        for number, part in enumerate(parts):
            problem = _key_problem(part, what="class name")
            if problem:
                raise self._fail("bad-classes", f"class {number}: {problem}")
        names = [part.decode("utf-8") for part in parts]
        if len(set(names)) != len(names):
            raise self._fail("bad-classes", "class names must be unique")
        return names

    # ---- per-process map (DataLoader workers) ---------------------------------------------------

    def __getstate__(self):
        return {"path": self.path, "pixel_check": self.pixel_check}

    def __setstate__(self, state):
        self.path, self.pixel_check = state["path"], state["pixel_check"]
        self._open()                     # in the unpickling (worker) process: its own map

    def _mapped(self):
        """The map of this process: a worker forked or unpickled from the opener maps its own."""
        if self._buf is None or self._pid != _process.generation():
            self._open()
        return self._buf

    # ---- metadata --------------------------------------------------------------------------------

    def __len__(self):
        return self.count

    def _checked(self, i):
        self._mapped()
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"image index must be an integer, got {type(i).__name__}")
        i = int(i)
        if not 0 <= i < self.count:
            raise IndexError(f"{self.path}: [invalid-argument] image {i} is out of range (the store "
                             f"has {self.count})")
        return i

    def _key_text(self, i):
        entry = self._entries[i]
        start = int(entry["key_offset"])
        return self._key_blob[start:start + int(entry["key_length"])].decode("utf-8", "replace")

    def key(self, i):
        return self._key_text(self._checked(i))

    def keys(self):
        """All keys in order (strictly ascending)."""
        self._mapped()
        if self._key_list is None:
            blob = self._key_blob.decode("utf-8")  # valid: every key was checked at open
            ends = np.cumsum(self._entries["key_length"].astype(np.int64))
            if blob.isascii():
                starts = ends - self._entries["key_length"]
                self._key_list = [blob[s:t] for s, t in zip(starts.tolist(), ends.tolist())]
            else:
                raw = self._key_blob
                starts = ends - self._entries["key_length"]
                self._key_list = [raw[s:t].decode("utf-8") for s, t in zip(starts.tolist(),
                                                                           ends.tolist())]
        return self._key_list

    def label(self, i):
        """The class index, or -1 when the image has no label."""
        i = self._checked(i)
        return int(self._entries[i]["label"])

    def labels(self):
        self._mapped()
        return self._entries["label"].astype(np.int64)

    def size(self, i):
        """(width, height) of image i."""
        i = self._checked(i)
        return int(self._entries[i]["width"]), int(self._entries[i]["height"])

    def sizes(self):
        """(N, 2) array of (width, height)."""
        self._mapped()
        return np.stack([self._entries["width"], self._entries["height"]], axis=1).astype(np.int64)

    def index(self, key):
        """The index of the image whose key is `key` (binary search); KeyError when absent."""
        keys = self.keys()
        lo, hi = 0, len(keys)
        target = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        while lo < hi:
            mid = (lo + hi) // 2
            candidate = keys[mid].encode("utf-8")
            if candidate < target:
                lo = mid + 1
            elif target < candidate:
                hi = mid
            else:
                return mid
        raise KeyError(key)

    # ---- pixels ----------------------------------------------------------------------------------

    def _stored(self, i):
        """Image i's stored bytes (a view of the map) and their CRC from the index."""
        buf = self._mapped()
        entry = self._entries[i]
        start = int(entry["offset"])
        length = int(entry["word28"]) if self.encoding == "jpeg" else \
            int(entry["width"]) * int(entry["height"]) * 3
        return buf[start:start + length], int(entry["crc"])

    def _pixels(self, i, data):
        """The one place that turns stored bytes into pixels: a read-only view of a raw store's map,
        or a JPEG store's stream decoded (after the rules of section 3.2)."""
        entry = self._entries[i]
        width, height = int(entry["width"]), int(entry["height"])
        if self.encoding == "raw":
            view = np.ndarray((height, width, 3), dtype=np.uint8, buffer=data)
            view.flags.writeable = False
            return view
        pixels, problem = jpeg.decode(data, width, height)
        if problem:
            raise self._fail("bad-jpeg", problem, image=i, key=self._key_text(i))
        return pixels

    def image(self, i):
        """Image i as a uint8 (H, W, 3) array (R, G, B), after its CRC check: a read-only view of the
        map for a raw store, a new array for a JPEG store."""
        i = self._checked(i)
        data, crc = self._stored(i)
        if self.pixel_check == "on_read" and zlib.crc32(data) != crc:
            raise self._fail("pixel-crc", "pixel checksum mismatch" if self.encoding == "raw" else
                             "JPEG checksum mismatch", image=i, key=self._key_text(i))
        return self._pixels(i, data)

    def __getitem__(self, i):
        return self.image(i), self.label(i)

    def verify_pixels(self):
        """Check every image's CRC (of its stored bytes); raise pixel-crc naming the first bad image."""
        for i in range(len(self)):
            data, crc = self._stored(i)
            if zlib.crc32(data) != crc:
                raise self._fail("pixel-crc", "checksum of the stored bytes mismatch", image=i,
                                 key=self._key_text(i))

