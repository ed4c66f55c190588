#!/usr/bin/env python3
"""bench/gpu_bench.py — modelc's CUDA target against HF transformers and cuBLAS,
on the GPU machine, in one run (called by bench/gpu_cuda.sh).

For each shape (default llama-1b llama-8b, fp16): a random-weight checkpoint,
then in the same run
  - the copy bandwidth (torch device-to-device copy, bytes read + written) and
    the decode ceiling it implies: bandwidth / weight bytes read per token;
  - modelc decode tok/s at batch 1 (16-token prompt, --max-new tokens, greedy,
    after --warmup) and prefill tok/s for a --prefill-token prompt; the same for
    --base (default .gpu/modelc-base when there: an earlier build, from
    BASE=REV tools/gpu-prep.sh), so a change is timed beside what it changes;
  - HF eager decode and prefill (hf_llama.py bench);
  - with --variants, decode once more under each given environment (tuning knobs);
  - for --gemm-shape (default llama-1b): every linear's kernel time per launch
    at M = 1, 16, 128, 2048 (modelc --profile) beside torch.nn.functional.linear
    (cuBLAS) on the same shapes in fp16.
Prints the tables last; JSON and logs under --out.
"""
import argparse, json, os, re, subprocess, sys, time

HF = ".gpu/hf_llama.py"


def sh(cmd, log=None, check=True, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **env) if env else None)
    if log:
        with open(log, "w") as f:
            f.write(" ".join(cmd) + "\n" + r.stdout + "\n" + r.stderr)
    if check and r.returncode:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-3000:]}")
    return r


def copy_bandwidth():
    import torch
    n = 1 << 30
    x = torch.empty(n, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    ts = []
    for _ in range(20):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); y.copy_(x); b.record(); b.synchronize()
        ts.append(a.elapsed_time(b) / 1e3)
    ts.sort()
    return 2 * n / ts[len(ts) // 2]


def weight_bytes(d):
    from safetensors import safe_open
    total = 0
    for f in os.listdir(d):
        if f.endswith(".safetensors"):
            with safe_open(os.path.join(d, f), "np") as st:
                for k in st.keys():
                    sl = st.get_slice(k)
                    n = 1
                    for s in sl.get_shape():
                        n *= s
                    total += n * 2
    return total


def modelc_run(modelc, d, ntok, new, vocab, extra, log, env=None):
    import random
    random.seed(ntok)
    toks = ",".join(str(random.randrange(vocab)) for _ in range(ntok))
    r = sh([modelc, "run", "models/llama.mdl", "--weights", d, "--target", "cuda", "--tokens", toks,
            "--max-new", str(new), "--warmup"] + extra, log, env=env)
    m = re.search(r"prompt (\d+) tokens ([\d.]+) ms \(([\d.]+) tok/s\); generated (\d+) tokens, (\d+) decode steps "
                  r"([\d.]+) ms \(([\d.]+) tok/s\)", r.stderr)
    if not m:
        sys.exit(f"no timing line in {log}")
    return {"prefill_tok_s": float(m.group(3)), "decode_tok_s": float(m.group(7)), "stderr": r.stderr}


def profile_rows(text, section):
    """kernel -> (ms per step, launches per step) from one section ('prefill' or 'decode') of --profile output"""
    rows, on, steps = {}, False, 1
    for line in text.splitlines():
        if line.startswith(section + " profile:"):
            on = True
            m = re.search(r"profile: (\d+) steps", line)
            steps = max(1, int(m.group(1))) if m else 1
            continue
        if on and (re.match(r"[a-z]+ profile:", line) or line.startswith("modelc:")):
            break   # the next section (decode follows prefill) or the timing line
        m = re.match(r"\s*([\d.]+)\s+[\d.]+%\s+(\d+)\s+(\S+)", line)
        if on and m:
            rows[m.group(3)] = (float(m.group(1)) / steps, int(m.group(2)))
    return rows


def cublas_ms(M, N, K):
    import torch
    x = torch.randn(M, K, device="cuda", dtype=torch.float16)
    w = torch.randn(N, K, device="cuda", dtype=torch.float16) * 0.02
    for _ in range(5):
        torch.nn.functional.linear(x, w)
    ts = []
    for _ in range(50):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); torch.nn.functional.linear(x, w); b.record(); b.synchronize()
        ts.append(a.elapsed_time(b))
    ts.sort()
    return ts[len(ts) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--modelc", default=".gpu/modelc")
    ap.add_argument("--out", default="/tmp/gpu_bench")
    ap.add_argument("--shapes", default="llama-1b llama-8b")
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--prefill-tokens", type=int, default=2048)
    ap.add_argument("--gemm-shape", default="llama-1b")
    ap.add_argument("--no-hf", action="store_true")
    ap.add_argument("--base", default=".gpu/modelc-base" if os.path.exists(".gpu/modelc-base") else "")
    ap.add_argument("--variants", default="", help="space-separated KEY=VALUE[,KEY=VALUE]: decode once more with each "
                    "environment (a tuning knob such as MODELC_GEMV_PREFETCH_KB), in the same run")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    bw = copy_bandwidth()
    print(f"copy bandwidth {bw / 1e12:.3f} TB/s (bytes read + written)", flush=True)
    results, gemm = [], []
    for shape in a.shapes.split():
        d = f"/tmp/bench-{shape}"
        if not os.path.exists(d):
            t = time.time()
            sh(["python3", HF, "make", "--config", shape, "--out", d, "--dtype", "float16", "--seed", "1",
                "--device", "cuda"], f"{a.out}/make-{shape}.log")
            print(f"{shape}: checkpoint made in {time.time() - t:.0f} s", flush=True)
        vocab = json.load(open(f"{d}/config.json"))["vocab_size"]
        wb = weight_bytes(d)
        if json.load(open(f"{d}/config.json")).get("tie_word_embeddings"):
            pass  # the tied table is read once per token (as the head), stored once
        ceiling = bw / wb
        dec = modelc_run(a.modelc, d, 16, a.new, vocab, [], f"{a.out}/mc-decode-{shape}.log")
        # the same without programmatic dependent launch (each kernel waits for the last to end)
        dec0 = modelc_run(a.modelc, d, 16, a.new, vocab, [], f"{a.out}/mc-decode-nopdl-{shape}.log",
                          env={"MODELC_NO_PDL": "1"})
        pre = modelc_run(a.modelc, d, a.prefill_tokens, 2, vocab, [], f"{a.out}/mc-prefill-{shape}.log")
        row = {"shape": shape, "weight_GB": wb / 1e9, "ceiling_tok_s": ceiling,
               "modelc_decode_tok_s": dec["decode_tok_s"], "modelc_decode_nopdl_tok_s": dec0["decode_tok_s"],
               "modelc_prefill_tok_s": pre["prefill_tok_s"]}
        row["variants"] = {}
        for v in a.variants.split():
            env = dict(kv.split("=", 1) for kv in v.split(","))
            row["variants"][v] = modelc_run(a.modelc, d, 16, a.new, vocab, [],
                                            f"{a.out}/mc-decode-{shape}-{re.sub('[^A-Za-z0-9]+', '_', v)}.log",
                                            env=env)["decode_tok_s"]
        if a.base:
            row["base_decode_tok_s"] = modelc_run(a.base, d, 16, a.new, vocab, [],
                                                  f"{a.out}/base-decode-{shape}.log")["decode_tok_s"]
            row["base_prefill_tok_s"] = modelc_run(a.base, d, a.prefill_tokens, 2, vocab, [],
                                                   f"{a.out}/base-prefill-{shape}.log")["prefill_tok_s"]
            # and the new build once more, after the base: drift between runs shows as a gap between the two
            row["modelc_decode2_tok_s"] = modelc_run(a.modelc, d, 16, a.new, vocab, [],
                                                     f"{a.out}/mc-decode2-{shape}.log")["decode_tok_s"]
        if not a.no_hf:
            r = sh(["python3", HF, "bench", "--model", d, "--dtype", "float16", "--new", "128", "--prompt-len",
                    str(a.prefill_tokens)], f"{a.out}/hf-bench-{shape}.log")
            hf = json.loads(r.stdout.strip().splitlines()[-1])
            row["hf_decode_tok_s"] = hf["hf_decode_b1_tok_s"]
            row["hf_prefill_tok_s"] = hf[f"hf_prefill{a.prefill_tokens}_tok_s"]
        results.append(row)
        print(json.dumps(row), flush=True)
        if shape == a.gemm_shape:
            cfg = json.load(open(f"{d}/config.json"))
            H, F, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
            hd = H // cfg["num_attention_heads"]
            kv = cfg["num_key_value_heads"] * hd
            # one launch each (pass epilogue): q, k and v together; o_proj and down with their residual add;
            # gate and up with silu * mul.  cuBLAS gets the same GEMM as one matrix of the launch's rows.
            shapes = {"qkv (one launch)": (H + 2 * kv, H, ("_wq_group",)),
                      "o_proj + residual": (H, H, ("_wo_",)),
                      "gate+up, silu*mul": (2 * F, H, ("_w_up_", "_w_gate_")),
                      "down + residual": (H, F, ("_w_down_",)),
                      "lm_head": (V, H, None)}
            for M in (1, 16, 128, 2048):
                r = modelc_run(a.modelc, d, M if M > 1 else 16, 2 if M > 1 else 16, vocab, ["--profile"],
                               f"{a.out}/mc-profile-{shape}-M{M}.log")
                rows = profile_rows(r["stderr"], "decode" if M == 1 else "prefill")
                for name, (N, K, want) in shapes.items():
                    if want:   # at M > 4 the last layer's tail runs the GEMV on the last row: not this shape
                        hits = [(ms, n) for k, (ms, n) in rows.items() if "linear" in k and any(w in k for w in want)
                                and (M <= 4 or "_gemv" not in k)]
                    else:
                        hits = [(ms, n) for k, (ms, n) in rows.items() if "linear" in k and "_L" not in k]
                    launches = max(1, sum(n for _, n in hits))
                    ours = sum(ms for ms, _ in hits) / launches if hits else float("nan")
                    theirs = cublas_ms(M, N, K)
                    gemm.append({"M": M, "op": name, "N": N, "K": K, "modelc_ms": ours, "cublas_ms": theirs})
    json.dump({"bandwidth": bw, "models": results, "gemm": gemm}, open(f"{a.out}/bench.json", "w"), indent=1)
    print(f"\ndecode (batch 1, fp16) and prefill ({a.prefill_tokens} tokens); copy bandwidth {bw / 1e12:.2f} TB/s")
    print(f"{'shape':<10} {'GB':>6} {'ceiling':>8} {'modelc':>8} {'%ceil':>6} {'no PDL':>7} {'HF':>7} {'prefill':>9} "
          f"{'HF pre':>9} {'x HF':>6}")
    for r in results:
        print(f"{r['shape']:<10} {r['weight_GB']:>6.2f} {r['ceiling_tok_s']:>8.0f} {r['modelc_decode_tok_s']:>8.1f} "
              f"{100 * r['modelc_decode_tok_s'] / r['ceiling_tok_s']:>5.0f}% {r['modelc_decode_nopdl_tok_s']:>7.1f} "
              f"{r.get('hf_decode_tok_s', float('nan')):>7.1f} "
              f"{r['modelc_prefill_tok_s']:>9.0f} {r.get('hf_prefill_tok_s', float('nan')):>9.0f} "
              f"{r['modelc_prefill_tok_s'] / r.get('hf_prefill_tok_s', float('nan')):>6.2f}")
    if a.base:
        print(f"\nbase ({a.base}) against this build, same run: decode tok/s (this build twice: before and after)")
        for r in results:
            print(f"{r['shape']:<10} base decode {r['base_decode_tok_s']:>8.1f}  this {r['modelc_decode_tok_s']:>8.1f} / "
                  f"{r['modelc_decode2_tok_s']:>8.1f}  ({r['modelc_decode_tok_s'] / r['base_decode_tok_s']:.3f}x)   "
                  f"base prefill {r['base_prefill_tok_s']:>9.0f}  this {r['modelc_prefill_tok_s']:>9.0f}")
    for v in a.variants.split():
        print(f"\nvariant {v}: decode tok/s " + ", ".join(
            f"{r['shape']} {r['variants'][v]:.1f} (this build {r['modelc_decode_tok_s']:.1f})" for r in results))
    if gemm:
        print(f"\nGEMM per launch, {a.gemm_shape} shapes (modelc: f32 activations x fp16 weights; cuBLAS: fp16 x fp16)")
        print(f"{'M':>5} {'op':<18} {'N':>7} {'K':>6} {'modelc ms':>10} {'cuBLAS ms':>10} {'ratio':>6}")
        for g in gemm:
            print(f"{g['M']:>5} {g['op']:<18} {g['N']:>7} {g['K']:>6} {g['modelc_ms']:>10.4f} {g['cublas_ms']:>10.4f} "
                  f"{g['modelc_ms'] / g['cublas_ms']:>6.2f}")


if __name__ == "__main__":
    main()
