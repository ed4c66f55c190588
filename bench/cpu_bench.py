#!/usr/bin/env python3
"""make bench-cpu: CPU prefill and decode tokens/s for the SmolLM2-135M shape,
beside the memory-bandwidth ceiling measured on this machine in the same run.

Decode reads every weight once per token (the tied head included), so
  ceiling tok/s = read bandwidth / weight bytes read per token.
Random weights (tests/ref/make_checkpoint.py), f16 and f32.  Prints a
markdown table for bench/RESULTS.md.

  bench/cpu_bench.py [--modelc build/modelc] [--membw build/bench/membw]
                     [--shape smollm2-135m] [--dtypes f16,f32] [--prompt 64] [--new 65] [--runs 3]
"""
import argparse, json, os, platform, random, re, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "ref"))


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    d = os.path.join(base, "modelc", "bench")
    os.makedirs(d, exist_ok=True)
    return d


def checkpoint(shape, dtype):
    out = os.path.join(cache_dir(), f"{shape}-{dtype}")
    if not os.path.exists(os.path.join(out, "config.json")):
        print(f"bench: making {shape} {dtype} checkpoint in {out} ...", file=sys.stderr)
        subprocess.run([sys.executable, os.path.join(ROOT, "tests", "ref", "make_checkpoint.py"), "--out", out,
                        "--shape", shape, "--dtype", dtype, "--seed", "7"], check=True, stdout=subprocess.DEVNULL)
    return out


def weight_bytes_per_token(ckpt):
    """Bytes of weights a decode step reads: every tensor, but an untied
    embedding only contributes the one row it gathers."""
    cfg = json.load(open(os.path.join(ckpt, "config.json")))
    total = 0
    for f in os.listdir(ckpt):
        if not f.endswith(".safetensors"):
            continue
        with open(os.path.join(ckpt, f), "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            hdr = json.loads(fh.read(n))
        for name, t in hdr.items():
            if name == "__metadata__":
                continue
            size = t["data_offsets"][1] - t["data_offsets"][0]
            if name == "model.embed_tokens.weight" and not cfg.get("tie_word_embeddings", False):
                size //= t["shape"][0]
            total += size
    return total


def run_modelc(modelc, spec, ckpt, vocab, prompt, new, threads):
    toks = ",".join(str(random.randrange(vocab)) for _ in range(prompt))
    cmd = [modelc, "run", spec, "--weights", ckpt, "--tokens", toks, "--max-new", str(new)]
    if threads:
        cmd += ["--threads", str(threads)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        sys.exit(f"bench: modelc failed: {p.stderr.strip()}")
    m = re.search(r"prompt (\d+) tokens ([\d.]+) ms .* (\d+) decode steps ([\d.]+) ms", p.stderr)
    if not m:
        sys.exit(f"bench: no timing line in: {p.stderr.strip()}")
    return int(m[1]) / (float(m[2]) / 1e3), int(m[3]) / (float(m[4]) / 1e3)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modelc", default=os.path.join(ROOT, "build", "modelc"))
    ap.add_argument("--membw", default=os.path.join(ROOT, "build", "bench", "membw"))
    ap.add_argument("--shape", default="smollm2-135m")
    ap.add_argument("--dtypes", default="f16,f32")
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--new", type=int, default=65)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    nproc = os.cpu_count()
    threads = a.threads or nproc
    bw = json.loads(subprocess.run([a.membw, str(threads), "1024"], capture_output=True, text=True, check=True).stdout)
    read_bw = bw["read_GBps"] * 1e9
    spec = os.path.join(ROOT, "models", "llama.mdl")
    rows = []
    for dt in a.dtypes.split(","):
        ckpt = checkpoint(a.shape, dt)
        vocab = json.load(open(os.path.join(ckpt, "config.json")))["vocab_size"]
        wb = weight_bytes_per_token(ckpt)
        res = [run_modelc(a.modelc, spec, ckpt, vocab, a.prompt, a.new, a.threads) for _ in range(a.runs)]
        pre, dec = median([r[0] for r in res]), median([r[1] for r in res])
        ceil = read_bw / wb
        rows.append((dt, wb / 1e6, pre, dec, ceil, 100 * dec / ceil, dec * wb / 1e9))
    host = subprocess.run([a.modelc, "--version"], capture_output=True, text=True).stdout.split("\n")[1]
    print(f"\n{time.strftime('%Y-%m-%d')} · {platform.node()} · {nproc} CPUs · {host}")
    print(f"read bandwidth {bw['read_GBps']:.2f} GB/s, copy {bw['copy_GBps']:.2f} GB/s ({threads} threads, build/bench/membw)")
    print(f"shape {a.shape}, prompt {a.prompt} tokens, {a.new - 1} decode steps, median of {a.runs} runs\n")
    print("| weights | MB read/token | prefill tok/s | decode tok/s | ceiling tok/s | % of ceiling | achieved GB/s |")
    print("|---|---|---|---|---|---|---|")
    for dt, mb, pre, dec, ceil, pct, gbs in rows:
        print(f"| {dt} | {mb:.0f} | {pre:.1f} | {dec:.1f} | {ceil:.1f} | {pct:.0f}% | {gbs:.2f} |")


if __name__ == "__main__":
    main()
