"""Constants, checksums and the fixed-width structures of a TinyShard file (FORMAT.md sections 0-1).

Everything here is pure packing/unpacking: no file access. Each parser checks exactly the rules of
the structure it parses and raises ShardError with the code the spec gives for that rule.
"""

import functools
import json
import math
import re
import struct
from dataclasses import dataclass, field

from . import _zlib
from .errors import ShardError

SHARD_MAGIC = b"\x89TSH\r\n\x1a\n"
BLOCK_MAGIC = b"TSBK"
INDEX_MAGIC = b"TSIX"
FOOTER_MAGIC = b"TSFT"
KEYS_MAGIC = b"TSKY"

MAJOR_VERSION = 1
MINOR_VERSION = 1                   # spec revision 1.1: reading rules tightened, bytes unchanged

PREAMBLE = struct.Struct("<8sHHI")          # magic, major, minor, H
BLOCK_HEADER = struct.Struct("<4sIQIII")    # magic, n, first ordinal, P, payload CRC, reserved
SECTION_HEADER = struct.Struct("<B3sII")    # codec, reserved, S, D
INDEX_HEAD = struct.Struct("<4sI")          # magic, B
INDEX_ENTRY = struct.Struct("<QI")          # block offset, block length
FOOTER_BODY = struct.Struct("<4sIQQI")      # magic, B, index offset, N, index length
CRC = struct.Struct("<I")

PREAMBLE_SIZE = PREAMBLE.size               # 16
BLOCK_HEADER_SIZE = BLOCK_HEADER.size + 4   # 32
SECTION_HEADER_SIZE = SECTION_HEADER.size   # 12
FOOTER_SIZE = FOOTER_BODY.size + 4          # 32

MIN_HEADER_LEN = 2
MAX_HEADER_LEN = 1 << 20
MAX_CLASSES = 1 << 24
MAX_K = 256
MAX_RECORDS_PER_BLOCK = 1 << 16
MAX_EPOCH_OR_RANK = (1 << 31) - 1           # SPEC_QUESTIONS.md Q4

CODEC_STORED = 0
CODEC_ZLIB = 1

VALUE_KINDS = ("probability", "logit")
AUGMENTATION_KINDS = ("none", "seed", "params")
AUGMENTATION_BYTES = {"none": 0, "seed": 4, "params": 80}


def crc32(data):
    """CRC-32 as zlib computes it; accepts bytes, memoryviews and contiguous numpy arrays."""
    return _zlib.crc32(data) & 0xFFFFFFFF


def with_crc(body):
    """`body` followed by its own CRC-32: the shape of every checked structure in the format."""
    return bytes(body) + CRC.pack(crc32(body))


def index_width(classes):
    """w of section 3.4: bytes needed to hold C - 1."""
    return 1 if classes <= 1 << 8 else 2 if classes <= 1 << 16 else 3


@functools.lru_cache(maxsize=None)
def order_bytes(k):
    """L of section 3.5: bytes of an order number, ceil(bitlength(K! - 1) / 8)."""
    return ((math.factorial(k) - 1).bit_length() + 7) // 8


def probability_sum_bound(k):
    """Largest allowed float64 sum of a probability record's K float16 values (section 2)."""
    return 1.0 + 2.0 ** -11 + k * 2.0 ** -25


# --------------------------------------------------------------------------------------------
# Header JSON


def default_records_per_block(k):
    """This project's block size for K = k (FORMAT.md 1.1, Swift's `ShardSchema.defaultRecordsPerBlock(k:)`):
    the largest power of two R with R·k ≤ 2,048 (K = 100 → 16, K = 10 → 128, K = 1 → 2,048). A block
    is what a random read decodes; keeping R·K constant keeps that work the same for every K."""
    k = max(int(k), 1)
    r = 1
    while r * 2 * k <= 2_048:
        r *= 2
    return r


@dataclass(frozen=True)
class Header:
    """The validated header of a shard. `extra` keeps keys this version does not know, so that a
    reader of a higher minor version's file still sees them."""

    classes: int
    k: int
    value_kind: str = "probability"
    temperature: float = 1.0
    sorted: bool = True
    augmentation_kind: str = "none"
    output_size: tuple = None               # (height, width) or None
    epoch: int = 0
    rank: int = 0
    records_per_block: int = 1024
    provenance: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def aug_bytes(self):
        return AUGMENTATION_BYTES[self.augmentation_kind]

    @property
    def index_width(self):
        return index_width(self.classes)

    @property
    def order_bytes(self):
        return order_bytes(self.k)

    def to_json_object(self):
        augmentation = {"kind": self.augmentation_kind, "version": 1}
        if self.output_size is not None:
            augmentation["output_size"] = list(self.output_size)
        obj = {
            "classes": self.classes, "k": self.k, "value_kind": self.value_kind,
            "temperature": self.temperature, "sorted": self.sorted, "value_dtype": "float16",
            "index_codec": "sorted-gap-planes", "augmentation": augmentation,
            "epoch": self.epoch, "rank": self.rank, "records_per_block": self.records_per_block,
            "provenance": dict(self.provenance),
        }
        obj.update(self.extra)
        return obj

    def to_bytes(self):
        return json.dumps(self.to_json_object(), ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8")

    def validate(self):
        """Raise ShardError('bad-header') unless every field is in its spec range."""
        validate_header_object(self.to_json_object())
        return self


def _bad(message):
    return ShardError("bad-header", message)


MAX_JSON_DEPTH = 64
# A \u escape of a surrogate that is not preceded by an odd number of backslashes (i.e. is an escape).
_SURROGATE_ESCAPE = re.compile(r'(?<!\\)(?:\\\\)*\\u[dD][89a-fA-F][0-9a-fA-F]{2}')


class BigInt:
    """An integer token too long to convert (Python caps int() at 4300 digits): outside every range
    the spec allows, and ignored like any value under an unknown key."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return f"<integer of {len(self.text)} digits>"


def _int_token(text):
    return int(text) if len(text) <= 4000 else BigInt(text)


def _nested_deeper_than(limit, value, data):
    """True when arrays and objects nest more than `limit` deep (the top-level object is 1). The count
    of `[` and `{` bytes in `data` bounds the depth and settles nearly every document; otherwise the
    parsed value is walked (no copy of the text)."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        for child in (item.values() if isinstance(item, dict) else item):
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return False


def _has_surrogate(value):
    """True when a string anywhere in a parsed value holds a lone surrogate (only \\u escapes make them)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_json_object(data, code="bad-header"):
    """Parse bytes by the spec's JSON grammar (FORMAT.md 1.1, "JSON grammar") into a dict. Raises
    ShardError(code) for anything else: not UTF-8 (strict: no overlong forms, no encoded surrogates;
    so no UTF-16/32), a byte-order mark, NaN/Infinity, duplicate member names after unescaping, a lone
    surrogate escape, nesting deeper than 64, a top level that is not an object. Integer tokens become
    int (BigInt past 4000 digits), other numbers float: an int field rejects 1.0 and 1e3 by type."""

    def reject_constant(name):
        raise ShardError(code, f"JSON constant {name} is not valid JSON")

    def no_duplicate_keys(pairs):
        obj = {}
        for key, value in pairs:
            if key in obj:
                raise ShardError(code, f"duplicate JSON member name {key!r}")
            obj[key] = value
        return obj

    data = bytes(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ShardError(code, f"not UTF-8: {exc}") from None
    if text.startswith("\ufeff"):
        raise ShardError(code, "a byte-order mark is not allowed")
    try:
        obj = json.loads(text, parse_constant=reject_constant, object_pairs_hook=no_duplicate_keys,
                         parse_int=_int_token)
    except (ValueError, RecursionError) as exc:
        raise ShardError(code, f"not valid JSON: {exc}") from None
    if _nested_deeper_than(MAX_JSON_DEPTH, obj, data):
        raise ShardError(code, f"JSON nesting deeper than {MAX_JSON_DEPTH}")
    if _SURROGATE_ESCAPE.search(text) and _has_surrogate(obj):
        raise ShardError(code, "a lone surrogate escape")
    if not isinstance(obj, dict):
        raise ShardError(code, "JSON is not an object")
    return obj


def is_int(value):
    """JSON integer: an int written without fraction or exponent (bool is not an int here)."""
    return type(value) is int


def _int_field(obj, key, low, high):
    value = obj.get(key)
    if not is_int(value) or not low <= value <= high:
        raise _bad(f"{key!r} must be an integer in [{low}, {high}], got {value!r}")
    return value


def _output_size(value):
    if (not isinstance(value, list) or len(value) != 2
            or not all(is_int(v) and 1 <= v <= 0xFFFF for v in value)):
        raise _bad(f"augmentation.output_size must be [height, width] in 1..65535, got {value!r}")
    return tuple(value)


def _augmentation(value):
    if not isinstance(value, dict):
        raise _bad("'augmentation' must be an object")
    kind = value.get("kind")
    if kind not in AUGMENTATION_KINDS:
        raise _bad(f"augmentation.kind must be one of {AUGMENTATION_KINDS}, got {kind!r}")
    if not is_int(value.get("version")) or value["version"] != 1:
        raise _bad(f"augmentation.version must be 1, got {value.get('version')!r}")
    if "output_size" in value:
        return kind, _output_size(value["output_size"])
    if kind == "params":
        raise _bad("augmentation.output_size is required for kind 'params'")
    return kind, None


def _provenance(value):
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _bad("'provenance' must be an object of strings")
    return dict(value)


KNOWN_HEADER_KEYS = ("classes", "k", "value_kind", "temperature", "sorted", "value_dtype",
                     "index_codec", "augmentation", "epoch", "rank", "records_per_block",
                     "provenance")


def validate_header_object(obj):
    """Turn a parsed header JSON object into a Header, checking every rule of section 1.1."""
    classes = _int_field(obj, "classes", 1, MAX_CLASSES)
    k = _int_field(obj, "k", 1, min(classes, MAX_K))
    if obj.get("value_kind") not in VALUE_KINDS:
        raise _bad(f"value_kind must be one of {VALUE_KINDS}, got {obj.get('value_kind')!r}")
    temperature = obj.get("temperature")
    if type(temperature) not in (int, float, BigInt):
        raise _bad(f"temperature must be a number, got {temperature!r}")
    try:
        # Any number token, as the nearest float64 (an integer past float64's range is infinite).
        temperature = float(temperature.text if type(temperature) is BigInt else temperature)
    except OverflowError:
        temperature = math.inf
    if not math.isfinite(temperature) or temperature <= 0:
        raise _bad(f"temperature must be a finite number > 0, got {temperature!r}")
    if type(obj.get("sorted")) is not bool:
        raise _bad(f"sorted must be a boolean, got {obj.get('sorted')!r}")
    if obj.get("value_dtype") != "float16":
        raise _bad(f"value_dtype must be 'float16', got {obj.get('value_dtype')!r}")
    if obj.get("index_codec") != "sorted-gap-planes":
        raise _bad(f"index_codec must be 'sorted-gap-planes', got {obj.get('index_codec')!r}")
    kind, output_size = _augmentation(obj.get("augmentation"))
    return Header(
        classes=classes, k=k, value_kind=obj["value_kind"], temperature=float(temperature),
        sorted=obj["sorted"], augmentation_kind=kind, output_size=output_size,
        epoch=_int_field(obj, "epoch", 0, MAX_EPOCH_OR_RANK),
        rank=_int_field(obj, "rank", 0, MAX_EPOCH_OR_RANK),
        records_per_block=_int_field(obj, "records_per_block", 1, MAX_RECORDS_PER_BLOCK),
        provenance=_provenance(obj.get("provenance")),
        extra={key: value for key, value in obj.items() if key not in KNOWN_HEADER_KEYS},
    )


# --------------------------------------------------------------------------------------------
# Fixed structures


def pack_preamble_and_header(header):
    body = header.to_bytes()
    if not MIN_HEADER_LEN <= len(body) <= MAX_HEADER_LEN:
        raise _bad(f"header JSON is {len(body)} bytes, outside [2, 1048576]")
    return with_crc(PREAMBLE.pack(SHARD_MAGIC, MAJOR_VERSION, MINOR_VERSION, len(body)) + body)


def pack_block_header(n, first, payload_len, payload_crc):
    return with_crc(BLOCK_HEADER.pack(BLOCK_MAGIC, n, first, payload_len, payload_crc, 0))


def pack_section(codec, stored, decoded_len):
    return SECTION_HEADER.pack(codec, b"\0\0\0", len(stored), decoded_len) + stored


def pack_index(entries):
    body = INDEX_HEAD.pack(INDEX_MAGIC, len(entries)) + b"".join(
        INDEX_ENTRY.pack(offset, length) for offset, length in entries)
    return with_crc(body)


def index_length(blocks):
    return INDEX_HEAD.size + INDEX_ENTRY.size * blocks + CRC.size


def pack_footer(blocks, index_offset, records):
    return with_crc(FOOTER_BODY.pack(FOOTER_MAGIC, blocks, index_offset, records,
                                     index_length(blocks)))
