#!/usr/bin/env python3
"""Seed corpora for the libFuzzer targets in tests/fuzz/ (NumPy only).

    /usr/bin/python3 tests/fuzz/make_seeds.py [--out tests/fuzz/corpus]

Writes small valid and near-valid inputs, one folder per target:

  spec/         the specs in models/ and tests/frontend/errors/, and a few
                written here that use every op
  safetensors/  tiny files written with tests/ref/make_checkpoint.py's
                write_safetensors: every dtype, metadata, scalars, zero-size
                tensors, the mlp shape, and near-valid ones (cut, bad offsets)
  gguf/         GGUF v3/v2 files written here: every tensor type, a small
                llama model with a tokenizer, vocabulary-only files (gpt2
                from tests/runtime/tokenizer/smollm2, llama from spm/meta.json),
                every metadata value type, and near-valid ones
  config/       config.json files of make_checkpoint.py's shapes and edge cases
  tokenizer/    tokenizer.json files (tests/runtime/tokenizer/ and tiny ones);
                an input is tokenizer.json, optionally followed by a NUL byte
                and a tokenizer_config.json (see fuzz_tokenizer.c)

Files named regress-* are regression inputs from fuzzing runs: this script
never writes or removes them.  Deterministic: the same files every run.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "ref"))
import make_checkpoint as mc  # noqa: E402  (write_safetensors, make_config, to_bf16_bits)

TOK = os.path.join(ROOT, "tests", "runtime", "tokenizer")


def write(out, target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- GGUF ---------------------------------------------------------------------------

U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
SCALAR_FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<B",
              U64: "<Q", I64: "<q", F64: "<d"}
T_F32, T_F16, T_Q4_0, T_Q4_1, T_Q8_0, T_Q4_K, T_Q5_K, T_Q6_K, T_BF16 = 0, 1, 2, 3, 8, 12, 13, 14, 30
BLOCK = {T_F32: (1, 4), T_F16: (1, 2), T_BF16: (1, 2), T_Q4_0: (32, 18), T_Q4_1: (32, 20), T_Q8_0: (32, 34),
         T_Q4_K: (256, 144), T_Q5_K: (256, 176), T_Q6_K: (256, 210)}


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gvalue(t, v):
    if t == STRING:
        return gstr(v)
    if t == ARRAY:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(gvalue(et, x) for x in items)
    return struct.pack(SCALAR_FMT[t], v)


def tensor_bytes(rng, t, ne):
    n = int(np.prod(ne))
    vals, size = BLOCK[t]
    if t == T_F32:
        return rng.standard_normal(n).astype("<f4").tobytes()
    if t == T_F16:
        return rng.standard_normal(n).astype("<f2").tobytes()
    if t == T_BF16:
        return mc.to_bf16_bits(rng.standard_normal(n).astype(np.float32)).astype("<u2").tobytes()
    # quantized: random quants, small finite f16 scales at the front of each block
    out = bytearray()
    for _ in range(n // vals):
        blk = bytearray(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        scale = np.array([rng.uniform(0.001, 0.1)], dtype="<f2").tobytes()
        if t == T_Q6_K:       # d is the last two bytes
            blk[-2:] = scale
        else:
            blk[0:2] = scale
            if t in (T_Q4_1, T_Q4_K, T_Q5_K):
                blk[2:4] = scale  # m / dmin
        out += blk
    return bytes(out)


def gguf(kvs, tensors, version=3, align=32, rng=None):
    """kvs: [(key, type, value)]; tensors: [(name, ggml type, ne, bytes or None)]."""
    rng = rng or np.random.default_rng(0)
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    kv = b"".join(gstr(k) + struct.pack("<I", t) + gvalue(t, v) for k, t, v in kvs)
    ti, data = b"", b""
    for name, t, ne, raw in tensors:
        if raw is None:
            raw = tensor_bytes(rng, t, ne)
        data += b"\0" * (-len(data) % align)
        ti += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", x) for x in ne)
        ti += struct.pack("<IQ", t, len(data))
        data += raw
    body = head + kv + ti
    body += b"\0" * (-len(body) % align)
    return body + data


def tiny_bytelevel_vocab():
    toks = ["a", "b", "c", "\u0120", "ab", "abc", "\u0120a", "\u00c3", "\u00a9",
            "<|endoftext|>", "<|im_start|>", "<|im_end|>", "[U]"]
    types = [1] * 9 + [3, 3, 3, 4]
    return [
        ("tokenizer.ggml.model", STRING, "gpt2"),
        ("tokenizer.ggml.pre", STRING, "smollm"),
        ("tokenizer.ggml.tokens", ARRAY, (STRING, toks)),
        ("tokenizer.ggml.token_type", ARRAY, (I32, types)),
        ("tokenizer.ggml.merges", ARRAY, (STRING, ["a b", "ab c", "\u0120 a"])),
        ("tokenizer.ggml.bos_token_id", U32, 10),
        ("tokenizer.ggml.eos_token_id", U32, 11),
        ("tokenizer.ggml.add_bos_token", BOOL, 0),
        ("tokenizer.chat_template", STRING,
         "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"),
    ]


def smollm2_vocab(pre):
    doc = json.load(open(os.path.join(TOK, "smollm2", "tokenizer.json"), encoding="utf-8"))
    cfg = json.load(open(os.path.join(TOK, "smollm2", "tokenizer_config.json"), encoding="utf-8"))
    # the test vocabulary keeps SmolLM2's ids (up to 49151); renumber densely to keep the seed small
    vocab = {k: j for j, (k, _) in enumerate(sorted(doc["model"]["vocab"].items(), key=lambda kv: kv[1]))}
    n = len(vocab)
    toks = [""] * n
    types = [1] * n
    for k, i in vocab.items():
        toks[i] = k
        types[i] = 3 if i < 17 else 1
    merges = [m if isinstance(m, str) else " ".join(m) for m in doc["model"]["merges"]]
    return [
        ("tokenizer.ggml.model", STRING, "gpt2"),
        ("tokenizer.ggml.pre", STRING, pre),
        ("tokenizer.ggml.tokens", ARRAY, (STRING, toks)),
        ("tokenizer.ggml.token_type", ARRAY, (I32, types)),
        ("tokenizer.ggml.merges", ARRAY, (STRING, merges)),
        ("tokenizer.ggml.bos_token_id", U32, 1),
        ("tokenizer.ggml.eos_token_id", U32, 2),
        ("tokenizer.ggml.unknown_token_id", U32, 0),
        ("tokenizer.ggml.add_bos_token", BOOL, 0),
        ("tokenizer.chat_template", STRING, cfg["chat_template"]),
    ]


def spm_vocab():
    m = json.load(open(os.path.join(TOK, "spm", "meta.json"), encoding="utf-8"))
    return [
        ("tokenizer.ggml.model", STRING, m["tokenizer.ggml.model"]),
        ("tokenizer.ggml.tokens", ARRAY, (STRING, m["tokenizer.ggml.tokens"])),
        ("tokenizer.ggml.scores", ARRAY, (F32, m["tokenizer.ggml.scores"])),
        ("tokenizer.ggml.token_type", ARRAY, (I32, m["tokenizer.ggml.token_type"])),
        ("tokenizer.ggml.bos_token_id", U32, m["tokenizer.ggml.bos_token_id"]),
        ("tokenizer.ggml.eos_token_id", U32, m["tokenizer.ggml.eos_token_id"]),
        ("tokenizer.ggml.unknown_token_id", U32, m["tokenizer.ggml.unknown_token_id"]),
        ("tokenizer.ggml.add_bos_token", BOOL, 1),
        ("tokenizer.ggml.add_space_prefix", BOOL, 1),
    ]


def llama_kvs(embd=32, ff=64, layers=1, heads=2, kv_heads=1, vocab=13, extra=()):
    return [
        ("general.architecture", STRING, "llama"),
        ("general.alignment", U32, 32),
        ("llama.context_length", U32, 64),
        ("llama.embedding_length", U32, embd),
        ("llama.feed_forward_length", U32, ff),
        ("llama.block_count", U32, layers),
        ("llama.attention.head_count", U32, heads),
        ("llama.attention.head_count_kv", U32, kv_heads),
        ("llama.vocab_size", U32, vocab),
        ("llama.rope.freq_base", F32, 10000.0),
        ("llama.attention.layer_norm_rms_epsilon", F32, 1e-5),
    ] + list(extra)


def llama_tensors(embd=32, ff=64, layers=1, heads=2, kv_heads=1, vocab=13, qt=T_Q8_0, tied=False):
    hd = embd // heads
    ts = [("token_embd.weight", qt, [embd, vocab], None),
          ("output_norm.weight", T_F32, [embd], None)]
    if not tied:
        ts.append(("output.weight", T_F16, [embd, vocab], None))
    for i in range(layers):
        p = f"blk.{i}."
        ts += [(p + "attn_norm.weight", T_F32, [embd], None),
               (p + "attn_q.weight", qt, [embd, heads * hd], None),
               (p + "attn_k.weight", qt, [embd, kv_heads * hd], None),
               (p + "attn_v.weight", T_BF16, [embd, kv_heads * hd], None),
               (p + "attn_output.weight", T_Q4_0, [heads * hd, embd], None),
               (p + "ffn_norm.weight", T_F32, [embd], None),
               (p + "ffn_gate.weight", T_Q4_1, [embd, ff], None),
               (p + "ffn_up.weight", T_F16, [embd, ff], None),
               (p + "ffn_down.weight", T_F32, [ff, embd], None)]
    return ts


def gguf_seeds(out):
    rng = np.random.default_rng(1)
    w = lambda name, data: write(out, "gguf", name, data)  # noqa: E731
    every = [(f"t.{n}", t, [256, 1], None) for n, t in
             [("f32", T_F32), ("f16", T_F16), ("bf16", T_BF16), ("q8_0", T_Q8_0), ("q4_0", T_Q4_0),
              ("q4_1", T_Q4_1), ("q4_k", T_Q4_K), ("q5_k", T_Q5_K), ("q6_k", T_Q6_K)]]
    w("every_type.gguf", gguf([], every, rng=rng))
    w("every_type_v2.gguf", gguf([], every[:3], version=2, rng=rng))
    w("no_tensors.gguf", gguf([("general.name", STRING, "empty")], []))
    w("align64.gguf", gguf([("general.alignment", U32, 64)], every[:2], align=64, rng=rng))
    w("vocab_tiny_bpe.gguf", gguf(tiny_bytelevel_vocab(), []))
    for pre in ("smollm", "llama-bpe", "qwen2", "gpt-2"):
        w(f"vocab_smollm2_{pre}.gguf", gguf(smollm2_vocab(pre), []))
    w("vocab_spm.gguf", gguf(spm_vocab(), []))
    w("llama_tiny.gguf", gguf(llama_kvs() + tiny_bytelevel_vocab(), llama_tensors(), rng=rng))
    w("llama_tied_q4k.gguf",
      gguf(llama_kvs(embd=256, ff=256, heads=4, kv_heads=2, vocab=2,
                     extra=[("llama.attention.key_length", U32, 2), ("llama.rope.dimension_count", U32, 2)]),
           [("token_embd.weight", T_Q4_K, [256, 2], None), ("output_norm.weight", T_F32, [16], None),
            ("blk.0.attn_q.weight", T_Q6_K, [256, 4 * 2], None),
            ("blk.0.attn_k.weight", T_Q5_K, [256, 2 * 2], None)], rng=rng))
    w("llama_spm_f32.gguf",
      gguf(llama_kvs(embd=8, ff=16, heads=2, kv_heads=2, vocab=500) + spm_vocab(),
           llama_tensors(embd=8, ff=16, heads=2, kv_heads=2, vocab=4, qt=T_F32, tied=True)[:2], rng=rng))
    w("values.gguf", gguf([
        ("t.u8", U8, 200), ("t.i8", I8, -100), ("t.u16", U16, 60000), ("t.i16", I16, -30000),
        ("t.u32", U32, 4000000000), ("t.i32", I32, -2000000000), ("t.u64", U64, 1 << 40),
        ("t.u64big", U64, 2**64 - 1), ("t.i64", I64, -(1 << 50)), ("t.f32", F32, 0.1), ("t.f64", F64, 0.1),
        ("t.bool", BOOL, 1), ("t.str", STRING, "caf\u00e9"), ("t.nul", STRING, b"a\0b"), ("t.empty", STRING, ""),
        ("t.strs", ARRAY, (STRING, ["x", "", "yz"])), ("t.f32s", ARRAY, (F32, [1.5, -2])),
        ("t.i32s", ARRAY, (I32, [-7, 7])), ("t.u8s", ARRAY, (U8, [1, 255])), ("t.bools", ARRAY, (BOOL, [0, 1])),
        ("t.none", ARRAY, (I64, [])), ("tokenizer.ggml.padding_token_id", U32, 3)], []))
    # near-valid: cut short, a tensor past the end, a bad version, a nested array
    good = gguf(llama_kvs() + tiny_bytelevel_vocab(), llama_tensors(), rng=rng)
    w("near_truncated.gguf", good[: len(good) - 100])
    w("near_header_only.gguf", good[:24])
    bad = bytearray(gguf([], every[:1], rng=rng))
    bad[4:8] = struct.pack("<I", 4)
    w("near_version4.gguf", bytes(bad))
    w("near_nested_array.gguf", gguf([("t.nested", ARRAY, (ARRAY, []))], []))
    w("near_offset_past_end.gguf", gguf([], [("t", T_F32, [4], b"\0" * 8)]))


# ---- safetensors ---------------------------------------------------------------------

def st_bytes(tensors, metadata=True, dtypes=None):
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"modelc-seed-{os.getpid()}.safetensors")
    mc.write_safetensors(tmp, tensors, metadata, dtypes)
    with open(tmp, "rb") as f:
        data = f.read()
    os.unlink(tmp)
    return data


def st_raw(header, data):
    hj = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(hj)) + hj + data


def safetensors_seeds(out):
    rng = np.random.default_rng(2)
    w = lambda name, data: write(out, "safetensors", name, data)  # noqa: E731
    x = rng.standard_normal((3, 4)).astype(np.float32)
    w("f32.safetensors", st_bytes({"w": x}))
    w("f16_bf16.safetensors", st_bytes({"a": x.astype(np.float16), "b": mc.to_bf16_bits(x)}))
    w("ints.safetensors", st_bytes({"i32": np.arange(6, dtype=np.int32).reshape(2, 3),
                                    "i64": np.arange(3, dtype=np.int64), "f64": np.ones(2)}, metadata=False))
    small = {"U8": 1, "I8": 1, "BOOL": 1, "I16": 2, "F8_E4M3": 1, "F8_E5M2": 1}
    hdr, off = {"__metadata__": {"format": "pt", "note": "every small dtype"}}, 0
    for name, size in small.items():
        hdr[name.lower()] = {"dtype": name, "shape": [2, 2], "data_offsets": [off, off + 4 * size]}
        off += 4 * size
    w("small_dtypes.safetensors", st_raw(hdr, bytes(range(off))))
    w("scalar_and_empty.safetensors", st_raw({"s": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]},
                                              "z": {"dtype": "F32", "shape": [0, 3], "data_offsets": [4, 4]}},
                                             b"\0\0\x80\x3f"))
    w("no_tensors.safetensors", st_raw({"__metadata__": {"format": "pt"}}, b""))
    cfg = mc.make_config("mlp")
    cfg.update(vocab_size=8, hidden_size=4, intermediate_size=6, num_hidden_layers=1)
    tensors = {n: rng.standard_normal(s).astype(np.float32) for n, s, _ in mc.tensor_shapes(cfg)}
    w("mlp_tiny.safetensors", st_bytes(tensors))
    rank8 = {"r": {"dtype": "U8", "shape": [1] * 8, "data_offsets": [0, 1]}}
    w("rank8.safetensors", st_raw(rank8, b"\x07"))
    # near-valid
    good = st_bytes({"w": x, "v": x[:1]})
    w("near_truncated.safetensors", good[:-5])
    w("near_gap.safetensors", st_raw({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                                      "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}, b"\0" * 12))
    w("near_overlap.safetensors", st_raw({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                          "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8))
    dup = b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'
    w("near_dup_key.safetensors", struct.pack("<Q", len(dup)) + dup + b"\x01")
    w("near_big_shape.safetensors", st_raw({"a": {"dtype": "F64", "shape": [2**62, 4],
                                                  "data_offsets": [0, 8]}}, b"\0" * 8))


# ---- config.json ---------------------------------------------------------------------

def config_seeds(out):
    w = lambda name, text: write(out, "config", name, text)  # noqa: E731
    for shape in ("tiny", "hd48", "gqa3", "mlp"):
        for style in (("old", "new", "legacy") if shape != "mlp" else ("old",)):
            w(f"{shape}_{style}.json", json.dumps(mc.make_config(shape, "f32", style)))
    w("nested.json", '{"a": {"b": {"c": [1, 2.5, "x", null, true]}}, "a.b": 1, "": 0}')
    w("kinds.json", '{"i": -9223372036854775808, "f": 1e308, "s": "\\u00e9\\ud83d\\ude00", "n": null, '
      '"t": true, "o": {}, "l": []}')
    w("small_llama.json", json.dumps({
        "vocab_size": 16, "hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 1,
        "num_attention_heads": 2, "num_key_value_heads": 1, "rms_norm_eps": 1e-5,
        "tie_word_embeddings": True, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
                                                       "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                       "original_max_position_embeddings": 32}}))
    w("near_dup.json", '{"a": 1, "b": {"c": 1, "c": 2}}')
    w("near_array.json", "[1, 2, 3]")
    w("near_cut.json", '{"hidden_size": 32, "rope_scaling": {"fact')


# ---- tokenizer.json --------------------------------------------------------------------

TINY_HF = {
    "version": "1.0",
    "added_tokens": [{"id": 9, "content": "<|end|>", "special": True},
                     {"id": 10, "content": "<|im_start|>", "special": True},
                     {"id": 11, "content": "<|im_end|>", "special": True},
                     {"id": 12, "content": "[U]", "special": False}],
    "normalizer": None,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
    "post_processor": {"type": "ByteLevel"},
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "\u0120": 3, "ab": 4, "abc": 5, "\u0120a": 6,
                                       "\u00c3": 7, "\u00a9": 8},
              "merges": ["a b", ["ab", "c"], "\u0120 a", "a zz", "nospace", "", ["a"], [1, 2], "a  b", "b c"]},
}

TINY_SPM = {
    "added_tokens": [{"id": 0, "content": "<unk>", "special": True}, {"id": 1, "content": "<s>", "special": True},
                     {"id": 2, "content": "</s>", "special": True}],
    "normalizer": None,
    "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False},
    "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False},
    "model": {"type": "BPE", "byte_fallback": True, "unk_token": "<unk>",
              "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x41>": 3, "<0xC3>": 4, "\u2581": 5, "a": 6, "b": 7,
                        "\u2581a": 8, "ab": 9, "\u2581ab": 10},
              "merges": [["\u2581", "a"], ["a", "b"], ["\u2581a", "b"]]},
}

LLAMA3_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>"
                   "\n\n{{ m['content'] }}<|eot_id|>{% endfor %}")


def tokenizer_seeds(out):
    w = lambda name, data: write(out, "tokenizer", name, data)  # noqa: E731
    rd = lambda *p: open(os.path.join(TOK, *p), "rb").read()  # noqa: E731
    w("smollm2.json", rd("smollm2", "tokenizer.json"))
    w("smollm2_with_config.json", rd("smollm2", "tokenizer.json") + b"\0" + rd("smollm2", "tokenizer_config.json"))
    w("spm.json", rd("spm", "tokenizer.json"))
    w("tiny_bytelevel.json", json.dumps(TINY_HF))
    w("tiny_bytelevel_llama3.json", json.dumps(TINY_HF) + "\0" + json.dumps(
        {"bos_token": {"content": "<|im_start|>"}, "eos_token": "<|end|>", "add_bos_token": True,
         "chat_template": LLAMA3_TEMPLATE}))
    w("tiny_bytelevel_chatml.json", json.dumps(TINY_HF) + "\0" + json.dumps(
        {"eos_token": "<|im_end|>", "chat_template":
         "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are tiny.<|im_end|>\\n' }}"
         "{% endif %}{% for m in messages %}<|im_start|>{{ m['role'] }}{% endfor %}"}))
    w("tiny_spm_metaspace.json", json.dumps(TINY_SPM))
    spm_replace = dict(TINY_SPM, pre_tokenizer=None,
                       normalizer={"type": "Sequence", "normalizers": [
                           {"type": "Prepend", "prepend": "\u2581"},
                           {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]})
    w("tiny_spm_replace.json", json.dumps(spm_replace))
    for name, digits in (("llama3", "{1,3}"), ("qwen2", "")):
        regex = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}" + digits +
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
        split = dict(TINY_HF, pre_tokenizer={"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}]})
        w(f"tiny_split_{name}.json", json.dumps(split))
    w("near_not_bpe.json", json.dumps(dict(TINY_HF, model={"type": "WordPiece", "vocab": {}})))
    w("near_bad_id.json", json.dumps(dict(TINY_HF, added_tokens=[{"id": -1, "content": "x"}])))


# ---- specs -----------------------------------------------------------------------------

EXTRA_SPECS = {
    "every_op.mdl": """model every {
  param n = config("n", 4)
  param d = config("d", 8) * 2
  param h = n / 2 + n % 3 - 1
  param flag = n >= 4 && !(d == 3) || false
  input tokens : i32[seq]
  weight e : [n * 4, d] = "embed"
  weight g : [d] = "g"
  weight w : f16[d, d] = flag ? "w.{n}" : "v"
  weight u : bf16[d, d] = flag ? w : "u"
  x = embedding(e, tokens)
  repeat i < 2 {
    weight q : [d, d] = "q.{i}"
    y = rms_norm(x, g, 1e-5)
    a = split_heads(linear(y, q), 2)
    a = rope(a, theta: 10000.0, type: "llama3", factor: 8.0, low_freq: 1.0, high_freq: 4.0, orig_ctx: 64)
    x = x + merge_heads(attention(a, a, a, causal: true))
    x = x - silu(linear(x, w)) * linear(x, u)
    x = add(x, mul(x, sub(x, x)))
  }
  p = softmax(linear(x, e))
  output logits = p
  output ids = argmax(p)
}
""",
    "coalesce.mdl": """model c {
  param a = config("missing") ?? config("also.missing") ?? 3
  param b = config("x.y", a * 2)
  input t : i32[seq]
  weight e : [a, b] = "e"
  output o = embedding(e, t)
}
""",
    "deep_parens.mdl": "model p {\n  param a = " + "(" * 40 + "1" + ")" * 40 + "\n  input t : i32[seq]\n"
                       "  weight e : [a, 2] = \"e\"\n  output o = embedding(e, t)\n}\n",
    "unicode.mdl": "# caf\u00e9 \u2581 \U0001f600\nmodel u {\n  param x = 3\n  input t : i32[seq]\n\tweight e : [4, 4] = "
                   "\"\u00e9\\n\\\"{x}\"\n  output o = embedding(e, t)\n}\n",
}


def spec_seeds(out):
    for d in ("models", os.path.join("tests", "frontend", "errors")):
        for name in sorted(os.listdir(os.path.join(ROOT, d))):
            if name.endswith(".mdl"):
                with open(os.path.join(ROOT, d, name), "rb") as f:
                    write(out, "spec", name, f.read())
    for name, text in EXTRA_SPECS.items():
        write(out, "spec", name, text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fuzz", "corpus"))
    a = ap.parse_args()
    gguf_seeds(a.out)
    safetensors_seeds(a.out)
    config_seeds(a.out)
    tokenizer_seeds(a.out)
    spec_seeds(a.out)


if __name__ == "__main__":
    main()
