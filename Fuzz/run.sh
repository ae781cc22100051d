#!/usr/bin/env bash
# Coverage-guided fuzzing of every target with libFuzzer (+ AddressSanitizer), each for a short budget.
# Fails on any crash, timeout (-timeout per input) or memory-limit hit (-rss_limit_mb), as libFuzzer
# exits non-zero on each. Usage: Fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
# The build goes to .build-fuzz (git-ignored); flags are on the command line, never in Package.swift.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(shard keys manifest imagestore npy safetensors official)

# lld: gold cannot link libFuzzer's runtime with SwiftPM's renamed entry point (internal error).
nice swift build -c release --product tinyshard-fuzz --scratch-path .build-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DLIBFUZZER -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld \
    >"${TMPDIR:-/tmp}/tinyshard-fuzz-build.log" 2>&1 || { tail -40 "${TMPDIR:-/tmp}/tinyshard-fuzz-build.log"; exit 1; }
bin=.build-fuzz/release/tinyshard-fuzz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for target in "${targets[@]}"; do
    corpus="$work/$target"
    mkdir -p "$corpus"
    case "$target" in
        shard) cp Spec/vectors/*.tshard "$corpus"/ ;;
        keys) cp Spec/vectors/*.tsk "$corpus"/ ;;
        manifest) cp Spec/vectors/*.manifest "$corpus"/ ;;
        *) cp Fuzz/corpus/"$target"/* "$corpus"/ ;;
    esac
    echo "== fuzz $target for ${seconds}s"
    # -timeout: seconds per input; -rss_limit_mb: the process's memory; -max_len: inputs up to 64 KiB.
    "$bin" libfuzzer "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="fuzz-$target-" "$corpus" 2>"$work/$target.log" || {
        tail -40 "$work/$target.log"
        echo "fuzz $target FAILED (artifact: fuzz-$target-*)"
        exit 1
    }
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb|stat::new_units_added" "$work/$target.log" | tr '\n' ' '
    echo
done
