#!/bin/sh
# tests/fuzz/campaign.sh — a long fuzzing campaign on many cores: every target
# at once, each with several libFuzzer jobs sharing one working corpus, and a
# table of the executions summed over the jobs.
#
#   tests/fuzz/campaign.sh BIN_DIR SECONDS JOBS TARGET:MAX_LEN[:JOBS]...
#
# (a target's own JOBS overrides the default JOBS: give the slow ones more cores)
# BIN_DIR holds fuzz_TARGET binaries (make fuzz-build puts them in build-fuzz/;
# tools/fuzz-prep.sh copies them, with libjansson, into .fuzz/ for the GPU
# machine's 16 cores).  Seeds come from tests/fuzz/corpus/TARGET/ and, when
# there, BIN_DIR/corpus/TARGET/ (what earlier runs found; both read-only);
# new inputs go to $WORK/corpus/TARGET/, findings to $WORK/crashes/TARGET/,
# and each job's log to $WORK/logs/TARGET/fuzz-N.log ($WORK defaults to
# /tmp/modelc-campaign).  Each job writes its inputs under its own mkdtemp
# directory (FUZZ_WORKDIR is unset: jobs must not share one).  The table and
# the first lines of any finding's log go to stdout; exit status 1 when a
# target found something or did not run.  Run from the repository root.
set -u
B=$1
S=$2
J=$3
shift 3
WORK=${WORK:-/tmp/modelc-campaign}
unset FUZZ_WORKDIR
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export UBSAN_OPTIONS
root=$(pwd)
mkdir -p "$WORK"

pids=""
jobs_of() {   # TARGET:MAX_LEN[:JOBS] -> JOBS
    case $1 in *:*:*) echo "${1##*:}" ;; *) echo "$J" ;; esac
}
for spec in "$@"; do
    t=${spec%%:*}
    len=${spec#*:}
    len=${len%%:*}
    jobs=$(jobs_of "$spec")
    [ -x "$B/fuzz_$t" ] || { echo "campaign: $B/fuzz_$t: no such fuzz target" >&2; exit 1; }
    mkdir -p "$WORK/corpus/$t" "$WORK/crashes/$t" "$WORK/logs/$t"
    rm -f "$WORK/logs/$t"/fuzz-*.log   # an earlier campaign's would be counted again
    dict=""
    [ -f "tests/fuzz/$t.dict" ] && dict="-dict=$root/tests/fuzz/$t.dict"
    seeds="$root/tests/fuzz/corpus/$t"
    [ -d "$B/corpus/$t" ] && seeds="$seeds $root/$B/corpus/$t"
    echo "  FUZZ    $t: $jobs jobs x ${S}s, -max_len=$len"
    # libFuzzer's -jobs writes fuzz-N.log into the current directory
    (cd "$WORK/logs/$t" && FUZZ_ROOT=$root timeout -k 10 $((S + 300)) "$root/$B/fuzz_$t" \
        -jobs="$jobs" -workers="$jobs" -max_total_time="$S" -max_len="$len" -timeout=25 -rss_limit_mb=2560 \
        -print_final_stats=1 -artifact_prefix="$WORK/crashes/$t/" $dict \
        "$WORK/corpus/$t" $seeds > driver.log 2>&1) &
    pids="$pids $!"
done
for p in $pids; do
    wait "$p"
done

status=0
echo
printf '%-12s %5s %8s %12s %10s %8s  %s\n' target jobs seconds execs exec/s corpus result
for spec in "$@"; do
    t=${spec%%:*}
    jobs=$(jobs_of "$spec")
    logs=$(ls "$WORK"/logs/"$t"/fuzz-*.log 2>/dev/null)
    execs=0
    for l in $logs; do
        n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$l" | tail -1)
        # a job stopped by a finding prints no final stats: its last status line
        [ -n "$n" ] || n=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$l" | tail -1)
        execs=$((execs + ${n:-0}))
    done
    corp=$(ls "$WORK/corpus/$t" | wc -l)
    found=$(ls "$WORK/crashes/$t" | grep -E '^(crash|leak|timeout|oom)-')
    nlogs=$(echo "$logs" | grep -c .)
    if [ -z "$found" ] && [ "$nlogs" -eq "$jobs" ] && [ "$execs" -gt 0 ]; then
        result=ok
    else
        status=1
        result="FOUND or failed: $(echo $found | tr '\n' ' ') ($nlogs of $jobs job logs)"
    fi
    printf '%-12s %5s %8s %12s %10s %8s  %s\n' "$t" "$jobs" "$S" "$execs" "$((execs / S))" "$corp" "$result"
done
if [ $status -ne 0 ]; then
    for spec in "$@"; do
        t=${spec%%:*}
        for l in "$WORK"/logs/"$t"/fuzz-*.log; do
            grep -q -E '^==[0-9]+==ERROR|fuzz check failed|SUMMARY: UndefinedBehaviorSanitizer' "$l" 2>/dev/null || continue
            echo "---- $l"
            grep -E -A25 '^==[0-9]+==ERROR|fuzz check failed|runtime error' "$l" | head -40
        done
    done
fi
exit $status
