#!/usr/bin/env python3
"""End-to-end: `modelc run` against the NumPy reference (tests/ref/llama_ref.py).

    run_e2e.py --modelc build/modelc [--cases quick|all] [--only PATTERN] [--seed S]
               [--keep DIR] [--jobs N] [--max-new N] [--timeout SEC] [--list]
    run_e2e.py --self-test

For each case of tests/e2e/cases.py: write a random-weight checkpoint (fresh seed each
run unless --seed), draw a random prompt of 5..12 tokens, run

    modelc run models/llama.mdl --weights DIR --tokens 3,1,4,... --max-new 32 --logits-out OUT.npy

from the repository root, and check that it exits 0, prints exactly one stdout line of
32 ids, writes float32 logits [T, V] within rel-err 1e-4 of the float64 reference on the
same stored weights, and that its greedy ids are the reference's (a float32 run may break
a near-tie the other way: see tests/ref/compare.py).  Then the error paths: a truncated
safetensors file (whole or one shard) must give exit 1, a message naming the file and no
--logits-out file; an unknown flag must give exit 2.

Prints one line per case and ends with `N passed, N failed` alone on a line; exit 1 if
any failed.  A failure prints the command and the --seed/--only that replay it.

--self-test runs the harness against tests/e2e/fake_modelc.py (a float32 NumPy modelc):
the quick set must pass, and each bug the fake can plant must be caught.
"""
import argparse
import fnmatch
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "ref"))
sys.path.insert(0, HERE)
import cases as cases_mod  # noqa: E402
import compare  # noqa: E402
import llama_ref as ref  # noqa: E402
import make_checkpoint as mc  # noqa: E402

TOL = 1e-4


class Result:
    def __init__(self, name, seed):
        self.name, self.seed = name, seed
        self.ok = True
        self.problems = []
        self.cols = ""
        self.secs = 0.0
        self.cmd = None

    def fail(self, msg):
        self.ok = False
        self.problems.append(msg)


def case_seed(master, name):
    return (master * 1000003 + zlib.crc32(name.encode())) % (2 ** 32)


def modelc_argv(modelc):
    return [sys.executable, modelc] if modelc.endswith(".py") else [modelc]


def run_modelc(args, argv, env=None):
    """(returncode, stdout, stderr, seconds); returncode None on timeout."""
    t0 = time.perf_counter()
    try:
        p = subprocess.run(modelc_argv(args.modelc) + argv, cwd=ROOT, capture_output=True,
                           text=True, timeout=args.timeout, env=env)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = None, e.stdout or "", e.stderr or ""
        out = out.decode(errors="replace") if isinstance(out, bytes) else out
        err = err.decode(errors="replace") if isinstance(err, bytes) else err
    except OSError as e:
        rc, out, err = 127, "", f"cannot run {args.modelc}: {e}"
    return rc, out, err, time.perf_counter() - t0


def shell_line(argv):
    return " ".join(shlex.quote(a) for a in argv)


def tail(s, n=15):
    lines = s.rstrip("\n").splitlines()
    cut = lines[-n:]
    return ("\n".join(("      " + x) for x in cut)) if cut else "      (empty)"


def run_case(c, master, args, work, env=None):
    seed = case_seed(master, c.name)
    r = Result(c.name, seed)
    d = os.path.join(work, c.name)
    mdir = os.path.join(d, "model")
    out = os.path.join(d, "logits.npy")
    shutil.rmtree(d, ignore_errors=True)      # --keep may reuse a directory
    try:
        mc.make(mdir, c.shape, c.dtype, seed, c.shards, c.style, c.metadata)
        t0 = time.perf_counter()
        m = ref.load(mdir)                    # read back from disk: what modelc reads
        rng = np.random.default_rng(seed ^ 0x5EED5EED)
        prompt = [int(t) for t in rng.integers(0, m.V, size=int(rng.integers(5, 13)))]
        ref_ids, ref_logits = m.generate(prompt, args.max_new)
        tref = time.perf_counter() - t0
    except Exception as e:                    # a harness bug, not modelc's
        r.fail(f"harness error making the case: {type(e).__name__}: {e}")
        r.cols = "(not run)"
        return r
    if args.keep:
        np.save(os.path.join(d, "ref_logits.npy"), ref_logits.astype(np.float32))
        with open(os.path.join(d, "ref_tokens.txt"), "w") as f:
            f.write(" ".join(map(str, ref_ids)) + "\n")
    argv = ["run", c.spec, "--weights", mdir, "--tokens", ",".join(map(str, prompt)),
            "--max-new", str(args.max_new), "--logits-out", out]
    r.cmd = modelc_argv(args.modelc) + argv
    if args.keep:
        with open(os.path.join(d, "cmd.txt"), "w") as f:
            f.write(f"cd {shlex.quote(ROOT)} && {shell_line(r.cmd)}\n")
    rc, so, se, r.secs = run_modelc(args, argv, env)
    rel, tok = None, "-"
    if rc != 0:
        r.fail(f"exit status {rc if rc is not None else 'timeout after %ds' % args.timeout}, want 0;"
               f" stderr:\n{tail(se)}")
    else:
        lines = so.splitlines()
        ids = None
        if len(lines) != 1:
            r.fail(f"stdout has {len(lines)} lines, want 1:\n{tail(so)}")
        else:
            try:
                ids = [int(t) for t in lines[0].split()]
            except ValueError:
                r.fail(f"stdout is not space-separated ids: {lines[0][:200]!r}")
        ok, rel, msg = compare.check_logits(out, ref_logits, TOL)
        if not ok:
            r.fail(msg)
        if ids is not None:
            ok, tok, msg = compare.check_tokens(m, prompt, ids, ref_ids)
            if not ok:
                r.fail(msg)
            elif msg:
                r.problems.append("note: " + msg)
    rels = f"{rel:.2e}" if rel is not None else "   -    "
    r.cols = f"T={len(prompt):<2} rel-err {rels}  tokens {tok:<8} modelc {r.secs:5.2f}s  ref {tref:4.2f}s"
    return r


def run_negative(name, master, args, work, env=None):
    seed = case_seed(master, name)
    r = Result(name, seed)
    d = os.path.join(work, name)
    mdir = os.path.join(d, "model")
    out = os.path.join(d, "logits.npy")
    toks = "3,1,4,1,5"
    shutil.rmtree(d, ignore_errors=True)
    want = dict((n, rc) for n, _, rc in cases_mod.NEGATIVE)[name]
    if name == "neg-truncated":
        mc.make(mdir, "tiny", "f32", seed)
        victim = os.path.join(mdir, "model.safetensors")
    elif name == "neg-truncated-shard":
        mc.make(mdir, "tiny", "f16", seed, shards=3)
        victim = os.path.join(mdir, "model-00002-of-00003.safetensors")
    else:
        mc.make(mdir, "tiny", "f32", seed)
        victim = None
    if victim:
        with open(victim, "r+b") as f:
            f.truncate(os.path.getsize(victim) - 100)
    argv = ["run", cases_mod.LLAMA_SPEC, "--weights", mdir, "--tokens", toks, "--max-new", "4",
            "--logits-out", out]
    if name == "neg-unknown-flag":
        argv.insert(2, "--no-such-flag")
    r.cmd = modelc_argv(args.modelc) + argv
    rc, so, se, r.secs = run_modelc(args, argv, env)
    if rc != want:
        r.fail(f"exit status {rc}, want {want}; stderr:\n{tail(se)}")
    if victim and os.path.basename(victim) not in se:
        r.fail(f"stderr does not name {os.path.basename(victim)}:\n{tail(se)}")
    if os.path.exists(out):
        r.fail(f"{out} exists after a failed run")
    if rc != 0 and not se.strip():
        r.fail("no message on stderr")
    r.cols = f"exit {rc} (want {want})  {' ' * 24}modelc {r.secs:5.2f}s"
    return r


def select(args):
    cs = cases_mod.SETS[args.cases]
    negs = [n for n, _, _ in cases_mod.NEGATIVE]
    if args.only:
        pats = args.only.split(",")
        pick = lambda n: any(fnmatch.fnmatch(n, p) or p == n for p in pats)
        allc = {c.name: c for c in cases_mod.ALL}
        cs = [allc[n] for n in allc if pick(n)]
        negs = [n for n in negs if pick(n)]
    return cs, negs


def run_all(args, master, env=None, quiet=False):
    """Run the selected cases; returns (passed, failed, results)."""
    cs, negs = select(args)
    work = args.keep or tempfile.mkdtemp(prefix="modelc-e2e-")
    os.makedirs(work, exist_ok=True)
    jobs = [(run_case, c) for c in cs] + [(run_negative, n) for n in negs]
    results = []

    def one(job):
        fn, what = job
        try:
            return fn(what, master, args, work, env)
        except Exception as e:                # a harness bug: report it, keep going
            name = getattr(what, "name", what)
            r = Result(name, case_seed(master, name))
            r.fail(f"harness error: {type(e).__name__}: {e}")
            r.cols = "(not run)"
            return r

    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
            for r in ex.map(one, jobs):
                results.append(r)
                if quiet:
                    continue
                print(f"{'PASS' if r.ok else 'FAIL'}  {r.name:<26} {r.cols}", flush=True)
                for p in r.problems:
                    print("    " + p.replace("\n", "\n    "), flush=True)
                if not r.ok:
                    if r.cmd:
                        print(f"    command: {shell_line(r.cmd)}", flush=True)
                    print(f"    replay:  {sys.argv[0]} --modelc {args.modelc} --seed {master} "
                          f"--only {r.name} --keep /tmp/e2e-{r.name}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    passed = sum(r.ok for r in results)
    return passed, len(results) - passed, results


class _StubModel:
    """check_tokens' view of a model: V and logits(seq), with scripted rows."""
    V = 10
    family = "llama"

    def __init__(self, rows):
        self.rows = rows

    def logits(self, seq):
        return np.array(self.rows[:len(seq)], dtype=np.float64)


def self_test(args):
    """The harness against fake_modelc.py: passes clean, catches each planted bug."""
    args.modelc = os.path.join(HERE, "fake_modelc.py")
    master = args.seed
    fails = 0
    print(f"self-test: quick set against {os.path.relpath(args.modelc, ROOT)} (seed {master})")
    args.cases, args.only = "quick", None
    p, f, _ = run_all(args, master)
    if f:
        print(f"self-test: FAIL: {f} case(s) failed against the fake")
        fails += 1
    plants = [("noise", "tiny-f32-old"), ("token", "gqa3-f32-new"), ("decode-pos", "tiny-f32-old"),
              ("decode-pos", "odd-bf16-old"), ("no-llama3", "hd48-f16-old"),
              ("no-llama3", "gqa3-f32-new"), ("chatter", "mlp-f32"), ("f64", "odd-bf16-old"),
              ("short", "mistral-bf16-new-nometa"), ("partial", "neg-truncated"),
              ("usage1", "neg-unknown-flag")]
    for fault, name in plants:
        args.only = name
        env = dict(os.environ, FAKE_MODELC_FAULT=fault)
        p, f, res = run_all(args, master, env, quiet=True)
        caught = f == 1 and p == 0
        why = res[0].problems[0].splitlines()[0] if res and res[0].problems else ""
        print(f"{'ok  ' if caught else 'FAIL'}  planted {fault:<10} in {name:<24} {'caught: ' + why if caught else 'NOT caught'}")
        fails += not caught
    # near-tie handling of check_tokens, on scripted logits rows
    prompt = [1, 2]
    rows = [[0] * 10, [0, 0, 0, 5.0, 5.0 - 1e-5, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 7.0, 1.0, 0, 0]]
    m = _StubModel(rows)
    for got, ref_ids, want in [([3, 6], [3, 6], "exact"), ([4, 6], [3, 6], "near-tie"),
                               ([3, 7], [3, 6], "mismatch"), ([3], [3, 6], "mismatch")]:
        ok, st, _ = compare.check_tokens(m, prompt, got, ref_ids)
        good = st == want and ok == (want != "mismatch")
        print(f"{'ok  ' if good else 'FAIL'}  check_tokens {got} vs {ref_ids}: {st}")
        fails += not good
    print(f"self-test: {'ok' if not fails else f'{fails} problem(s)'}")
    return fails


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modelc", default="build/modelc", help="the modelc binary (default build/modelc)")
    ap.add_argument("--cases", choices=sorted(cases_mod.SETS), default="quick")
    ap.add_argument("--only", help="comma-separated case names or globs (from any set)")
    ap.add_argument("--seed", type=int, help="master seed (default: fresh each run)")
    ap.add_argument("--keep", metavar="DIR", help="keep checkpoints, outputs and reference results in DIR")
    ap.add_argument("--jobs", "-j", type=int, default=1, help="cases run at once")
    ap.add_argument("--max-new", type=int, default=32)
    ap.add_argument("--timeout", type=int, default=300, help="seconds per modelc run")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--self-test", action="store_true", help="test this harness against fake_modelc.py")
    args = ap.parse_args(argv)
    if args.seed is None:
        args.seed = secrets.randbits(31)
    if args.list:
        cs, negs = select(args)
        for c in cs:
            print(f"{c.name:<26} {c.spec:<17} shape {c.shape:<8} {c.dtype:<5} style {c.style or '-':<7}"
                  f" shards {c.shards} metadata {'yes' if c.metadata else 'no'}")
        for n, what, rc in cases_mod.NEGATIVE:
            if n in negs:
                print(f"{n:<26} {what}: exit {rc}")
        return 0
    if args.self_test:
        t0 = time.perf_counter()
        fails = self_test(args)
        print(f"self-test took {time.perf_counter() - t0:.1f}s")
        return 1 if fails else 0
    if not args.modelc.endswith(".py"):
        args.modelc = os.path.abspath(args.modelc)
    print(f"e2e: {args.cases} set, seed {args.seed}, modelc {args.modelc}", flush=True)
    if not (os.path.isfile(args.modelc) if args.modelc.endswith(".py") else os.access(args.modelc, os.X_OK)):
        print(f"e2e: error: {args.modelc} is not an executable (build it first: make)")
        print("0 passed, 1 failed")
        return 1
    t0 = time.perf_counter()
    passed, failed, _ = run_all(args, args.seed)
    print(f"e2e: {time.perf_counter() - t0:.1f}s" + (f"; replay with --seed {args.seed}" if failed else ""))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
