#!/usr/bin/env python3
"""A stand-in for `modelc run`, for run_e2e.py's self-test (run_e2e.py --self-test).

    fake_modelc.py run SPEC --weights PATH (--tokens 1,2,3) [--max-new N]
                   [--logits-out FILE.npy] [--target cpu]

Behaves as DESIGN.md says `modelc run` does: greedy ids on one stdout line, float32
logits [T, V] of the prompt to --logits-out (written to a temporary name, then renamed),
exit 1 with a message naming the file on bad input, exit 2 on bad usage.  It computes
with the NumPy reference in float32, so its errors are float32-sized like modelc's.
The SPEC is not read.

FAKE_MODELC_FAULT=<name> plants one bug, to show that run_e2e.py notices it:
  noise        logits off by 1e-3 relative          token     one generated id wrong
  no-llama3    rope scaling ignored                  chatter   an extra line on stdout
  f64          logits written as float64             short     one token too few
  decode-pos   decode steps rotate q/k one position too far (prompt logits stay right)
  partial      on a load error, leave a partial --logits-out behind
  usage1       bad usage exits 1 instead of 2
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "ref"))
import llama_ref as ref  # noqa: E402

FAULT = os.environ.get("FAKE_MODELC_FAULT", "")


class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"modelc: error: {message}", file=sys.stderr)
        sys.exit(1 if FAULT == "usage1" else 2)


def main():
    ap = Parser(prog="modelc")
    sp = ap.add_subparsers(dest="cmd", required=True)
    p = sp.add_parser("run")
    p.add_argument("spec")
    p.add_argument("--weights", required=True)
    p.add_argument("--tokens", required=True)
    p.add_argument("--max-new", type=int, default=16)
    p.add_argument("--logits-out")
    p.add_argument("--target", default="cpu", choices=("cpu",))
    a = ap.parse_args()
    try:
        toks = [int(t) for t in a.tokens.split(",")]
    except ValueError:
        ap.error(f"bad --tokens {a.tokens!r}")
    try:
        cfg, w = ref.load_checkpoint(a.weights)
    except ref.CheckpointError as e:
        if FAULT == "partial" and a.logits_out:
            open(a.logits_out, "wb").write(b"\x93NUMPY")
        print(f"modelc: error: {e}", file=sys.stderr)
        return 1
    if FAULT == "no-llama3":
        cfg = {k: v for k, v in cfg.items() if k not in ("rope_scaling", "rope_parameters")}
        cfg.setdefault("rope_theta", 10000.0)
    try:
        m = ref.Model(cfg, w, "f32")
        print(f"modelc: fake run of {a.spec}, {len(toks)} prompt tokens", file=sys.stderr)
        if FAULT == "decode-pos":
            rope = ref.apply_rope
            ref.apply_rope = lambda x, pos, inv: rope(x, pos + (len(pos) == 1), inv)
        ids, logits = m.generate(toks, a.max_new)
    except (ref.CheckpointError, ValueError) as e:
        print(f"modelc: error: {a.weights}: {e}", file=sys.stderr)
        return 1
    logits = logits.astype(np.float32)
    if FAULT == "noise":
        rng = np.random.default_rng(0)
        logits = logits + (1e-3 * np.std(logits) * rng.standard_normal(logits.shape)).astype(np.float32)
    if FAULT == "token" and len(ids) > 7:
        ids[7] = (ids[7] + 1) % m.V
    if FAULT == "short":
        ids = ids[:-1]
    if a.logits_out:
        tmp = f"{a.logits_out}.tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            np.save(f, logits.astype(np.float64) if FAULT == "f64" else logits)
        os.replace(tmp, a.logits_out)
    if FAULT == "chatter":
        print("generated:")
    print(" ".join(map(str, ids)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
