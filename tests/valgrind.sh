#!/usr/bin/env bash
# tests/valgrind.sh — `make test-valgrind`: the CPU end-to-end paths under
# valgrind memcheck (errors and definite leaks fail the run):
#   - modelc run on a tiny random checkpoint in f32, f16 and bf16 (LLVM JIT
#     included), the logits bit-identical to the same run without valgrind (within
#     1e-5 where valgrind's CPU lacks features of this one: other vector widths);
#   - modelc tokenize on a tokenizer.json;
#   - the hostile-input corpus (tests/e2e/test_hostile.py), every case under valgrind.
# A few minutes: the JIT runs about 50x slower under valgrind.
set -uo pipefail
BUILD=${1:-build}
MODELC=$BUILD/modelc
VG="valgrind --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite -q"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0 pass=0
check() {   # name, command...
  local name=$1; shift
  if "$@" > "$work/out" 2> "$work/err"; then
    pass=$((pass + 1)); echo "PASS  $name"
  else
    fail=$((fail + 1)); echo "FAIL  $name (exit $?)"; tail -20 "$work/err"
  fi
}
# valgrind's CPU has no AVX-512: where this one does, the JIT picks other kernels under valgrind
host=$($MODELC --version | sed -n 2p)
vg_host=$(valgrind -q $MODELC --version 2>/dev/null | sed -n 2p)
for dt in f32 f16 bf16; do
  python3 tests/ref/make_checkpoint.py --out "$work/$dt" --shape tiny --dtype $dt --seed 7 > /dev/null
  $MODELC run models/llama.mdl --weights "$work/$dt" --tokens 5,9,2,7 --max-new 4 --threads 2 \
    --logits-out "$work/$dt-plain.npy" > /dev/null 2>&1
  check "run tiny $dt under valgrind" $VG $MODELC run models/llama.mdl --weights "$work/$dt" --tokens 5,9,2,7 \
    --max-new 4 --threads 2 --logits-out "$work/$dt-vg.npy"
  if [ "$host" = "$vg_host" ]; then
    check "run tiny $dt: logits identical without valgrind" cmp "$work/$dt-plain.npy" "$work/$dt-vg.npy"
  else   # other vector widths sum in another order
    check "run tiny $dt: logits within 1e-5 of the run without valgrind (its CPU: $vg_host)" python3 -c "
import sys, numpy as np
a, b = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64)
e = np.linalg.norm(a - b) / np.linalg.norm(a)
print('rel-err', e)
sys.exit(0 if a.shape == b.shape and e <= 1e-5 else 1)" "$work/$dt-plain.npy" "$work/$dt-vg.npy"
  fi
done
cp tests/fuzz/corpus/tokenizer/smollm2.json "$work/f32/tokenizer.json"
check "tokenize under valgrind" $VG $MODELC tokenize --weights "$work/f32" --prompt "Hello, world: ünïcödé 12345"
check "hostile corpus under valgrind" python3 tests/e2e/test_hostile.py --modelc $MODELC --wrap "$VG"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
