#!/usr/bin/env bash
# Checks that TinyShard's C kernels (CFormatKernels, CTensorKernels) give the same bits on arm64 as on
# x86-64: builds Tools/kernel_parity/kernel_parity.c with clang for this machine and for
# aarch64-linux-gnu, runs it on the AVX2 path, the portable path, an unoptimised build, and (arm64) under
# qemu-aarch64, and compares the per-kernel hashes. Exit 0 when all agree.
#
# Needs Debian's libc6-dev-arm64-cross, libgcc-12-dev-arm64-cross and qemu-user: `Tools/setup.sh
# --arm64-check` installs them (CI does; building TinyShard does not need them).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in clang qemu-aarch64; do
    command -v "$tool" >/dev/null || { echo "check_arm64_kernels: $tool not found (Tools/setup.sh --arm64-check installs it)" >&2; exit 2; }
done
out="$(mktemp -d "${TMPDIR:-/tmp}/kernel-parity.XXXXXX")"
trap 'rm -rf "$out"' EXIT
includes=(-ISources/CKernelDispatch/include -ISources/CFormatKernels/include -ISources/CTensorKernels/include)
sources=(Sources/CKernelDispatch/*.c Sources/CFormatKernels/*.c Sources/CTensorKernels/*.c Tools/kernel_parity/kernel_parity.c)

clang -O2 -Wall -Werror "${includes[@]}" "${sources[@]}" -o "$out/native"
clang -O0 -Wall -Werror "${includes[@]}" "${sources[@]}" -o "$out/native-O0"
clang --target=aarch64-linux-gnu -fuse-ld=lld -static -O2 -Wall -Werror "${includes[@]}" "${sources[@]}" -o "$out/arm64"
file_type=$(od -An -tx1 -j18 -N2 "$out/arm64" | tr -d ' ')   # ELF e_machine: b700 = AArch64
[ "$file_type" = "b700" ] || { echo "check_arm64_kernels: the cross build is not an AArch64 binary" >&2; exit 1; }

env -u TINYSHARD_SIMD "$out/native" > "$out/dispatched.txt"
TINYSHARD_SIMD=portable "$out/native" > "$out/portable.txt"
TINYSHARD_SIMD=portable "$out/native-O0" > "$out/portable-O0.txt"
qemu-aarch64 "$out/arm64" > "$out/arm64.txt"

status=0
for run in portable portable-O0 arm64; do
    if cmp -s "$out/dispatched.txt" "$out/$run.txt"; then
        echo "same: $(uname -m) dispatched and $run ($(wc -l < "$out/$run.txt") kernels)"
    else
        echo "DIFFERENT: $(uname -m) dispatched vs $run:"; diff "$out/dispatched.txt" "$out/$run.txt" || true
        status=1
    fi
done
exit $status
