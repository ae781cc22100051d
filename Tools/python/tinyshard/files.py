"""Small file helpers shared by the key table, manifest and converter writers."""

import os
import zlib


def write_atomically(path, data):
    """Write `data` under a temporary name, fsync, rename into place: never a half-written file
    under `path`."""
    path = os.fspath(path)
    temp = f"{path}.tmp-{os.getpid()}"
    with open(temp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)


def file_size_and_crc(path, chunk=1 << 22):
    """(size in bytes, CRC-32 as 8 lowercase hex digits) of a whole file, streamed."""
    crc, size = 0, 0
    with open(path, "rb") as f:
        while True:
            data = f.read(chunk)
            if not data:
                break
            crc = zlib.crc32(data, crc)
            size += len(data)
    return size, f"{crc & 0xFFFFFFFF:08x}"
