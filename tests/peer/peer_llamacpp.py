#!/usr/bin/env python3
"""make test-peer: modelc against llama.cpp (llama-cpp-python) on the same GGUF.

  tests/peer/peer_llamacpp.py [--modelc build/modelc] [--gguf PATH] [--bench-new 64] [--rounds 3]

1. tokenization: modelc's token ids equal llama.cpp's for a set of strings
   (ASCII, Unicode, digits, runs of spaces, special tokens);
2. greedy continuations of several prompts (from llama.cpp's token ids) agree
   for at least the first 16 tokens, on an F32 GGUF derived from the Q4_1 file
   (the same weights, dequantized exactly; llama.cpp then computes in float).
   On the Q4_1 file itself both round the activations to 8 bits (Q8_1 blocks)
   for integer dot products (modelc's pass "quantize"), but llama.cpp keeps its
   KV cache in f16 and sums in its own order, and one value that rounds to the
   other side of the 8-bit grid moves every later layer: so at least 3 of the 5
   prompts must agree for 16 tokens, and a divergence before token 16 must be
   a near-tie in modelc's logits (margin < 1 logit), reported with its margin;
3. a benchmark in the same run: CPU decode tokens/s of both on this machine
   (modelc also with --activations f32, its float path), the engines taking
   turns for --rounds rounds, medians; llama.cpp read two ways (timed around
   llama-cpp-python's generate, and its own decode timer), the ratio taken
   against the faster.
Ends with `N passed, N failed` (the benchmark is printed, not asserted).
"""
import argparse, os, re, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

STRINGS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France?",
    "  leading spaces and   runs    of spaces  ",
    "tabs\tand\nnewlines\n\n\nand\r\nCRLF",
    "digits 1234567890 and 3.14159 and 1,000,000",
    "don't can't we'll they've I'm you're it's",
    "Ünïcödé: naïve café, Straße, ğüşıöç",
    "日本語のテキスト, 中文文本, 한국어 텍스트",
    "emoji 🙂🚀 and symbols ∑∫√ → ← ©®",
    "mixedCASE snake_case kebab-case CamelCase URL https://example.com/a?b=c",
    "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n",
    "",
    " ",
    "a",
]
SPECIAL = {11}  # indexes of strings with special tokens: tokenized with special=True

PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village,",
    "def fibonacci(n):",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "Water boils at a temperature of",
]

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f"\n      {detail}" if detail and not ok else ""), flush=True)


def modelc_tokenize(modelc, gguf, text, special):
    argv = [modelc, "tokenize", "--weights", gguf, "--prompt", text] + (["--special"] if special else [])
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode:
        return None, p.stderr.strip()
    return [int(x) for x in p.stdout.split()], ""


def derive_f32(gguf):
    """The same GGUF with every tensor dequantized to F32 (needs the gguf package)."""
    out = gguf[:-5] + ".f32.gguf"
    if os.path.exists(out):
        return out
    import numpy as np
    from gguf import GGUFReader, GGUFWriter, GGUFValueType
    from gguf.quants import dequantize
    r = GGUFReader(gguf)
    arch = r.fields["general.architecture"].contents()
    w = GGUFWriter(out + ".part", arch)
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        main = f.types[0]
        sub = f.types[-1] if main == GGUFValueType.ARRAY else None
        w.add_key_value(name, f.contents(), main, sub_type=sub)
    for t in r.tensors:
        a = dequantize(t.data, t.tensor_type).astype(np.float32)
        w.add_tensor(t.name, a.reshape([int(d) for d in reversed(t.shape.tolist())]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(out + ".part", out)
    return out


def greedy_pair(llama_cpp, path, modelc, spec, prompt, n, threads):
    llm = llama_cpp.Llama(model_path=path, n_ctx=512, n_threads=threads, verbose=False)
    ids = llm.tokenize(prompt.encode(), add_bos=True, special=True)
    want = []
    for t in llm.generate(ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0):
        want.append(int(t))
        if len(want) == n:
            break
    del llm
    p = subprocess.run([modelc, "run", spec, "--weights", path, "--tokens", ",".join(map(str, ids)), "--max-new",
                        str(n), "--quiet"], capture_output=True, text=True)
    got = [int(x) for x in p.stdout.split()] if p.returncode == 0 else []
    agree = next((k for k, (x, y) in enumerate(zip(got, want)) if x != y), min(len(got), len(want)))
    return ids, got, want, agree, p.stderr


def margin_at(modelc, spec, path, ids, got, want, k):
    """modelc's logit of its own choice minus llama.cpp's at step k."""
    import numpy as np
    npy = f"/tmp/modelc-peer-{os.getpid()}.npy"
    subprocess.run([modelc, "run", spec, "--weights", path, "--tokens", ",".join(map(str, ids + got[:k])),
                    "--max-new", "1", "--quiet", "--logits-out", npy], capture_output=True, check=True)
    row = np.load(npy)[-1]
    os.unlink(npy)
    return float(row[got[k]] - row[want[k]])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modelc", default=os.path.join(ROOT, "build", "modelc"))
    ap.add_argument("--gguf")
    ap.add_argument("--bench-new", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    try:
        import llama_cpp
    except ImportError:
        sys.exit("peer: llama-cpp-python is not installed (pip install llama-cpp-python builds llama.cpp; "
                 "`make test-peer` does it)")
    gguf = a.gguf or subprocess.run([os.path.join(ROOT, "tools", "fetch-smollm2.sh")], capture_output=True,
                                    text=True, check=True).stdout.strip()
    threads = os.cpu_count()
    llm = llama_cpp.Llama(model_path=gguf, n_ctx=512, n_threads=threads, n_batch=512, verbose=False)
    print(f"peer: llama-cpp-python {llama_cpp.__version__}, {gguf}, {threads} threads", flush=True)

    # 1. tokenization
    for i, s in enumerate(STRINGS):
        special = i in SPECIAL
        want = llm.tokenize(s.encode("utf-8"), add_bos=True, special=special)
        got, err = modelc_tokenize(a.modelc, gguf, s, special)
        if s == "" and got is None:
            got = []
        check(f"tokenize {s[:40]!r}", got == want, f"modelc {got} {err}\n      llama.cpp {want}")

    # 2. greedy continuations: exact on the F32 twin, explained on Q4_1
    spec = os.path.join(ROOT, "models", "llama.mdl")
    f32 = derive_f32(gguf)
    for pr in PROMPTS:
        ids, got, want, agree, err = greedy_pair(llama_cpp, f32, a.modelc, spec, pr, 32, threads)
        check(f"greedy F32 {pr[:30]!r}: {agree}/32 agree", agree >= 16, f"modelc {got}\n      llama.cpp {want} {err[-300:]}")
    long_enough = 0
    for pr in PROMPTS:
        ids, got, want, agree, err = greedy_pair(llama_cpp, gguf, a.modelc, spec, pr, 32, threads)
        if agree >= 16 or agree >= min(len(got), len(want)):
            long_enough += agree >= 16
            check(f"greedy Q4_1 {pr[:30]!r}: {agree}/32 agree", True)
            continue
        m = margin_at(a.modelc, spec, gguf, ids, got, want, agree)
        check(f"greedy Q4_1 {pr[:30]!r}: {agree}/32 agree, then a near-tie (margin {m:.3f} logits in modelc)",
              0 <= m < 1.0, f"modelc {got}\n      llama.cpp {want}")
    check(f"greedy Q4_1: {long_enough} of {len(PROMPTS)} prompts agree for 16+ tokens (at least 3)",
          long_enough >= 3)

    # 3. benchmark: decode tokens/s, same file, same machine, same run; the engines take turns for
    # --rounds rounds (this machine's speed drifts) and each row is the median of its rounds
    ids = llm.tokenize(b"The history of the Roman Empire", add_bos=True)
    n = a.bench_new
    variants = (("modelc (CPU, 8-bit activations)", []), ("modelc (CPU, --activations f32)", ["--activations", "f32"]))
    llama_py, llama_own, llama_prompt, ours = [], [], [], {label: ([], []) for label, _ in variants}
    for _ in range(a.rounds):
        llm.reset()
        llama_cpp.llama_perf_context_reset(llm.ctx)
        t0 = time.perf_counter()
        got = 0
        for _ in llm.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0):
            got += 1
            if got == 1:
                t1 = time.perf_counter()
            if got == n + 1:
                break
        llama_py.append(n / (time.perf_counter() - t1))
        llama_prompt.append((t1 - t0) * 1e3)
        perf = llama_cpp.llama_perf_context(llm.ctx)   # llama.cpp's own timer: its decode calls alone
        llama_own.append(perf.n_eval / (perf.t_eval_ms / 1e3) if perf.t_eval_ms > 0 else float("nan"))
        for label, extra in variants:
            p = subprocess.run([a.modelc, "run", spec, "--weights", gguf, "--tokens", ",".join(map(str, ids)),
                                "--max-new", str(n + 1)] + extra, capture_output=True, text=True)
            m = re.search(r"prompt (\d+) tokens ([\d.]+) ms .* (\d+) decode steps ([\d.]+) ms", p.stderr)
            ours[label][0].append(float(m[2]) if m else float("nan"))
            ours[label][1].append(int(m[3]) / (float(m[4]) / 1e3) if m else float("nan"))
    med = lambda v: sorted(v)[len(v) // 2]
    ref = max(med(llama_py), med(llama_own))   # the faster of the two readings of llama.cpp
    print(f"\n{time.strftime('%Y-%m-%d')} · {os.uname().nodename} · {threads} CPUs · {os.path.basename(gguf)} · "
          f"{n} decode steps · median of {a.rounds} alternating rounds")
    print("| engine | prompt (ms) | decode tok/s | vs llama.cpp |\n|---|---|---|---|")
    print(f"| llama.cpp (llama-cpp-python {llama_cpp.__version__}), timed in Python | {med(llama_prompt):.1f} | "
          f"{med(llama_py):.1f} | {med(llama_py) / ref:.2f}× |")
    print(f"| llama.cpp, its own decode timer (llama_perf_context) | — | {med(llama_own):.1f} | "
          f"{med(llama_own) / ref:.2f}× |")
    for label, _ in variants:
        pr, ts = ours[label]
        print(f"| {label} | {med(pr):.1f} | {med(ts):.1f} | {med(ts) / ref:.2f}× |")
    print()
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
