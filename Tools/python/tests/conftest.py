"""Shared helpers: random record generation and assembling shards byte by byte (to make files
that a correct writer never produces, with valid checksums, to test one rule at a time)."""

import os
import subprocess

import numpy as np
import pytest

# The tests import the *installed* package (Tools/setup-python.sh: pip install ./Tools/python[torch,test]);
# run them as `.venv/bin/pytest Tools/python/tests` so the source folder is not on sys.path instead.
from tinyshard import format as F  # noqa: E402
from tinyshard.codec import encode_block  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
FIXTURES = os.path.abspath(os.path.join(ROOT, "..", "shared", "fixtures", "official_logits"))
AUGMENT_FIXTURES = os.path.abspath(os.path.join(ROOT, "..", "shared", "fixtures", "augment"))
DIGITS_CSV = os.path.join(ROOT, "Tools", "data", "digits.csv.gz")
EXAMPLES = os.path.join(ROOT, "Tools", "python", "examples")


def pytest_report_header(config):
    import tinyshard
    return f"tinyshard {tinyshard.__version__} from {os.path.dirname(tinyshard.__file__)}"


def require_torch():
    """Import torch, or skip; with TINYSHARD_REQUIRE_TORCH=1 (CI) a missing torch is a failure."""
    if os.environ.get("TINYSHARD_REQUIRE_TORCH") == "1":
        import torch  # noqa: F401  (ImportError fails the test module)
        import timm  # noqa: F401
        return
    pytest.importorskip("torch", reason="torch not installed (Tools/setup-python.sh installs it)")
    pytest.importorskip("timm", reason="timm not installed (Tools/setup-python.sh installs it)")


def swift_binary():
    """The Swift `tinyshard` CLI: $TINYSHARD_BIN (a missing one is then a failure, as CI sets it), else
    <repo>/.build/debug/tinyshard, else the test skips."""
    binary = os.environ.get("TINYSHARD_BIN") or os.path.join(ROOT, ".build", "debug", "tinyshard")
    if not os.access(binary, os.X_OK):
        if os.environ.get("TINYSHARD_BIN"):
            raise RuntimeError(f"TINYSHARD_BIN={binary} is not an executable: build it first (swift build)")
        pytest.skip(f"no Swift tinyshard binary at {binary}: run `swift build` first (or set TINYSHARD_BIN)")
    return binary


def run_swift(binary, *args, check=True, timeout=600):
    result = subprocess.run([binary, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"tinyshard {' '.join(map(str, args))} exited {result.returncode}: {result.stderr}")
    return result


def load_safetensors(path):
    """{name: array} of a safetensors file (uint8 tensors only are needed here)."""
    import json
    import struct
    with open(path, "rb") as f:
        length = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(length))
        data = f.read()
    dtypes = {"U8": np.uint8, "F32": np.float32, "F64": np.float64, "I64": np.int64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(data[start:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return out


def header(**fields):
    """A valid Header with defaults for a small probability shard."""
    base = dict(classes=1000, k=3, records_per_block=4,
                provenance={"dataset_checksum": "00000000"})
    base.update(fields)
    return F.Header(**base).validate()


def random_probabilities(rng, k, sorted_=True):
    """K float values of a random distribution over more than K classes (valid after float16
    rounding), descending when sorted_."""
    p = rng.dirichlet(np.full(k + 3, 0.3))[:k]
    return -np.sort(-p) if sorted_ else rng.permutation(p)


def assemble(h, blocks, records, index_entries=None, footer_blocks=None):
    """Preamble + header + the given block bytes + index + footer, all checksums valid."""
    out = bytearray(F.pack_preamble_and_header(h))
    entries = []
    for block in blocks:
        entries.append((len(out), len(block)))
        out += block
    index_offset = len(out)
    entries = entries if index_entries is None else index_entries
    out += F.pack_index(entries)
    count = len(entries) if footer_blocks is None else footer_blocks
    out += F.with_crc(F.FOOTER_BODY.pack(F.FOOTER_MAGIC, count, index_offset, records,
                                         F.index_length(count)))
    return bytes(out)


def raw_block(first, n, sections, reserved=0, n_field=None, first_field=None):
    """A block from explicit (codec, stored bytes, D) sections, checksums valid."""
    payload = b"".join(F.SECTION_HEADER.pack(codec, b"\0\0\0", len(stored), d) + stored
                       for codec, stored, d in sections)
    body = F.BLOCK_HEADER.pack(F.BLOCK_MAGIC, n if n_field is None else n_field,
                               first if first_field is None else first_field, len(payload),
                               F.crc32(payload), reserved)
    return F.with_crc(body) + payload


def block_of(h, first, ids, indices, values, aug=None):
    """encode_block without the writer's checks: records may break content rules."""
    ids = np.asarray(ids, dtype=np.uint32)
    aug = np.zeros((len(ids), h.aug_bytes), np.uint8) if aug is None else aug
    bits = np.asarray(values, dtype=np.float16).view(np.uint16)
    return encode_block(h, first, ids, aug, np.asarray(indices), bits)


@pytest.fixture
def write_file(tmp_path):
    """write_file(bytes, name='x.tshard') -> path"""
    def write(data, name="x.tshard"):
        path = tmp_path / name
        path.write_bytes(data)
        return str(path)
    return write


def count_block_reads(monkeypatch, module, name):
    """Wrap module.<name> (a grouped block reader: inflate_groups or read_groups) so that every block it
    reads is appended to the returned list as (its shard's layout id, block number)."""
    calls = []
    real = getattr(module, name)

    def counting(groups):
        found = real(groups)
        for (block_reader, blocks), (_, done, _) in zip(groups, found):
            calls.extend((id(block_reader.layout), int(b)) for b in blocks[:done])
        return found

    monkeypatch.setattr(module, name, counting)
    return calls
