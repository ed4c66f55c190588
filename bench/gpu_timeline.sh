#!/usr/bin/env bash
# bench/gpu_timeline.sh — where one decode step's time goes inside the CUDA
# graph, on the GPU machine (MODELC_TIMELINE=1: each block of each kernel logs
# when it started, passed pdl_wait and ended; the report matches them to the
# launches, runtime/timeline.c):
#
#   device run, carry [.gpu]:  bash bench/gpu_timeline.sh [SHAPES]
#
# For each shape (default "llama-1b", fp16 random weights): a 16-token prompt
# and 64 greedy tokens; the last decode step's timeline into
# $OUT/timeline-SHAPE[-VARIANT].log, its per-kernel summary printed.
# VARIANTS="KEY=V[,KEY=V] ..." runs once more under each environment.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_timeline}
MODELC=${MODELC:-.gpu/modelc}
mkdir -p "$OUT"
sh bench/gpu_unpack.sh
toks() { python3 -c "import random; random.seed($1); print(','.join(str(random.randrange($2)) for _ in range($1)))"; }
for shape in ${1:-llama-1b}; do
  d=/tmp/bench-$shape
  [ -d $d ] || python3 .gpu/hf_llama.py make --config $shape --out $d --dtype float16 --seed 1 --device cuda > /dev/null
  vocab=$(python3 -c "import json; print(json.load(open('$d/config.json'))['vocab_size'])")
  for v in default ${VARIANTS:-}; do
    log=$OUT/timeline-$shape$([ $v = default ] || echo "-$v" | tr ',=' '_-').log
    env $([ $v = default ] || echo "$v" | tr ',' ' ') MODELC_TIMELINE=1 $MODELC run models/llama.mdl --weights $d \
      --target cuda --tokens "$(toks 16 $vocab)" --max-new 64 > /dev/null 2> "$log"
    echo "==== $shape $v (exit $?)"
    grep -E "tok/s" "$log" | tail -1
    grep -E "^modelc: timeline" "$log"
    awk '/^modelc: per kernel/ {on=1} on' "$log"
  done
done
