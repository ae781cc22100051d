"""python -m tinyshard: exit codes and output formats."""

import json
import os

import numpy as np
import pytest

from tinyshard.__main__ import main
from tinyshard.writer import ShardWriter


@pytest.fixture
def shard(tmp_path):
    path = str(tmp_path / "s.tshard")
    with ShardWriter(path, 100, 2, records_per_block=2) as writer:
        for i in range(3):
            writer.append(i, [i, i + 1], [0.5, 0.25])
    return path


def test_verify_exit_codes(shard, tmp_path, capsys):
    assert main(["verify", shard]) == 0
    data = bytearray(open(shard, "rb").read())
    data[-40] ^= 1
    damaged = tmp_path / "d.tshard"
    damaged.write_bytes(data)
    assert main(["verify", str(damaged), "--json"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert [json.loads(line)["code"] for line in lines] == ["bad-index"]
    assert main(["verify", str(tmp_path / "missing.tshard")]) == 2
    assert main(["verify"]) == 2
    assert main(["frobnicate", shard]) == 2


def test_verify_dataset_exit_codes_match_swift(tmp_path):
    """Unreadable (2) only when the manifest itself cannot be read; a shard it names that is missing is a
    problem found (1), as `tinyshard verify` (Swift) reports it."""
    from test_dataset import make_dataset
    folder = str(tmp_path / "ds")
    os.makedirs(folder)
    make_dataset(folder)
    assert main(["verify", folder]) == 0
    os.remove(os.path.join(folder, "epoch0001-rank001.tshard"))
    assert main(["verify", folder]) == 1
    os.remove(os.path.join(folder, "manifest.json"))
    assert main(["verify", folder]) == 2


def test_dump_and_inspect(shard, capsys):
    assert main(["dump", shard]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["sample_id"] for r in records] == [0, 1, 2]
    assert records[1]["indices"] == [1, 2] and records[1]["values"] == [0.5, 0.25]
    assert records[1]["value_bits"] == [int(np.float16(0.5).view(np.uint16)),
                                        int(np.float16(0.25).view(np.uint16))]
    assert main(["inspect", shard]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["records"] == 3 and summary["blocks"] == 2
    assert summary["bytes"] == os.path.getsize(shard)


def test_dump_of_damaged_file_fails_cleanly(tmp_path):
    path = tmp_path / "x.tshard"
    path.write_bytes(b"\x89TSH\r\n\x1a\n" + bytes(30))
    assert main(["dump", str(path)]) == 1
