#!/usr/bin/env bash
# bench/gpu_cuda.sh — the CUDA target on the GPU machine, in one call:
#
#   device run, carry [.gpu]:  bash bench/gpu_cuda.sh [STEPS]
#
# .gpu/ holds a stripped build/modelc and a copy of ../shared/reference/hf_llama.py
# (tools/gpu-prep.sh puts them there).  STEPS (default "check sanitize bench"):
#   check     logits and greedy tokens vs HF float32 (bench/gpu_check.sh), tiny,
#             SmolLM2-135M and Llama-3.2-1B shapes, f16 and bf16
#   check-long  the same for 100- and 600-token prompts (the larger GEMM tiles; from 512
#             tokens the wide f16 GEMM)
#   sanitize-long  memcheck and racecheck on the tiny model with a 600-token prompt
#   sanitize  compute-sanitizer memcheck and racecheck on the tiny model (an 8-token
#             prompt: the decode kernels; a 72-token one: the tensor-core GEMMs and the
#             FlashAttention-2 tiles) and the SmolLM2 shape (12 tokens: the flat GEMM with K
#             split over blocks; then GEMVs with rows split over warps), and an absurd
#             KV-cache request that must fail cleanly
#   gguf      a Q4_1 GGUF (.gpu/q4_1-gqa3.gguf, written by tests/e2e/test_gguf.py) on
#             the GPU: logits vs the CPU's run of the same file with --dequantize
#   exe       `modelc build --target cuda` on the tiny shape and the SmolLM2 one: the
#             executable's logits and tokens against `modelc run --target cuda` (bit-identical);
#             then examples/embed against a `--lib --target cuda` library: its tokens against
#             modelc run's
#   ncu       each decode kernel's own time and DRAM bytes from Nsight Compute, Llama-3.2-1B
#             shape (bench/gpu_ncu.sh), for .gpu/modelc and, when there, .gpu/modelc-base
#   ab        each of VARIANTS="KEY=V[,KEY=V] ..." against the default on the tiny and
#             SmolLM2 shapes (f16, 8-token prompt, 16 greedy tokens): exit status, the
#             tokens, and the logits' relative difference -- a quick look before check
#   bench     decode tok/s (1B, 8B shapes, fp16) and prefill 2048 beside HF and
#             the measured copy bandwidth (bench/gpu_bench.py), the GEMM table vs cuBLAS;
#             VARIANTS="KEY=V[,KEY=V] ..." decodes once more under each environment
# Logs go under $OUT (or /tmp/gpu_cuda).
set -uo pipefail
STEPS=${1:-check sanitize bench}
OUT=${OUT:-/tmp/gpu_cuda}
export OUT MODELC=${MODELC:-.gpu/modelc} PYTHONUNBUFFERED=1
mkdir -p "$OUT"
sh bench/gpu_unpack.sh
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
$MODELC --version | head -1
for step in $STEPS; do
  echo "==== $step"
  case $step in
  check)
    MODELC_FLAGS="--target cuda" bash bench/gpu_check.sh "${SHAPES:-tiny smollm2-135m llama-1b}" "${DTYPES:-float16 bfloat16}"
    ;;
  check-long)   # the tensor-core tiles of longer prompts: 100 tokens (M tiles of 64/128), 600 (T >= 512)
    # LONG_DTYPES=float16 checks only the wide GEMM's dtype, LONG_100=0 skips the 100-token prompts
    [ "${LONG_100:-1}" = 0 ] ||
      PROMPT=100 MODELC_FLAGS="--target cuda" bash bench/gpu_check.sh smollm2-135m "${LONG_DTYPES:-float16 bfloat16}"
    PROMPT=600 MODELC_FLAGS="--target cuda" bash bench/gpu_check.sh "smollm2-135m llama-1b" "${LONG_DTYPES:-float16 bfloat16}"
    ;;
  sanitize-long)   # the wide f16 GEMM of T >= 512 (partial M, N and K tiles on the tiny shape) under the sanitizer
    d=/tmp/san-tiny
    python3 .gpu/hf_llama.py make --config tiny --out $d --dtype float16 --seed 3 > /dev/null
    for tool in memcheck racecheck; do
      compute-sanitizer --tool $tool --error-exitcode 9 $MODELC run models/llama.mdl --weights $d --target cuda \
        --tokens "$(python3 -c "print(','.join(str(i * 7 % 509 + 3) for i in range(600)))")" --max-new 2 > "$OUT/san-$tool-600.log" 2>&1
      echo "compute-sanitizer $tool, 600-token prompt: exit $?"
      grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Invalid|Race" "$OUT/san-$tool-600.log" | head -5
    done
    ;;
  sanitize)
    d=/tmp/san-tiny
    python3 .gpu/hf_llama.py make --config tiny --out $d --dtype float16 --seed 3 > /dev/null
    long=$(seq -s, 3 74)
    for toks in 5,6,7,8,9,10,11,12 "$long"; do
      n=$(echo "$toks" | tr ',' '\n' | wc -l)
      for tool in memcheck racecheck; do
        compute-sanitizer --tool $tool --error-exitcode 9 $MODELC run models/llama.mdl --weights $d --target cuda \
          --tokens "$toks" --max-new 8 > "$OUT/san-$tool-$n.log" 2>&1
        echo "compute-sanitizer $tool, $n-token prompt: exit $? ($(grep -c -E 'ERROR SUMMARY: 0 errors|RACECHECK SUMMARY: 0 hazards' "$OUT/san-$tool-$n.log") clean summaries)"
        grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Invalid|Race" "$OUT/san-$tool-$n.log" | head -5
      done
    done
    # the SmolLM2 shape: a 12-token prompt runs the flat GEMM with K split over 2 blocks per tile,
    # which the tiny model's (K = 128) does not; decode's GEMVs split rows over 2 warps (K >= 1024)
    python3 .gpu/hf_llama.py make --config smollm2-135m --out /tmp/san-sm --dtype float16 --seed 3 > /dev/null
    for tool in memcheck racecheck; do
      compute-sanitizer --tool $tool --error-exitcode 9 $MODELC run models/llama.mdl --weights /tmp/san-sm --target cuda \
        --tokens 5,6,7,8,9,10,11,12,13,14,15,16 --max-new 4 > "$OUT/san-$tool-sm.log" 2>&1
      echo "compute-sanitizer $tool, SmolLM2 shape, 12-token prompt: exit $?"
      grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Invalid|Race" "$OUT/san-$tool-sm.log" | head -5
    done
    # 16M positions of SmolLM2's KV cache (46 KB each) are far more than the GPU holds
    $MODELC run models/llama.mdl --weights /tmp/san-sm --target cuda --tokens 1,2 --ctx 16777216 > "$OUT/oom.out" 2> "$OUT/oom.log"
    echo "absurd --ctx: exit $? -- $(tail -1 "$OUT/oom.log") -- stdout bytes: $(wc -c < "$OUT/oom.out")"
    ;;
  gguf)
    g=.gpu/q4_1-gqa3.gguf
    $MODELC run models/llama.mdl --weights $g --target cuda --tokens 3,1,4,1,5,9,2,6 --max-new 16 \
      --logits-out /tmp/gguf-gpu.npy > "$OUT/gguf-gpu.out" 2> "$OUT/gguf-gpu.log"
    echo "GPU run of $g: exit $? -- $(tail -1 "$OUT/gguf-gpu.log")"
    $MODELC run models/llama.mdl --weights $g --dequantize --tokens 3,1,4,1,5,9,2,6 --max-new 16 \
      --logits-out /tmp/gguf-cpu.npy > "$OUT/gguf-cpu.out" 2>/dev/null
    python3 -c "import numpy as np; a=np.load('/tmp/gguf-gpu.npy').astype(float); b=np.load('/tmp/gguf-cpu.npy').astype(float); print('GPU vs CPU logits rel-err %.3e' % (np.linalg.norm(a-b)/np.linalg.norm(b)))"
    echo "tokens GPU: $(cat "$OUT/gguf-gpu.out")"
    echo "tokens CPU: $(cat "$OUT/gguf-cpu.out")"
    ;;
  exe)
    for shape in tiny smollm2-135m; do
      d=/tmp/exe-$shape
      python3 .gpu/hf_llama.py make --config $shape --out $d --dtype bfloat16 --seed 5 > /dev/null
      $MODELC build models/llama.mdl --weights $d --target cuda -o /tmp/exe-$shape.bin 2> "$OUT/exe-build-$shape.log"
      echo "build --target cuda, $shape: exit $? -- $(tail -1 "$OUT/exe-build-$shape.log" | cut -c1-160)"
      $MODELC run models/llama.mdl --weights $d --target cuda --tokens 7,8,9,10,11,12 --max-new 16 \
        --logits-out /tmp/exe-run.npy > /tmp/exe-run.out 2> "$OUT/exe-run-$shape.log"
      /tmp/exe-$shape.bin --weights $d --tokens 7,8,9,10,11,12 --max-new 16 --logits-out /tmp/exe-exe.npy \
        > /tmp/exe-exe.out 2> "$OUT/exe-exe-$shape.log"
      echo "executable exit $?; tokens $(cmp -s /tmp/exe-run.out /tmp/exe-exe.out && echo identical || echo DIFFER);" \
           "logits $(cmp -s /tmp/exe-run.npy /tmp/exe-exe.npy && echo bit-identical || echo DIFFER)"
    done
    # the C API over a --lib --target cuda library: examples/embed's program (libjansson.so.4 from .gpu/)
    L=/tmp/embed-cuda
    mkdir -p $L
    export LIBRARY_PATH=$PWD/.gpu LD_LIBRARY_PATH=$PWD/.gpu
    $MODELC build models/llama.mdl --weights /tmp/exe-tiny --target cuda --lib -o $L/libmodel.so 2> "$OUT/lib-build.log" &&
      cc -O2 -I runtime -I $L -o $L/generate examples/embed/generate.c -L$L -lmodel -Wl,-rpath,$L 2>> "$OUT/lib-build.log"
    echo "build --lib --target cuda + examples/embed: exit $? -- $(tail -1 "$OUT/lib-build.log" | cut -c1-160)"
    $MODELC run models/llama.mdl --weights /tmp/exe-tiny --target cuda --tokens 7,8,9,10,11,12 --max-new 16 --quiet \
      > /tmp/lib-run.out 2> "$OUT/lib-run.log"
    $L/generate /tmp/exe-tiny 7 8 9 10 11 12 > /tmp/lib-gen.out 2> "$OUT/lib-gen.log"
    echo "library: generate exit $?; tokens $(cmp -s /tmp/lib-run.out /tmp/lib-gen.out && echo identical || echo DIFFER)" \
         "($(head -c 80 /tmp/lib-gen.out))"
    ;;
  ab)
    for shape in tiny smollm2-135m; do
      d=/tmp/ab-$shape
      python3 .gpu/hf_llama.py make --config $shape --out $d --dtype float16 --seed 3 > /dev/null
      i=0
      for v in "" ${VARIANTS:-}; do
        env $(echo "$v" | tr ',' ' ') timeout 120 $MODELC run models/llama.mdl --weights $d --target cuda \
          --tokens 5,6,7,8,9,10,11,12 --max-new 16 --logits-out /tmp/ab-$i.npy > /tmp/ab-$i.out 2> "$OUT/ab-$shape-$i.log"
        echo "$shape ${v:-default}: exit $? -- tokens $(cat /tmp/ab-$i.out)"
        [ $i = 0 ] || python3 -c "import numpy as np; a=np.load('/tmp/ab-0.npy').astype(float); b=np.load('/tmp/ab-$i.npy').astype(float); print('  logits vs default: rel-diff %.3e' % (np.linalg.norm(a-b)/np.linalg.norm(a)))"
        i=$((i + 1))
      done
    done
    ;;
  ncu)
    OUT=$OUT/ncu bash bench/gpu_ncu.sh llama-1b
    [ -x .gpu/modelc-base ] && MODELC=.gpu/modelc-base OUT=$OUT/ncu-base bash bench/gpu_ncu.sh llama-1b
    ;;
  bench)
    python3 bench/gpu_bench.py --modelc $MODELC --out "$OUT" --variants "${VARIANTS:-}" ${BENCH_ARGS:-}
    ;;
  esac
done
