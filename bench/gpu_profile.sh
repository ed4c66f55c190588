#!/usr/bin/env bash
# bench/gpu_profile.sh — where the CUDA target's time goes, on the GPU machine:
#
#   device run, carry [.gpu]:  bash bench/gpu_profile.sh [SHAPES]
#
# For each shape (default "llama-1b llama-8b", fp16 random weights): decode
# (16-token prompt, 64 new tokens) and prefill (2048 tokens) with --profile,
# each kernel's summed time and launch count, into $OUT/profile-SHAPE-*.log;
# the top of each table is printed.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_profile}
MODELC=${MODELC:-.gpu/modelc}
mkdir -p "$OUT"
sh bench/gpu_unpack.sh
toks() { python3 -c "import random; random.seed($1); print(','.join(str(random.randrange($2)) for _ in range($1)))"; }
for shape in ${1:-llama-1b llama-8b}; do
  d=/tmp/bench-$shape
  [ -d $d ] || python3 .gpu/hf_llama.py make --config $shape --out $d --dtype float16 --seed 1 --device cuda > /dev/null
  vocab=$(python3 -c "import json; print(json.load(open('$d/config.json'))['vocab_size'])")
  for mode in decode prefill; do
    if [ $mode = decode ]; then n=16; new=64; else n=${PREFILL:-2048}; new=2; fi
    log=$OUT/profile-$shape-$mode.log
    $MODELC run models/llama.mdl --weights $d --target cuda --tokens "$(toks $n $vocab)" --max-new $new \
      --warmup --profile > /dev/null 2> "$log"
    echo "==== $shape $mode (exit $?)"
    grep -E "tok/s" "$log" | tail -1
    awk -v m=$mode '$0 ~ "^"m" profile:" {on=1} on' "$log" | head -${TOP:-24}
  done
done
