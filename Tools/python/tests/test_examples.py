"""The example scripts run (or, without their optional dependency, exit with a message)."""

import importlib.util
import os
import subprocess
import sys

from tinyshard.verify import verify_shard

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_torch_example(tmp_path):
    out = str(tmp_path / "teacher.tshard")
    run = subprocess.run([sys.executable, os.path.join(HERE, "example_torch_writer.py"), out],
                         capture_output=True, text=True, timeout=120)
    if importlib.util.find_spec("torch") is None:
        assert run.returncode != 0 and "needs PyTorch" in run.stderr
    else:
        assert run.returncode == 0, run.stderr
        assert verify_shard(out) == []
