#!/usr/bin/env bash
# Installs what building and testing TinyShard needs on Debian (run as root, or it uses sudo):
# zlib (format), oneDNN (TinyViT kernels), libpng and libturbojpeg (image import; the Python package's
# JPEG store reader loads libturbojpeg too), Open MPI (distributed teacher pass and training under mpirun),
# zstd (benchmark), dataset-fashion-mnist (the IDX files `distill-demo --dataset fashion-mnist` imports), numpy and pytest for the system python3 (the benchmark's numpy baseline without the venv).
# The Python package, torch and timm go into .venv with Tools/setup-python.sh (CI runs both).
#
#   Tools/setup.sh [--arm64-check]
#
# --arm64-check also installs what Tools/check_arm64_kernels.sh needs (an arm64 C library for clang to
# link against, and qemu-user to run the result): CI runs that check; building does not need it.
set -euo pipefail
packages=(zlib1g-dev libdnnl-dev libpng-dev libturbojpeg0-dev libopenmpi-dev openmpi-bin zstd dataset-fashion-mnist)
if [ "${1:-}" = "--arm64-check" ]; then
    packages+=(qemu-user libc6-dev-arm64-cross libgcc-12-dev-arm64-cross)
fi
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
python3 -c "import numpy, pytest" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check numpy pytest
