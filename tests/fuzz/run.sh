#!/bin/sh
# tests/fuzz/run.sh — run libFuzzer targets for a while each and print a table.
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS TARGET:MAX_LEN...
#
# Each target BUILD_DIR/fuzz_TARGET runs SECONDS seconds from the seeds in
# tests/fuzz/corpus/TARGET/ (read-only) plus its working corpus
# BUILD_DIR/corpus/TARGET/ (where new inputs go), with tests/fuzz/TARGET.dict
# when there is one.  A crash, leak, UB report, timeout or out-of-memory stops
# that target; the input is saved under BUILD_DIR/crashes/TARGET/ and the log
# is BUILD_DIR/logs/TARGET.log.  Exit status 1 when any target found
# something (or did not run), else 0.  Run from the repository root.
#
# FUZZ_FLAGS adds libFuzzer flags (e.g. FUZZ_FLAGS=-jobs=2).
set -u
B=$1
S=$2
shift 2

# UBSan: a stack with each report (libFuzzer then stops at the first: -fno-sanitize-recover)
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export UBSAN_OPTIONS

status=0
rows=""
for spec in "$@"; do
    t=${spec%%:*}
    len=${spec#*:}
    bin=$B/fuzz_$t
    mkdir -p "$B/corpus/$t" "$B/crashes/$t" "$B/logs"
    log=$B/logs/$t.log
    dict=""
    [ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
    work=$(mktemp -d "${FUZZ_SHM:-/dev/shm}/modelc-fuzz-$t.XXXXXX" 2>/dev/null || mktemp -d)
    before=$(ls "$B/crashes/$t")
    start=$(date +%s.%N)
    echo "  FUZZ    $t (${S}s, -max_len=$len)"
    # the outer timeout is a backstop: libFuzzer stops itself after -max_total_time
    FUZZ_WORKDIR=$work FUZZ_ROOT=$(pwd) timeout -k 10 $((S + 120)) "$bin" \
        -max_total_time="$S" -max_len="$len" -timeout=25 -rss_limit_mb=2560 -print_final_stats=1 \
        -artifact_prefix="$B/crashes/$t/" $dict ${FUZZ_FLAGS:-} \
        "$B/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    end=$(date +%s.%N)
    rm -rf "$work"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -1)
    [ -n "$execs" ] || execs=0
    secs=$(awk "BEGIN { printf \"%.1f\", $end - $start }")
    eps=$(awk "BEGIN { printf \"%d\", $execs / ($secs + 0.001) }")
    cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\) corp: \([0-9]*\).*/\1 \2 \3/p' "$log" | tail -1)
    cov_e=$(echo "$cov" | cut -d' ' -f1); ft=$(echo "$cov" | cut -d' ' -f2); corp=$(echo "$cov" | cut -d' ' -f3)
    # what this run saved (slow-unit-* files are reports, not failures)
    new=$(ls "$B/crashes/$t" | grep -vxF "$before" | grep -E '^(crash|leak|timeout|oom)-')
    if [ $rc -eq 0 ] && [ -z "$new" ]; then
        result=ok
    else
        status=1
        kind=$(sed -n 's/^==[0-9]*==ERROR: \([A-Za-z]*\): \([-a-zA-Z0-9]*\).*/\1 \2/p; s/^SUMMARY: UndefinedBehaviorSanitizer: \([-a-z]*\).*/UBSan \1/p; s/^==[0-9]*== ERROR: libFuzzer: \([-a-z]*\).*/libFuzzer \1/p; s/.*fuzz check failed: .*/fuzz check failed/p' "$log" | head -1)
        [ -n "$kind" ] || kind="exit status $rc"
        result="FOUND: $kind: $(echo $new | tr ' ' '\n' | sed "s|^|$B/crashes/$t/|" | tr '\n' ' ')"
    fi
    rows="$rows$(printf '%-12s %8s %10s %8s %6s %6s %6s  %s' "$t" "$(printf '%.0f' "$secs")" "$execs" "$eps" "$cov_e" "$ft" "$corp" "$result")
"
done

echo
printf '%-12s %8s %10s %8s %6s %6s %6s  %s\n' target seconds execs exec/s cov ft corpus result
printf '%s' "$rows"
if [ $status -ne 0 ]; then
    echo
    echo "fuzz: findings above; reproduce with: $B/fuzz_TARGET CRASH_FILE (logs in $B/logs/)"
fi
exit $status
