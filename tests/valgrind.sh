#!/usr/bin/env bash
# tests/valgrind.sh — `make test-valgrind`: the CPU end-to-end paths under
# valgrind memcheck (errors and definite leaks fail the run):
#   - modelc run on a tiny random checkpoint in f32, f16 and bf16 (LLVM JIT
#     included), the logits bit-identical to the same run without valgrind;
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
for dt in f32 f16 bf16; do
  python3 tests/ref/make_checkpoint.py --out "$work/$dt" --shape tiny --dtype $dt --seed 7 > /dev/null
  $MODELC run models/llama.mdl --weights "$work/$dt" --tokens 5,9,2,7 --max-new 4 --threads 2 \
    --logits-out "$work/$dt-plain.npy" > /dev/null 2>&1
  check "run tiny $dt under valgrind" $VG $MODELC run models/llama.mdl --weights "$work/$dt" --tokens 5,9,2,7 \
    --max-new 4 --threads 2 --logits-out "$work/$dt-vg.npy"
  check "run tiny $dt: logits identical without valgrind" cmp "$work/$dt-plain.npy" "$work/$dt-vg.npy"
done
cp tests/fuzz/corpus/tokenizer/smollm2.json "$work/f32/tokenizer.json"
check "tokenize under valgrind" $VG $MODELC tokenize --weights "$work/f32" --prompt "Hello, world: ünïcödé 12345"
check "hostile corpus under valgrind" python3 tests/e2e/test_hostile.py --modelc $MODELC --wrap "$VG"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
