#!/usr/bin/env bash
# tools/gpu-prep.sh — fill .gpu/ (ignored by git, carried to the GPU machine):
# a stripped build/modelc and the shared HF reference script.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build/modelc
mkdir -p .gpu
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
strip -o .gpu/modelc build/modelc
install -m 644 ../shared/reference/hf_llama.py .gpu/hf_llama.py
# a small Q4_1 GGUF for bench/gpu_cuda.sh gguf (tests/e2e/test_gguf.py writes it)
kept=$(python3 tests/e2e/test_gguf.py --modelc build/modelc --keep | sed -n 's/^test_gguf: kept //p')
cp "$kept/q4_1-gqa3/q4_1-gqa3.gguf" .gpu/ && rm -rf "$kept"
ls -la .gpu
