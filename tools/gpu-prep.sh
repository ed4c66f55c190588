#!/usr/bin/env bash
# tools/gpu-prep.sh — fill .gpu/ (ignored by git, carried to the GPU machine):
# build/modelc stripped and xz-compressed (.gpu/modelc.xz: 11 MB instead of 44,
# so two fit the 64 MiB a call may carry), the shared HF reference script, and a
# small Q4_1 GGUF.  BASE=REV also builds revision REV (in a git worktree under
# /tmp) as .gpu/modelc-base.xz, to time a change against it in the same run.
# The bench scripts unpack them there (bench/gpu_unpack.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build/modelc
mkdir -p .gpu
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -f .gpu/modelc .gpu/modelc-base .gpu/modelc.xz .gpu/modelc-base.xz
pack() {   # BINARY NAME
    strip -o ".gpu/$2" "$1"
    xz -T2 -6 ".gpu/$2"
}
pack build/modelc modelc
if [ -n "${BASE:-}" ]; then
    wt=/tmp/modelc-base-$(git rev-parse --short "$BASE")
    [ -d "$wt" ] || git worktree add -f "$wt" "$BASE" > /dev/null
    make -C "$wt" -s build/modelc
    pack "$wt/build/modelc" modelc-base
fi
install -m 644 ../shared/reference/hf_llama.py .gpu/hf_llama.py
# a --lib build links libjansson.so.4, which the GPU machine may not have
cp -L "$(ldconfig -p | awk '/libjansson.so.4 .*x86-64/ {print $NF; exit}')" .gpu/libjansson.so.4
# a small Q4_1 GGUF for bench/gpu_cuda.sh gguf (tests/e2e/test_gguf.py writes it)
kept=$(python3 tests/e2e/test_gguf.py --modelc build/modelc --keep | sed -n 's/^test_gguf: kept //p')
cp "$kept/q4_1-gqa3/q4_1-gqa3.gguf" .gpu/ && rm -rf "$kept"
ls -la .gpu
