"""Writing image stores (Spec/IMAGESTORE.md) from Python: raw (1.0) or JPEG (2.0).

`ImageStoreWriter` streams: images are appended in strictly ascending key order under the temporary name
`<path>.partial`, whose first 64 bytes stay zero until `finish()` has appended the metadata and writes
the header last; then fsync, rename into place, fsync of the folder, as the spec's writer does. Memory
holds the index (32 bytes an image) and the keys, never the pixels. `write_image_store` takes images in
any order (sorting them by key first).
"""

import os
import struct
import zlib

import numpy as np

from . import jpeg
from .imagestore import (_ENTRY, _HEADER, CHANNELS, HEADER_SIZE, JPEG_ENCODING, JPEG_MAJOR, MAGIC,
                         MINOR_VERSION, RAW_MAJOR, _key_problem)
from .jpeg import MAX_PIXELS, MAX_PIXELS_PER_STORED_BYTE


def _checked_pixels(key, pixels):
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or not 1 <= pixels.shape[0] <= 65535 \
            or not 1 <= pixels.shape[1] <= 65535:
        raise ValueError(f"key {key!r}: pixels must be uint8 (H, W, 3) with 1 <= H, W <= 65535, "
                         f"got {pixels.shape}")
    return pixels


class ImageStoreWriter:
    """Append (key, uint8 (H, W, 3) pixels, label) in strictly ascending key order, then finish().

    class_names (a list) sets C; otherwise `classes` does (labels are then only numbered). encoding
    "raw" or "jpeg" (quality, subsampling "420"/"444"; needs Pillow). Leaving a `with` block by an
    exception removes the partial file."""

    def __init__(self, path, class_names=None, classes=0, encoding="raw", quality=90, subsampling="420"):
        if encoding not in ("raw", "jpeg"):
            raise ValueError("encoding must be 'raw' or 'jpeg'")
        self.names = [str(name) for name in class_names] if class_names is not None else []
        for name in self.names:
            problem = _key_problem(name.encode("utf-8"), what="class name")
            if problem:
                raise ValueError(f"class name {name!r}: {problem}")
        if len(set(self.names)) != len(self.names):
            raise ValueError("class names must be unique")
        self.classes = len(self.names) if class_names is not None else int(classes)
        if not 0 <= self.classes <= (1 << 31) - 1:
            raise ValueError(f"class count {self.classes} is outside 0..2^31-1")
        self.path = os.fspath(path)
        self.encoding, self.quality, self.subsampling = encoding, quality, subsampling
        self._partial = self.path + ".partial"
        self._file = open(self._partial, "wb")
        self._file.write(bytes(HEADER_SIZE))
        self._entries = []
        self._keys = []
        self._offset = HEADER_SIZE
        self._key_offset = 0

    def append(self, key, pixels, label=-1):
        raw = key.encode("utf-8")
        problem = _key_problem(raw)
        if problem:
            raise ValueError(f"key {key!r}: {problem}")
        if self._keys and not self._keys[-1] < raw:
            raise ValueError(f"key {key!r} does not follow {self._keys[-1].decode()!r} (keys must be strictly "
                             "ascending in byte order)")
        label = int(label)
        if not (label == -1 or 0 <= label < self.classes):
            raise ValueError(f"key {key!r}: label {label} is not -1 or in 0..<{self.classes}")
        pixels = _checked_pixels(key, pixels)
        height, width = pixels.shape[:2]
        if self.encoding == "raw":
            stored = pixels.tobytes()
        else:
            stored = jpeg.encode(pixels, self.quality, self.subsampling)
            if width * height > MAX_PIXELS or width * height > MAX_PIXELS_PER_STORED_BYTE * len(stored):
                raise ValueError(f"key {key!r}: a {width}x{height} image is over the JPEG store's bounds")
        self._file.write(stored)
        self._entries.append((self._offset, width, height, label, self._key_offset, len(raw), CHANNELS,
                              zlib.crc32(stored), len(stored) if self.encoding == "jpeg" else 0))
        self._keys.append(raw)
        self._offset += len(stored)
        self._key_offset += len(raw)

    def finish(self):
        """Metadata, then the header, fsync, rename, fsync the folder. Returns the number of images."""
        entries = np.array(self._entries, dtype=_ENTRY) if self._entries else np.zeros(0, dtype=_ENTRY)
        key_blob = b"".join(self._keys)
        name_blob = b"".join(name.encode("utf-8") + b"\n" for name in self.names)
        metadata = entries.tobytes() + key_blob + name_blob
        self._file.write(metadata)
        jpeg_store = self.encoding == "jpeg"
        head = _HEADER.pack(MAGIC, JPEG_MAJOR if jpeg_store else RAW_MAJOR, MINOR_VERSION, len(self._keys),
                            self.classes, self._offset, len(key_blob), len(name_blob), zlib.crc32(metadata))
        head += struct.pack("<I", JPEG_ENCODING if jpeg_store else 0) + bytes(20)
        head += struct.pack("<I", zlib.crc32(head))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.seek(0)
        self._file.write(head)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        os.replace(self._partial, self.path)
        folder = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
        return len(self._keys)

    def abort(self):
        if self._file is not None:
            self._file.close()
            self._file = None
            os.unlink(self._partial)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            if self._file is not None:
                self.finish()
        else:
            self.abort()
        return False


def write_image_store(path, images, class_names=None, classes=None, encoding="raw", quality=90,
                      subsampling="420"):
    """Write a store from (key, pixels, label) in any key order (sorted here by the keys' UTF-8
    bytes; a repeated key is an error). Without class_names or classes, C = max label + 1."""
    items = sorted(((key.encode("utf-8"), key, pixels, int(label)) for key, pixels, label in images),
                   key=lambda item: item[0])
    for a, b in zip(items, items[1:]):
        if a[0] == b[0]:
            raise ValueError(f"key {a[1]!r} appears twice")
    if class_names is None and classes is None:
        classes = max((item[3] for item in items), default=-1) + 1
    with ImageStoreWriter(path, class_names, classes or 0, encoding, quality, subsampling) as writer:
        for _, key, pixels, label in items:
            writer.append(key, pixels, label)
    return len(items)
