#!/usr/bin/env bash
# tools/fuzz-prep.sh — fill .fuzz/ (ignored by git, carried to the GPU machine,
# whose 16 cores run long fuzzing campaigns): the libFuzzer targets built by
# make fuzz-build, the libjansson they link (that machine has none), and the
# inputs earlier local runs found (build-fuzz/corpus/).  On that machine:
#
#   device run, carry [.fuzz]:
#     LD_LIBRARY_PATH=.fuzz/lib WORK=$OUT/c sh tests/fuzz/campaign.sh .fuzz 540 4 spec:8192 ...
set -euo pipefail
cd "$(dirname "$0")/.."
make -s fuzz-build
rm -rf .fuzz
mkdir -p .fuzz/lib .fuzz/corpus
grep -qx '/.fuzz/' .git/info/exclude 2>/dev/null || echo '/.fuzz/' >> .git/info/exclude
for t in spec safetensors gguf config tokenizer; do
    cp build-fuzz/fuzz_$t .fuzz/
    [ -d build-fuzz/corpus/$t ] && cp -r build-fuzz/corpus/$t .fuzz/corpus/
done
cp -L "$(ldconfig -p | sed -n 's/.*libjansson.so.4 .*=> //p' | head -1)" .fuzz/lib/
du -sh .fuzz
