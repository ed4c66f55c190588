#!/usr/bin/env bash
# bench/gpu_check.sh — on the GPU machine: modelc (built here and carried)
# against Hugging Face transformers on checkpoints made there; the CPU target
# by default, the GPU with MODELC_FLAGS="--target cuda".
#
#   device run, carry [build, .gpu]:  bash bench/gpu_check.sh [SHAPES] [DTYPES]
#
# .gpu/hf_llama.py is a copy of ../shared/reference/hf_llama.py (shared/ does not
# travel).  For each shape and dtype: make a random-weight checkpoint, take HF's
# float32 logits on the GPU for a random prompt and its greedy continuation,
# run modelc on the same weights, compare (rel-err, top-1 agreement, tokens).
# Logs and .npy files go under $OUT (or /tmp/gpu_check).
set -uo pipefail
SHAPES=${1:-tiny smollm2-135m llama-1b}
DTYPES=${2:-float16 bfloat16}
OUT=${OUT:-/tmp/gpu_check}
HF=.gpu/hf_llama.py
MODELC=${MODELC:-build/modelc}
MODELC_FLAGS=${MODELC_FLAGS:-}      # e.g. "--target cuda"
PROMPT=${PROMPT:-12}                # prompt tokens (the CUDA target picks kernels by it: 12, 100, 600 differ)
mkdir -p "$OUT"
work=$(mktemp -d)
export PYTHONUNBUFFERED=1
threads=$(nproc)
echo "host: $(nproc) CPUs; $($MODELC --version | tr '\n' ' ')"
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, torch.cuda.get_device_name(0))'

# HF float32 logits for every position and the greedy continuation, on the GPU
cat > "$work/hf_ref.py" <<'PY'
import sys, json, numpy as np, torch
sys.path.insert(0, ".gpu")
import hf_llama
model_dir, tokens, out, new = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
m = hf_llama.load(model_dir, "cuda", "float32")
ids = torch.tensor([[int(t) for t in tokens.split(",")]], device="cuda")
with torch.no_grad():
    np.save(out, m(ids).logits[0].float().cpu().numpy())
    g = m.generate(ids, max_new_tokens=new, min_new_tokens=new, do_sample=False)
print(" ".join(str(int(t)) for t in g[0, ids.shape[1]:]))
PY

printf '%-14s %-9s %5s %12s %8s %10s %10s %12s\n' shape dtype T rel_err top1 tok16 tok64 modelc_s | tee "$OUT/table.txt"
for shape in $SHAPES; do
  for dt in $DTYPES; do
    d="$work/$shape-$dt"
    python3 "$HF" make --config "$shape" --out "$d" --dtype "$dt" --seed 11 --device cuda > "$OUT/make-$shape-$dt.log" 2>&1 || { echo "make $shape $dt failed"; cat "$OUT/make-$shape-$dt.log"; continue; }
    vocab=$(python3 -c "import json; print(json.load(open('$d/config.json'))['vocab_size'])")
    toks=$(python3 -c "import random; random.seed(5); print(','.join(str(random.randrange($vocab)) for _ in range($PROMPT)))")
    new=64
    hf_toks=$(python3 "$work/hf_ref.py" "$d" "$toks" "$OUT/hf-$shape-$dt.npy" $new 2> "$OUT/hf-$shape-$dt.log") || { echo "HF failed"; tail "$OUT/hf-$shape-$dt.log"; continue; }
    t0=$(date +%s.%N)
    mc_toks=$($MODELC run models/llama.mdl --weights "$d" --tokens "$toks" --max-new $new --threads "$threads" $MODELC_FLAGS \
              --logits-out "$OUT/mc-$shape-$dt.npy" 2> "$OUT/mc-$shape-$dt.log") || { echo "modelc failed"; tail "$OUT/mc-$shape-$dt.log"; continue; }
    t1=$(date +%s.%N)
    cmp=$(python3 "$HF" compare "$OUT/mc-$shape-$dt.npy" "$OUT/hf-$shape-$dt.npy")
    agree=$(python3 - "$hf_toks" "$mc_toks" <<'PY'
import sys
a, b = sys.argv[1].split(), sys.argv[2].split()
first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
print(f"{'yes' if first >= 16 else 'no@' + str(first)} {sum(x == y for x, y in zip(a, b))}/{len(a)}")
PY
)
    python3 - "$shape" "$dt" "$cmp" "$agree" "$t0" "$t1" "$PROMPT" <<'PY' | tee -a "$OUT/table.txt"
import sys, json
shape, dt, cmp, agree, t0, t1, T = sys.argv[1:]
c = json.loads(cmp); a16, a64 = agree.split()
print(f"{shape:<14} {dt:<9} {T:>5} {c['rel_err']:>12.3e} {c['top1_agree']:>8.3f} {a16:>10} {a64:>10} {float(t1)-float(t0):>12.1f}")
PY
    grep "modelc: compile" "$OUT/mc-$shape-$dt.log" | sed "s/^/    $shape $dt: /"
    rm -rf "$d"
  done
done
rm -rf "$work"
