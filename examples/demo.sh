#!/usr/bin/env bash
# examples/demo.sh — `make demo`: the pipeline end to end on a small random
# Llama checkpoint (real weights arrive with GGUF/tokenizer support).
#   1. make a random-weight Hugging Face checkpoint (bf16, the "tiny" shape)
#   2. modelc check: parse and verify models/llama.mdl against its config
#   3. the IR after the passes (first layer)
#   4. one kernel's LLVM IR, as generated for this CPU
#   5. modelc run: greedy token ids and tokens/s
set -euo pipefail
MODELC=${MODELC:-build/modelc}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=${DEMO_DIR:-build/demo}
mkdir -p "$OUT"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. a random-weight Llama checkpoint (tiny shape, bf16) in $OUT/tiny"
"$PYTHON" tests/ref/make_checkpoint.py --out "$OUT/tiny" --shape tiny --dtype bf16 --seed 42
cat "$OUT/tiny/config.json" | head -20

say "2. modelc check models/llama.mdl --weights $OUT/tiny"
"$MODELC" check models/llama.mdl --weights "$OUT/tiny" && echo "ok: spec parses, binds to config.json, shapes agree"

say "3. IR after the last pass (--print-after=plan), embedding and layer 0"
"$MODELC" emit models/llama.mdl --weights "$OUT/tiny" --emit ir | sed -n '1,34p'
echo "  ... (layer 1 and the head follow)"

say "4. LLVM IR of one kernel (the fused SiLU*up of layer 0), built for: $("$MODELC" --version | sed -n 2p)"
"$MODELC" emit models/llama.mdl --weights "$OUT/tiny" --emit llvm -o "$OUT" 2>/dev/null
awk '/IR node: .*fused/{p=1} p{print; n++} p&&(/^}/||n>=45){exit}' "$OUT/llama.ll"
echo "  ... (the whole module: $OUT/llama.ll; assembly: modelc emit --emit asm)"

say "5. modelc run: 8 prompt tokens, 32 greedy tokens"
"$MODELC" run models/llama.mdl --weights "$OUT/tiny" --tokens 1,15,27,300,7,99,4,250 --max-new 32
