#!/usr/bin/env python3
"""Compare a run's logits and greedy tokens against the NumPy reference.

    compare.py A.npy B.npy [--tol 1e-4]

prints {"rel_err": ||a-b||/||b||, "top1_agree": ..., "nan": ...} (B is the reference)
and exits 1 when rel_err > tol, the shapes differ or A holds NaN/inf.

Importable: rel_err(a, b), check_logits(path, ref, tol), check_tokens(model, prompt, got,
ref_ids, tie_tol).

Greedy tokens.  A run that computes in float32 can break an exact or near tie the other
way from the float64 reference, and the two continuations then part.  check_tokens
therefore judges the run's own sequence: one teacher-forced reference pass over
prompt + generated tokens, and at every step the run's token must be the reference argmax,
or within tie_tol * rms(logits row) of it.  Identical sequences report "exact"; accepted
near-ties report where and by how much.
"""
import argparse
import json
import sys

import numpy as np


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    nb = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / (nb if nb > 0 else 1.0))


def check_logits(path, ref, tol=1e-4):
    """(ok, rel_err or None, message) for a .npy written by the run under test."""
    try:
        a = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return False, None, f"{path} was not written"
    except Exception as e:                                  # bad header, truncated, ...
        return False, None, f"{path}: not a readable .npy: {e}"
    if a.dtype != np.dtype("<f4"):
        return False, None, f"{path}: dtype {a.dtype.str}, want <f4 (float32)"
    if a.shape != ref.shape:
        return False, None, f"{path}: shape {list(a.shape)}, want {list(ref.shape)}"
    if not np.isfinite(a).all():
        bad = np.argwhere(~np.isfinite(a))[0]
        return False, None, f"{path}: non-finite value at {list(bad)}"
    r = rel_err(a, ref)
    if r > tol:
        row = np.linalg.norm(a.astype(np.float64) - ref, axis=1) / np.linalg.norm(ref, axis=1)
        worst = int(np.argmax(row))
        top1 = float((a.argmax(-1) == ref.argmax(-1)).mean())
        return False, r, (f"rel-err {r:.3g} > {tol:g} (worst row {worst}: {row[worst]:.3g}; "
                          f"top-1 agreement {top1:.2f})")
    return True, r, ""


def check_tokens(model, prompt, got, ref_ids, tie_tol=1e-3):
    """(ok, status, message): status "exact", "near-tie" or "mismatch"."""
    if list(got) == list(ref_ids):
        return True, "exact", ""
    if len(got) != len(ref_ids):
        return False, "mismatch", f"{len(got)} tokens generated, want {len(ref_ids)}"
    if any(not (0 <= t < model.V) for t in got):
        return False, "mismatch", f"token id out of range [0, {model.V}): {got}"
    T = len(prompt)
    seq = np.concatenate([np.asarray(prompt, dtype=np.int64), np.asarray(got[:-1], dtype=np.int64)])
    rows = model.logits(seq)[T - 1:]
    ties = []
    for i, (row, t) in enumerate(zip(rows, got)):
        best = int(np.argmax(row))
        if t == best:
            continue
        gap = float(row[best] - row[t])
        scale = max(1.0, float(np.sqrt(np.mean(row * row))))
        if gap > tie_tol * scale:
            first = next(k for k in range(len(got)) if got[k] != ref_ids[k])
            return False, "mismatch", (
                f"step {i}: token {t} but the reference argmax is {best} (logit gap {gap:.3g}); "
                f"sequences part at step {first}\n      got {' '.join(map(str, got))}\n"
                f"      ref {' '.join(map(str, ref_ids))}")
        ties.append(f"step {i} gap {gap:.2g}")
    return True, "near-tie", "near-tie accepted at " + ", ".join(ties)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", help="logits under test (.npy)")
    ap.add_argument("b", help="reference logits (.npy)")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args(argv)
    x = np.load(a.a).astype(np.float64)
    r = np.load(a.b).astype(np.float64)
    if x.shape != r.shape:
        print(f"compare: shape mismatch {list(x.shape)} vs {list(r.shape)}", file=sys.stderr)
        return 1
    res = {"rel_err": rel_err(x, r), "top1_agree": float((x.argmax(-1) == r.argmax(-1)).mean()),
           "nan": bool(~np.isfinite(x).all())}
    print(json.dumps(res))
    return 0 if res["rel_err"] <= a.tol and not res["nan"] else 1


if __name__ == "__main__":
    sys.exit(main())
