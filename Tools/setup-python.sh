#!/usr/bin/env bash
# Creates the project's Python environment: a venv at .venv (git-ignored; TINYSHARD_VENV overrides the
# path) holding the `tinyshard` package from Tools/python with its torch and test extras: numpy, Pillow,
# torch + torchvision + timm from PyPI (the CUDA wheel, which runs on CPU; ~5 GB, ~1.5 min), pytest.
# The package is installed as a normal (non-editable) install, reinstalled on every run, so the tests
# run against what `pip install ./Tools/python[torch]` gives a user. .ci/run and the README use it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${TINYSHARD_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install "$root/Tools/python[torch,test]"
# Reinstall the package itself (its version does not change when the sources do).
"${pip[@]}" install --no-deps --force-reinstall "$root/Tools/python"
"$venv/bin/python" -c "import tinyshard, tinyshard.torch, torch, timm; print('tinyshard', tinyshard.__version__, 'torch', torch.__version__, 'timm', timm.__version__, 'in', '$venv')"
