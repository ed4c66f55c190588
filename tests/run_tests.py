#!/usr/bin/env python3
"""The `make test` runner: cmocka unit-test binaries, then the end-to-end comparisons.

    run_tests.py --build build [--unit-only] [--e2e-cases quick|all] [--timeout SEC] BIN...

Runs each cmocka binary, streaming its output, and adds up the counts of its summary
lines (`[  PASSED  ] N test(s).` and `[  FAILED  ] N test(s), listed below:`, one pair
per test group).  A binary that dies on a signal, times out, or exits nonzero without
reporting a failure counts as one failed test more.  Unless --unit-only, then runs
tests/e2e/run_e2e.py --modelc BUILD/modelc (quick set), tests/e2e/test_build.py,
tests/e2e/test_gguf.py and tests/e2e/test_hostile.py (the hostile-input corpus), and adds
their `N passed, N failed`.

Ends with `N passed, N failed` alone on a line; exits 1 if anything failed.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

PASSED_RE = re.compile(r"^\[\s*PASSED\s*\]\s+(\d+)\s+test\(s\)\.")
FAILED_RE = re.compile(r"^\[\s*FAILED\s*\]\s+(\d+)\s+test\(s\), listed below:")
TOTAL_RE = re.compile(r"^(\d+) passed, (\d+) failed\s*$")


def stream(argv, timeout, env=None, cwd=None):
    """Run argv, echo its merged stdout/stderr line by line; (status, lines).
    status: exit code, -signal for a signal, or 'timeout'."""
    try:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                             cwd=cwd, start_new_session=True)
    except OSError as e:
        return f"cannot run: {e.strerror}", []
    lines = []
    timed_out = []

    def kill():
        timed_out.append(True)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    t = threading.Timer(timeout, kill)
    t.start()
    try:
        for raw in p.stdout:
            line = raw.decode("utf-8", errors="replace")
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line.rstrip("\n"))
        p.wait()
    finally:
        t.cancel()
    return ("timeout" if timed_out else p.returncode), lines


def describe(status):
    if status == "timeout":
        return "timed out"
    if isinstance(status, str):
        return status
    if isinstance(status, int) and status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


def run_unit(binary, timeout):
    """(passed, failed) for one cmocka binary."""
    env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="STDOUT")
    name = binary
    print(f"==> {name}", flush=True)
    status, lines = stream([os.path.abspath(binary)], timeout, env=env, cwd=ROOT)
    passed = failed = 0
    summaries = 0
    for ln in lines:
        m = PASSED_RE.match(ln)
        if m:
            passed += int(m.group(1))
            summaries += 1
        m = FAILED_RE.match(ln)
        if m:
            failed += int(m.group(1))
    if not isinstance(status, int) or status < 0:
        print(f"run_tests: {name}: {describe(status)}", flush=True)
        failed += 1
    elif status != 0 and failed == 0:
        why = "without a cmocka summary" if summaries == 0 else "though its summary shows no failure"
        print(f"run_tests: {name}: {describe(status)} {why}", flush=True)
        failed += 1
    elif summaries == 0 and failed == 0:
        print(f"run_tests: {name}: exited 0 but printed no cmocka summary", flush=True)
        failed += 1
    return passed, failed


def run_e2e(build, cases, timeout, script="run_e2e.py"):
    modelc = os.path.join(build, "modelc")
    argv = [sys.executable, os.path.join(HERE, "e2e", script), "--modelc", modelc]
    if script == "run_e2e.py":
        argv += ["--cases", cases]
    print(f"==> tests/e2e/{' '.join(argv[2:])}", flush=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    status, lines = stream(argv, timeout, env=env)
    for ln in reversed(lines):
        m = TOTAL_RE.match(ln)
        if m:
            p, f = int(m.group(1)), int(m.group(2))
            if status != 0 and f == 0:
                print(f"run_tests: e2e: {describe(status)} with no failure counted", flush=True)
                f += 1
            return p, f
    print(f"run_tests: e2e: {describe(status)} without a summary line", flush=True)
    return 0, 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--unit-only", action="store_true")
    ap.add_argument("--e2e-cases", choices=("quick", "all"), default="quick")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per test binary, and for the e2e run")
    ap.add_argument("binaries", nargs="*")
    a = ap.parse_args(argv)
    passed = failed = 0
    for b in a.binaries:
        p, f = run_unit(b, a.timeout)
        passed += p
        failed += f
    if not a.unit_only:
        for script in ("run_e2e.py", "test_build.py", "test_gguf.py", "test_hostile.py"):
            p, f = run_e2e(a.build, a.e2e_cases, a.timeout, script)
            passed += p
            failed += f
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
