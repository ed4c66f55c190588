#!/usr/bin/env bash
# bench/gpu_ncu.sh — each decode kernel's own time and DRAM bytes, from Nsight
# Compute's counters, on the GPU machine:
#
#   device run, carry [.gpu]:  bash bench/gpu_ncu.sh [SHAPE]
#
# SHAPE (default llama-1b, fp16 random weights): a 16-token prompt and 3 new
# tokens under ncu (kernels serialized, clocks left alone), then a table per
# kernel name: launches, mean µs, DRAM bytes read per launch and the bandwidth
# that gives, achieved occupancy, grid, registers; and the decode step's sum of
# kernel times beside the step time of a normal run (the rest is launch gaps).
# The raw CSV goes to $OUT/ncu-SHAPE.csv.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_ncu}
MODELC=${MODELC:-.gpu/modelc}
shape=${1:-llama-1b}
mkdir -p "$OUT"
sh bench/gpu_unpack.sh
d=/tmp/bench-$shape
[ -d $d ] || python3 .gpu/hf_llama.py make --config $shape --out $d --dtype float16 --seed 1 --device cuda > /dev/null
vocab=$(python3 -c "import json; print(json.load(open('$d/config.json'))['vocab_size'])")
toks=$(python3 -c "import random; random.seed(16); print(','.join(str(random.randrange($vocab)) for _ in range(16)))")
$MODELC run models/llama.mdl --weights $d --target cuda --tokens "$toks" --max-new 256 --warmup \
    > /dev/null 2> "$OUT/plain-$shape.log"
echo "plain run: $(grep -o 'generated.*' "$OUT/plain-$shape.log" | tail -1)"
ncu --clock-control none --csv --print-units base --page raw \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,sm__warps_active.avg.pct_of_peak_sustained_active,launch__grid_size,launch__registers_per_thread \
    $MODELC run models/llama.mdl --weights $d --target cuda --tokens "$toks" --max-new 3 \
    > "$OUT/ncu-$shape.csv" 2> "$OUT/ncu-$shape.log"
echo "ncu: exit $?, $(grep -c '^"[0-9]' "$OUT/ncu-$shape.csv") kernels profiled"
python3 - "$OUT/ncu-$shape.csv" <<'EOF'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if r]
head = next(i for i, r in enumerate(rows) if "Kernel Name" in r)
cols = rows[head]
ix = {c: cols.index(c) for c in cols}
def num(r, c):
    try:
        return float(r[ix[c]].replace(",", ""))
    except (ValueError, KeyError):
        return 0.0
agg = collections.OrderedDict()
for r in rows[head + 1:]:
    if len(r) != len(cols) or not r[ix["ID"]].isdigit():
        continue
    a = agg.setdefault(r[ix["Kernel Name"]], [0, 0.0, 0.0, 0.0, 0, 0])
    a[0] += 1
    a[1] += num(r, "gpu__time_duration.sum")
    a[2] += num(r, "dram__bytes_read.sum")
    a[3] += num(r, "sm__warps_active.avg.pct_of_peak_sustained_active")
    a[4] = int(num(r, "launch__grid_size"))
    a[5] = int(num(r, "launch__registers_per_thread"))
print(f"{'kernel':<52} {'n':>4} {'us/launch':>9} {'MB read':>8} {'GB/s':>6} {'occ%':>5} {'grid':>6} {'regs':>4}")
total = 0.0
for k, (n, t, b, o, g, rg) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
    us = t / n / 1e3
    total += t
    print(f"{k[:52]:<52} {n:>4} {us:>9.2f} {b / n / 1e6:>8.2f} {b / t if t else 0:>6.0f} {o / n:>5.1f} {g:>6} {rg:>4}")
print(f"sum of kernel times {total / 1e6:.3f} ms over the run")
EOF
