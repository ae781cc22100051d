#!/usr/bin/env bash
# Builds Examples/EmbeddedReader the way an outside project builds against TinyShard — SwiftPM resolves
# `.package(url:, from: "0.1.0")` to a tagged release, which refuses unsafe flags — and runs it.
#
# The release is a temporary clone of this repository's committed HEAD with every tag removed and
# 0.1.0 put on HEAD; the example's Package.swift is copied beside it with its URL pointed at the clone.
# CI runs this script (.ci/run). Exit status: 0 when the consumer built and its checks passed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/tinyshard-embedded.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then
    echo "note: uncommitted changes are not part of the release this builds against (it clones HEAD)"
fi
git clone --quiet --no-hardlinks "$root" "$work/tinyshard"
git -C "$work/tinyshard" tag -l | while read -r tag; do git -C "$work/tinyshard" tag -d "$tag" >/dev/null; done
git -C "$work/tinyshard" tag 0.1.0
echo "== release 0.1.0 = $(git -C "$work/tinyshard" log -1 --format='%h %s' | cut -c1-90)"

mkdir "$work/consumer"
cp -R "$here/Package.swift" "$here/Sources" "$work/consumer/"
sed "s|https://git.example.com/tinyshard.git|file://$work/tinyshard|" "$here/Package.swift" > "$work/consumer/Package.swift"
grep -q "file://$work/tinyshard" "$work/consumer/Package.swift" || { echo "run.sh: could not point Package.swift at the clone" >&2; exit 1; }

echo "== swift build (the consumer, no flags)"
if ! (cd "$work/consumer" && swift build > "$work/build.log" 2>&1); then
    grep -E "error" "$work/build.log" | head -20 || tail -20 "$work/build.log"
    echo "run.sh: the consumer did not build against TinyShard 0.1.0" >&2
    exit 1
fi
tail -1 "$work/build.log"

echo "== embedded-reader"
"$work/consumer/.build/debug/embedded-reader"
