#!/usr/bin/env python3
"""The hostile-input corpus: every file modelc reads, broken on purpose, through the CLI.

    test_hostile.py --modelc build/modelc [--keep] [--wrap "valgrind --error-exitcode=9 -q"]

Each case writes one bad input -- a safetensors checkpoint, a config.json, a spec, a GGUF
file or a tokenizer.json -- next to otherwise good files (the "tiny" checkpoint of
tests/ref/make_checkpoint.py), runs the modelc command that reads it, and asserts:
  - exit status 1 (bad input, not a crash, not a usage error);
  - stderr names the bad file and the fault (a phrase of the message, per case);
  - no output file: `run` is given --logits-out, `emit` -o DIR; neither may exist after.
The library-level unit tests (tests/runtime/test_safetensors.c, test_gguf.c, ...) check
each rule's exact message; this corpus checks that the command line keeps the promise.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "ref"))
import make_checkpoint as mc  # noqa: E402

SPEC = os.path.join(ROOT, "models", "llama.mdl")
results = []


# ---- safetensors: edit the tiny checkpoint's header and data ------------------------------

def st_read(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def st_write(path, header, data, raw_header=None):
    h = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def first_weight(header):
    return next(k for k in sorted(header) if k != "__metadata__" and k.endswith("q_proj.weight"))


def st_case(edit):
    """A case over model.safetensors: edit(header, data, path) rewrites it."""
    def make(d):
        p = os.path.join(d, "model.safetensors")
        h, data = st_read(p)
        edit(h, data, p)
        return p
    return make


def st_header(fn):
    def edit(h, data, p):
        fn(h)
        st_write(p, h, data)
    return st_case(edit)


def set_q(field, value):
    def fn(h):
        h[first_weight(h)][field] = value
    return fn


def swap_offsets(h):
    k = first_weight(h)
    a, b = h[k]["data_offsets"]
    h[k]["data_offsets"] = [b, a]


def overlap(h):
    names = sorted((v["data_offsets"][0], k) for k, v in h.items() if k != "__metadata__")
    k = names[1][1]
    o = h[k]["data_offsets"]
    h[k]["data_offsets"] = [o[0] - 4, o[1] - 4]


def gap(h):
    for k, v in h.items():
        if k != "__metadata__":
            v["data_offsets"] = [v["data_offsets"][0] + 4 * (v["data_offsets"][0] > 0),
                                 v["data_offsets"][1] + 4 * (v["data_offsets"][0] > 0)]


def past_end(h):
    k = first_weight(h)
    o = h[k]["data_offsets"]
    h[k]["data_offsets"] = [o[0] + 1 << 30, o[1] + 1 << 30]


def raw_header(text):
    def edit(h, data, p):
        st_write(p, None, data, raw_header=text)
    return st_case(edit)


def header_len(value):
    def edit(h, data, p):
        b = open(p, "rb").read()
        open(p, "wb").write(struct.pack("<Q", value) + b[8:])
    return st_case(edit)


def truncate_to(frac):
    def edit(h, data, p):
        b = open(p, "rb").read()
        open(p, "wb").write(b[:int(len(b) * frac)] if frac < 1 else b[:frac])
    return st_case(edit)


def trailing(h, data, p):
    st_write(p, h, data + b"\0" * 64)


def duplicate_key(h, data, p):
    k = first_weight(h)
    text = json.dumps(h, separators=(",", ":"))
    dup = json.dumps({k: h[k]}, separators=(",", ":"))[1:-1]
    st_write(p, None, data, raw_header=(text[:-1] + "," + dup + "}").encode())


def nul_in_name(h, data, p):
    k = first_weight(h)
    text = json.dumps(h, separators=(",", ":")).replace(json.dumps(k), json.dumps(k[:6] + "\0" + k[6:]))
    st_write(p, None, data, raw_header=text.encode())


def rebuild(h, data, p, keep_bytes):
    """Rewrite the file packed again, tensor k keeping keep_bytes(k, nbytes) of its bytes (None: dropped)."""
    out, new = b"", {"__metadata__": h["__metadata__"]} if "__metadata__" in h else {}
    for k in sorted((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][0]):
        a, b = h[k]["data_offsets"]
        n = keep_bytes(k, b - a)
        if n is None:
            continue
        new[k] = dict(h[k], data_offsets=[len(out), len(out) + n])
        out += data[a:a + n]
    return new, out


def missing_tensor(h, data, p):
    q = first_weight(h)
    new, out = rebuild(h, data, p, lambda k, n: None if k == q else n)
    st_write(p, new, out)


def wrong_rows(h, data, p):
    """q_proj stored with half its rows: a consistent file, not what the spec says."""
    q = first_weight(h)
    new, out = rebuild(h, data, p, lambda k, n: n // 2 if k == q else n)
    new[q]["shape"] = [h[q]["shape"][0] // 2] + h[q]["shape"][1:]
    st_write(p, new, out)


# ---- config.json ---------------------------------------------------------------------------

def cfg_case(fn):
    def make(d):
        p = os.path.join(d, "config.json")
        c = json.load(open(p))
        text = fn(c)
        with open(p, "w") as f:
            f.write(text if isinstance(text, str) else json.dumps(c))
        return p
    return make


def cfg_set(key, value):
    def fn(c):
        c[key] = value
    return fn


# ---- specs -----------------------------------------------------------------------------------

def spec_case(text):
    def make(d):
        p = os.path.join(d, "bad.mdl")
        with open(p, "wb") as f:
            f.write(text if isinstance(text, bytes) else text.encode())
        return p
    return make


GOOD_SPEC = "model m {\n  input t : i32[seq]\n  weight e : [8, 8] = \"e\"\n  output o = embedding(e, t)\n}\n"


# ---- GGUF --------------------------------------------------------------------------------------

def gguf_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gguf_bytes(version=3, n_tensors=None, n_kv=None, kvs=None, tensors=None, alignment=32, data=b"\0" * 64,
               cut=None):
    kvs = kvs if kvs is not None else [gguf_str("general.architecture") + struct.pack("<I", 8) + gguf_str("llama")]
    tensors = tensors if tensors is not None else [gguf_str("token_embd.weight") + struct.pack("<I", 2) +
                                                   struct.pack("<2Q", 4, 4) + struct.pack("<IQ", 0, 0)]
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                                 len(kvs) if n_kv is None else n_kv)
    head += b"".join(kvs) + b"".join(tensors)
    head += b"\0" * (-len(head) % alignment)
    b = head + data
    return b[:cut] if cut is not None else b


def gguf_case(**kw):
    def make(d):
        p = os.path.join(d, "bad.gguf")
        raw = kw.pop("raw", None) if "raw" in kw else None
        open(p, "wb").write(raw if raw is not None else gguf_bytes(**kw))
        return p
    return make


def tensor_info(name="token_embd.weight", dims=(4, 4), ttype=0, offset=0, n_dims=None):
    return (gguf_str(name) + struct.pack("<I", len(dims) if n_dims is None else n_dims) +
            struct.pack(f"<{len(dims)}Q", *dims) + struct.pack("<IQ", ttype, offset))


# ---- tokenizer.json ------------------------------------------------------------------------------

def tok_case(text):
    def make(d):
        p = os.path.join(d, "tokenizer.json")
        open(p, "w").write(text)
        return p
    return make


# ---- the corpus: (name, kind, make(dir) -> bad file, phrase in the message[, "dir": the message
# names the checkpoint directory given to --weights, as for a tensor that is in none of its files]) ----

CASES = [
    # safetensors
    ("st-truncated-data", "st", truncate_to(0.9), "truncated"),
    ("st-shorter-than-length", "st", truncate_to(5), ""),
    ("st-header-past-end", "st", header_len(1 << 20), ""),
    ("st-header-length-wraps", "st", header_len(0xFFFFFFFFFFFFFFF8), ""),
    ("st-header-not-utf8", "st", raw_header(b'{"a\xff\xfe":1}'), ""),
    ("st-header-not-json", "st", raw_header(b"this is not json at all"), ""),
    ("st-header-array", "st", raw_header(b"[1,2,3]"), ""),
    ("st-header-empty", "st", raw_header(b""), ""),
    ("st-duplicate-key", "st", st_case(duplicate_key), "duplicate"),
    ("st-unknown-dtype", "st", st_header(set_q("dtype", "F99")), "F99"),
    ("st-dtype-not-string", "st", st_header(set_q("dtype", 7)), "dtype"),
    ("st-shape-overflow", "st", st_header(set_q("shape", [1 << 40, 1 << 40])), ""),
    ("st-negative-dim", "st", st_header(set_q("shape", [-4, 8])), ""),
    ("st-fractional-dim", "st", st_header(set_q("shape", [2.5, 8])), ""),
    ("st-rank-9", "st", st_header(set_q("shape", [1] * 9)), ""),
    ("st-bytes-disagree", "st", st_header(set_q("shape", [3, 3])), ""),
    ("st-reversed-offsets", "st", st_header(swap_offsets), ""),
    ("st-overlapping-offsets", "st", st_header(overlap), ""),
    ("st-gapped-offsets", "st", st_header(gap), ""),
    ("st-offsets-past-end", "st", st_header(past_end), ""),
    ("st-offsets-not-pair", "st", st_header(set_q("data_offsets", [0])), ""),
    ("st-trailing-bytes", "st", st_case(trailing), ""),
    ("st-missing-tensor", "st", st_case(missing_tensor), "q_proj", "dir"),
    ("st-shape-disagrees-with-spec", "st", st_case(wrong_rows), "the spec says"),
    ("st-nul-in-name", "st", st_case(nul_in_name), ""),
    # config.json
    ("cfg-zero-heads", "cfg", cfg_case(cfg_set("num_attention_heads", 0)), ""),
    ("cfg-negative-layers", "cfg", cfg_case(cfg_set("num_hidden_layers", -3)), ""),
    ("cfg-absurd-vocab", "cfg", cfg_case(cfg_set("vocab_size", 10 ** 12)), ""),
    ("cfg-string-for-number", "cfg", cfg_case(cfg_set("hidden_size", "big")), ""),
    ("cfg-not-json", "cfg", cfg_case(lambda c: "{ not json"), ""),
    ("cfg-top-level-array", "cfg", cfg_case(lambda c: "[1, 2]"), ""),
    ("cfg-deep-nesting", "cfg", cfg_case(lambda c: "[" * 100000 + "]" * 100000), ""),
    ("cfg-heads-do-not-divide", "cfg", cfg_case(cfg_set("num_key_value_heads", 3)), ""),
    # specs
    ("spec-deep-parens", "spec", spec_case("model m {\n  x = " + "(" * 5000 + "1" + ")" * 5000 + "\n}\n"), ""),
    ("spec-huge-identifier", "spec", spec_case("model m {\n  param " + "a" * 300 + " = 1\n}\n"), ""),
    ("spec-nul-byte", "spec", spec_case(GOOD_SPEC.encode().replace(b"input", b"in\0put")), ""),
    ("spec-not-utf8", "spec", spec_case(GOOD_SPEC.encode().replace(b"input t", b"input \xff\xfe")), ""),
    ("spec-huge-string", "spec", spec_case(GOOD_SPEC.replace('"e"', '"' + "e" * 5000 + '"')), ""),
    ("spec-too-large", "spec", spec_case(b"#" * (17 << 20)), ""),
    ("spec-negative-repeat", "spec", spec_case(GOOD_SPEC.replace("  output", "  repeat i < -2 { }\n  output")), ""),
    ("spec-nested-empty-repeats", "spec",
     spec_case(GOOD_SPEC.replace("  output", "  repeat i < 100000 { repeat j < 100000 { } }\n  output")), ""),
    ("spec-deep-repeat-nesting", "spec",
     spec_case(GOOD_SPEC.replace("  output", "  " + "repeat i < 1 { " * 100 + "}" * 100 + "\n  output")), ""),
    ("spec-rank-9", "spec", spec_case(GOOD_SPEC.replace("[8, 8]", "[" + ", ".join(["2"] * 9) + "]")), ""),
    ("spec-empty", "spec", spec_case(b""), ""),
    # GGUF
    ("gguf-bad-magic", "gguf", gguf_case(raw=b"GGUX" + b"\0" * 60), ""),
    ("gguf-version-99", "gguf", gguf_case(version=99), ""),
    ("gguf-truncated-header", "gguf", gguf_case(cut=12), ""),
    ("gguf-huge-tensor-count", "gguf", gguf_case(n_tensors=1 << 62), ""),
    ("gguf-huge-kv-count", "gguf", gguf_case(n_kv=1 << 62), ""),
    ("gguf-huge-string", "gguf",
     gguf_case(kvs=[struct.pack("<Q", 1 << 60) + b"general.architecture"]), ""),
    ("gguf-unknown-value-type", "gguf",
     gguf_case(kvs=[gguf_str("general.architecture") + struct.pack("<I", 99) + gguf_str("llama")]), ""),
    ("gguf-n-dims-beyond", "gguf", gguf_case(tensors=[tensor_info(dims=(4, 4, 1, 1, 1), n_dims=5)]), ""),
    ("gguf-unknown-tensor-type", "gguf", gguf_case(tensors=[tensor_info(ttype=99)]), ""),
    ("gguf-offset-past-end", "gguf", gguf_case(tensors=[tensor_info(offset=1 << 40)]), ""),
    ("gguf-misaligned-offset", "gguf", gguf_case(tensors=[tensor_info(offset=3)]), ""),
    ("gguf-dims-overflow", "gguf", gguf_case(tensors=[tensor_info(dims=(1 << 40, 1 << 40))]), ""),
    ("gguf-truncated-data", "gguf", gguf_case(data=b"\0" * 8), ""),
    ("gguf-bad-alignment", "gguf",
     gguf_case(kvs=[gguf_str("general.alignment") + struct.pack("<I", 4) + struct.pack("<I", 3)]), ""),
    # tokenizer.json (modelc tokenize reads the checkpoint directory's)
    ("tok-not-json", "tok", tok_case("{ nope"), ""),
    ("tok-huge-id", "tok", tok_case('{"model": {"type": "BPE", "vocab": {"a": 16777215}, "merges": []}}'), ""),
    ("tok-negative-id", "tok", tok_case('{"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}}'), ""),
    ("tok-merges-not-array", "tok", tok_case('{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": 3}}'), ""),
    ("tok-deep-nesting", "tok", tok_case("[" * 100000 + "]" * 100000), ""),
]


def command(kind, d, bad, out):
    """The command that reads the bad file, and the output path it must not leave behind."""
    if kind in ("st", "cfg"):
        return [SPEC, "run", "--weights", d, "--tokens", "1,2,3", "--max-new", "2", "--logits-out", out], out
    if kind == "spec":
        return [bad, "emit", "--emit", "ir", "-o", out], out
    if kind == "gguf":
        return [SPEC, "run", "--weights", bad, "--tokens", "1,2", "--max-new", "2", "--logits-out", out], out
    return [None, "tokenize", "--weights", d, "--prompt", "hello"], out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modelc", default=os.path.join(ROOT, "build", "modelc"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--wrap", default="", help="a command to run modelc under (make test-valgrind: valgrind)")
    a = ap.parse_args()
    modelc = os.path.abspath(a.modelc)
    work = tempfile.mkdtemp(prefix="modelc-hostile-")
    good = os.path.join(work, "good")
    mc.make(good, "tiny", "f16", seed=3)
    passed = failed = 0
    for name, kind, make, phrase, *names in CASES:
        d = os.path.join(work, name)
        shutil.copytree(good, d)
        bad = make(d)
        out = os.path.join(d, "out.npy" if kind != "spec" else "outdir")
        argv, out = command(kind, d, bad, out)
        argv = a.wrap.split() + [modelc, argv[1]] + ([argv[0]] if argv[0] else []) + argv[2:]
        try:
            p = subprocess.run(argv, capture_output=True, timeout=600 if a.wrap else 120, cwd=ROOT)
            rc, err = p.returncode, p.stderr.decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            rc, err = None, "timed out after 120 s"
        lines = err.strip().splitlines()
        msg = next((ln for ln in lines if "error" in ln), lines[0] if lines else "(no message)")
        # the file is named by its path or, for a checkpoint directory, by the directory or file name
        named = (d in err) if names == ["dir"] else os.path.basename(bad) in err
        problems = []
        if rc != 1:
            problems.append(f"exit {rc}, want 1")
        if not named:
            problems.append(f"the message does not name {d if names else os.path.basename(bad)}")
        if phrase and phrase not in err:
            problems.append(f"the message lacks {phrase!r}")
        if os.path.exists(out):
            problems.append(f"{os.path.basename(out)} was written")
        ok = not problems
        passed += ok
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'}  {name:<30} {msg[:150]}", flush=True)
        for pr in problems:
            print(f"      {pr}", flush=True)
    if a.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(CASES)} hostile inputs")
    print(f"{passed} passed, {failed} failed")   # alone on its line: tests/run_tests.py adds it up
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
