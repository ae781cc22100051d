"""The key table `keys.tsk` (FORMAT.md section 5): the dataset's sample keys, stored once.

A sample's id is its key's position; keys are strictly ascending in byte order, so lookup by key
is a binary search. (Python compares str by code point, which for valid UTF-8 is the same order
as comparing the encoded bytes.)
"""

import bisect
import struct
import zlib

from . import format as F
from .errors import ShardError
from .files import write_atomically

KEYS_HEAD = struct.Struct("<4sIIIII")      # magic, version, M, S, D, CRC of stored bytes
KEYS_VERSION = 1
_FORBIDDEN = ("\n", "\r", "\0")


def check_keys(keys):
    """Raise ShardError('bad-keys') unless keys are non-empty, free of newline/CR/NUL and
    strictly ascending."""
    previous = None
    for position, key in enumerate(keys):
        if not isinstance(key, str) or not key or any(c in key for c in _FORBIDDEN):
            raise ShardError("bad-keys", f"key {position} ({key!r}) is empty, not a string or "
                             "holds a newline, CR or NUL", record=position)
        if previous is not None and not previous < key:
            raise ShardError("bad-keys", f"key {position} ({key!r}) is not above the one "
                             "before it", record=position)
        previous = key


def encode_keys(keys):
    """The bytes of a key table holding `keys` (checked first)."""
    keys = list(keys)
    check_keys(keys)
    decoded = "".join(key + "\n" for key in keys).encode("utf-8")
    stored = zlib.compress(decoded, 9)
    return KEYS_HEAD.pack(F.KEYS_MAGIC, KEYS_VERSION, len(keys), len(stored), len(decoded),
                          F.crc32(stored)) + stored


def write_keys(path, keys):
    """Write a key table atomically."""
    write_atomically(path, encode_keys(keys))


def decode_keys(data):
    """Parse a key table's bytes into the list of keys, checking every rule of section 5."""
    data = bytes(data)
    head = data[:4]
    if head != F.KEYS_MAGIC[:len(head)] or not head:
        raise ShardError("bad-magic", "not a TinyShard key table")
    if len(data) < KEYS_HEAD.size:
        raise ShardError("bad-keys", "key table shorter than its 24-byte head")
    _, version, count, stored_len, decoded_len, crc = KEYS_HEAD.unpack_from(data)
    if version != KEYS_VERSION:
        raise ShardError("unsupported-version", f"key table version {version} is not 1")
    if len(data) != KEYS_HEAD.size + stored_len:
        raise ShardError("bad-keys", f"key table is {len(data)} bytes, head says "
                         f"{KEYS_HEAD.size + stored_len}")
    stored = data[KEYS_HEAD.size:]
    if F.crc32(stored) != crc:
        raise ShardError("bad-keys", "key table checksum mismatch")
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(stored, decoded_len + 1)
    except zlib.error as exc:
        raise ShardError("bad-keys", f"key table zlib stream is invalid: {exc}") from None
    if len(text) != decoded_len or not inflater.eof or inflater.unused_data:
        raise ShardError("bad-keys", "key table does not inflate to exactly D bytes")
    if (count == 0) != (decoded_len == 0) or (text and not text.endswith(b"\n")):
        raise ShardError("bad-keys", "keys must each end with a newline")
    try:
        keys = text[:-1].decode("utf-8").split("\n") if text else []
    except UnicodeDecodeError:
        raise ShardError("bad-keys", "keys are not valid UTF-8") from None
    if len(keys) != count:
        raise ShardError("bad-keys", f"key table holds {len(keys)} keys, head says {count}")
    check_keys(keys)
    return keys


def read_keys(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ShardError("io", f"cannot read key table: {exc}", file=str(path)) from None
    try:
        return decode_keys(data)
    except ShardError as exc:
        raise exc.located(file=str(path)) from None


class KeyTable:
    """Keys of a dataset with key -> sample id by binary search."""

    def __init__(self, keys):
        self.keys = list(keys)

    @classmethod
    def read(cls, path):
        return cls(read_keys(path))

    def __len__(self):
        return len(self.keys)

    def __getitem__(self, sample_id):
        return self.keys[sample_id]

    def sample_id(self, key):
        """The id of `key`, or None when the dataset does not hold it."""
        at = bisect.bisect_left(self.keys, key)
        if at < len(self.keys) and self.keys[at] == key:
            return at
        return None
