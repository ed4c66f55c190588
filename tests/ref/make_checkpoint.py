#!/usr/bin/env python3
"""Random-weight Hugging Face-style checkpoints, written with NumPy alone.

    make_checkpoint.py --out DIR --shape NAME --dtype f32|f16|bf16 [--seed S]
                       [--shards N] [--config-style old|new|legacy] [--no-metadata]

writes DIR/config.json and DIR/model.safetensors, or, with --shards N > 1, the shards
model-0000K-of-0000N.safetensors and model.safetensors.index.json, the way
transformers' save_pretrained lays them out.  Every tensor is drawn in float64, rounded
to float32 and then to the stored dtype (f16: IEEE round-to-nearest-even; bf16: the top
16 bits of the float32, round-to-nearest-even), so what is on disk is exactly what
make() returns as float64 arrays.

Shapes (SHAPES below) are small Llama-family models for the end-to-end tests, one
benchmark shape (smollm2-135m), and the non-attention "mlp" family.  Config styles, for
the rope settings: "old" writes a top-level rope_theta and, for llama3 scaling,
rope_scaling {"rope_type": "llama3", ...}; "legacy" is "old" with the older key "type";
"new" is the transformers >= 5 layout, rope_parameters {"rope_type": ..., "rope_theta":
...} and no top-level rope_theta.  Without --config-style a shape uses its own default.

Init: linear weights N(0,1)/sqrt(fan_in), embeddings N(0,1), norm weights U(0.5,1.5), so
activations stay O(1) and logits are spread out (few near-ties in greedy decoding).
Tied shapes draw embeddings N(0, 0.05^2) instead: with N(0,1) each token's own embedding
dominates the residual stream and, the head being the embedding, greedy decoding just
repeats the last prompt token (rmsnorm makes the first layer see the same input either way).

Importable: make(out, shape, dtype, seed, shards=1, config_style=None, metadata=True)
returns (config, {name: float64 array}); write_safetensors(path, {name: array}) and
to_bf16_bits / from_bf16_bits are exposed for other tests.
"""
import argparse
import json
import os
import sys

import numpy as np


# Each shape: the model dimensions plus how its config is written.
#   rope3        llama3 rope-scaling parameters (factor, low, high, original max)
#   style        default config style
#   head_dim_key write head_dim into config.json even when it equals hidden/heads
SHAPES = {
    "tiny": dict(family="llama", vocab_size=512, hidden_size=128, intermediate_size=344,
                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
                 max_position_embeddings=256, style="old"),
    "odd": dict(family="llama", vocab_size=1000, hidden_size=96, intermediate_size=200,
                num_hidden_layers=3, num_attention_heads=3, num_key_value_heads=1,
                rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
                max_position_embeddings=256, style="old", embed_std=0.05),
    # head_dim 48 != 128/4: q/k/v are wider than the model.  llama3 scaling with
    # original_max_position_embeddings 64 (wavelengths 6.3 and 10.9 keep, 18.8..56 are
    # smoothed, >= 97 are divided by 8) so the positions the tests use see it.
    "hd48": dict(family="llama", vocab_size=777, hidden_size=128, intermediate_size=256,
                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, head_dim=48,
                 rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
                 max_position_embeddings=256, style="old",
                 rope3=dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                            original_max_position_embeddings=64)),
    # 6 query heads over 2 kv heads of dim 20; llama3 scaling with non-default low/high
    # factors (2, 8; orig 96: wavelength 6.3 keeps, 15.8 and 39.7 are smoothed, >= 100
    # divided by 4).
    "gqa3": dict(family="llama", vocab_size=640, hidden_size=120, intermediate_size=312,
                 num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2, head_dim=20,
                 head_dim_key=True, rope_theta=10000.0, rms_norm_eps=1e-5,
                 tie_word_embeddings=False, max_position_embeddings=256, style="new",
                 rope3=dict(factor=4.0, low_freq_factor=2.0, high_freq_factor=8.0,
                            original_max_position_embeddings=96)),
    "mistral": dict(family="llama", vocab_size=1024, hidden_size=128, intermediate_size=384,
                    num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2,
                    head_dim=16, head_dim_key=True, rope_theta=1000000.0, rms_norm_eps=1e-5,
                    tie_word_embeddings=False, max_position_embeddings=512, style="old"),
    "smollm2-135m": dict(family="llama", vocab_size=49152, hidden_size=576, intermediate_size=1536,
                         num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                         rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
                         max_position_embeddings=8192, style="old", embed_std=0.05),
    "mlp": dict(family="mlp", vocab_size=64, hidden_size=32, intermediate_size=48,
                num_hidden_layers=2, rms_norm_eps=1e-5),
}

DTYPES = {"f32": ("F32", "float32"), "f16": ("F16", "float16"), "bf16": ("BF16", "bfloat16")}
STYLES = ("old", "new", "legacy")


# ---- dtype rounding ----------------------------------------------------------------

def to_bf16_bits(x):
    """float32 array -> uint16 bfloat16 bit patterns, round-to-nearest-even."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    r = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    r = np.where(nan, (u >> 16) | 0x40, r)          # keep NaNs quiet NaNs
    return r.astype(np.uint16)


def from_bf16_bits(b):
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def round_to(x, dtype):
    """float64/32 array -> (storage array to write, float64 array of the stored values)."""
    f32 = np.asarray(x, dtype=np.float32)
    if dtype == "f32":
        store = f32
        val = f32
    elif dtype == "f16":
        store = f32.astype(np.float16)
        val = store.astype(np.float32)
    elif dtype == "bf16":
        store = to_bf16_bits(f32)
        val = from_bf16_bits(store)
    else:
        raise ValueError(f"unknown dtype {dtype!r} (want f32, f16 or bf16)")
    return store, val.astype(np.float64)


# ---- safetensors -------------------------------------------------------------------

def _st_dtype(arr, dtype_hint=None):
    if dtype_hint:
        return dtype_hint
    return {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
            np.dtype(np.uint16): "BF16", np.dtype(np.int32): "I32",
            np.dtype(np.int64): "I64", np.dtype(np.float64): "F64"}[arr.dtype]


def write_safetensors(path, tensors, metadata=True, dtypes=None):
    """Write {name: array} (uint16 arrays are taken as BF16 bits) to a safetensors file.

    Header: 8-byte little-endian length, then JSON with the tensors sorted by name and
    their data contiguous in that order, padded with spaces to a multiple of 8."""
    dtypes = dtypes or {}
    header = {}
    if metadata:
        header["__metadata__"] = {"format": "pt"}
    off = 0
    names = sorted(tensors)
    for n in names:
        a = tensors[n]
        nbytes = a.size * a.itemsize
        header[n] = {"dtype": _st_dtype(a, dtypes.get(n)), "shape": list(a.shape),
                     "data_offsets": [off, off + nbytes]}
        off += nbytes
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * (-len(hj) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(len(hj).to_bytes(8, "little"))
        f.write(hj)
        for n in names:
            a = np.ascontiguousarray(tensors[n])
            f.write(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
    os.replace(tmp, path)
    return off


# ---- model description ---------------------------------------------------------------

def tensor_shapes(cfg):
    """Ordered [(name, shape, kind)] of a config; kind in embed|linear|norm."""
    V, D, F, L = (cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"],
                  cfg["num_hidden_layers"])
    out = []
    if "num_attention_heads" not in cfg:            # mlp family
        out.append(("embed.weight", (V, D), "embed"))
        for i in range(L):
            p = f"layers.{i}."
            out += [(p + "norm.weight", (D,), "norm"), (p + "gate.weight", (F, D), "linear"),
                    (p + "up.weight", (F, D), "linear"), (p + "down.weight", (D, F), "linear")]
        out += [("norm.weight", (D,), "norm"), ("head.weight", (V, D), "linear")]
        return out
    Hq = cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads", Hq)
    hd = cfg.get("head_dim") or D // Hq
    out.append(("model.embed_tokens.weight", (V, D), "embed"))
    for i in range(L):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", (D,), "norm"),
                (p + "self_attn.q_proj.weight", (Hq * hd, D), "linear"),
                (p + "self_attn.k_proj.weight", (Hkv * hd, D), "linear"),
                (p + "self_attn.v_proj.weight", (Hkv * hd, D), "linear"),
                (p + "self_attn.o_proj.weight", (D, Hq * hd), "linear"),
                (p + "post_attention_layernorm.weight", (D,), "norm"),
                (p + "mlp.gate_proj.weight", (F, D), "linear"),
                (p + "mlp.up_proj.weight", (F, D), "linear"),
                (p + "mlp.down_proj.weight", (D, F), "linear")]
    out.append(("model.norm.weight", (D,), "norm"))
    if not cfg.get("tie_word_embeddings", False):
        out.append(("lm_head.weight", (V, D), "linear"))
    return out


def make_config(shape, dtype="f32", config_style=None):
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r} (known: {', '.join(SHAPES)})")
    s = SHAPES[shape]
    if s["family"] == "mlp":
        return {k: s[k] for k in ("vocab_size", "hidden_size", "intermediate_size",
                                  "num_hidden_layers", "rms_norm_eps")}
    style = config_style or s["style"]
    if style not in STYLES:
        raise ValueError(f"unknown config style {style!r} (want {', '.join(STYLES)})")
    D, Hq = s["hidden_size"], s["num_attention_heads"]
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
           "vocab_size": s["vocab_size"], "hidden_size": D,
           "intermediate_size": s["intermediate_size"],
           "num_hidden_layers": s["num_hidden_layers"], "num_attention_heads": Hq,
           "num_key_value_heads": s["num_key_value_heads"]}
    hd = s.get("head_dim", D // Hq)
    if hd != D // Hq or s.get("head_dim_key") or D % Hq:
        cfg["head_dim"] = hd
    cfg.update({"hidden_act": "silu", "rms_norm_eps": s["rms_norm_eps"],
                "max_position_embeddings": s["max_position_embeddings"],
                "tie_word_embeddings": s["tie_word_embeddings"],
                "attention_bias": False, "attention_dropout": 0.0, "mlp_bias": False,
                "initializer_range": 0.02, "use_cache": True})
    theta = s["rope_theta"]
    r3 = s.get("rope3")
    if style == "new":
        rp = {"rope_type": "llama3" if r3 else "default", "rope_theta": theta}
        if r3:
            rp.update(r3)
        cfg["rope_parameters"] = rp
        cfg["dtype"] = DTYPES[dtype][1]
        cfg["transformers_version"] = "5.0.0"
    else:
        cfg["rope_theta"] = theta
        if r3:
            key = "type" if style == "legacy" else "rope_type"
            cfg["rope_scaling"] = dict({key: "llama3"}, **r3)
        else:
            cfg["rope_scaling"] = None
        cfg["pretraining_tp"] = 1
        cfg["torch_dtype"] = DTYPES[dtype][1]
        cfg["transformers_version"] = "4.46.0"
    return cfg


def random_weights(cfg, dtype, seed, embed_std=1.0):
    """{name: (storage array, float64 values)} for a config, deterministic in seed."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shp, kind in tensor_shapes(cfg):
        if kind == "norm":
            w = rng.uniform(0.5, 1.5, size=shp)
        elif kind == "embed":
            w = rng.standard_normal(shp) * embed_std
        else:
            w = rng.standard_normal(shp) / np.sqrt(shp[-1])
        out[name] = round_to(w, dtype)
    return out


def _split_shards(names, sizes, n):
    """Contiguous groups of names, about equal bytes each, none empty."""
    n = max(1, min(n, len(names)))
    total = sum(sizes[x] for x in names)
    groups, cur, acc = [], [], 0
    for i, x in enumerate(names):
        left_names = len(names) - i
        left_groups = n - len(groups)
        if cur and (acc + sizes[x] > total * (len(groups) + 1) / n or left_names < left_groups):
            groups.append(cur)
            cur = []
        cur.append(x)
        acc += sizes[x]
    groups.append(cur)
    while len(groups) < n:                      # split the largest group if we came up short
        i = max(range(len(groups)), key=lambda k: len(groups[k]))
        g = groups[i]
        groups[i:i + 1] = [g[:len(g) // 2], g[len(g) // 2:]]
    return groups


def make(out, shape, dtype="f32", seed=0, shards=1, config_style=None, metadata=True):
    """Write a checkpoint to directory `out`; return (config, {name: float64 array})."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r} (want f32, f16 or bf16)")
    cfg = make_config(shape, dtype, config_style)
    w = random_weights(cfg, dtype, seed, SHAPES[shape].get("embed_std", 1.0))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    st_dtype = DTYPES[dtype][0]
    store = {n: v[0] for n, v in w.items()}
    dts = {n: st_dtype for n in store}
    if shards <= 1:
        write_safetensors(os.path.join(out, "model.safetensors"), store, metadata, dts)
    else:
        order = [n for n, _, _ in tensor_shapes(cfg)]
        sizes = {n: store[n].nbytes for n in order}
        groups = _split_shards(order, sizes, shards)
        wmap, total = {}, 0
        for k, g in enumerate(groups):
            fn = f"model-{k + 1:05d}-of-{len(groups):05d}.safetensors"
            total += write_safetensors(os.path.join(out, fn), {n: store[n] for n in g},
                                       metadata, dts)
            wmap.update({n: fn for n in g})
        with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total},
                       "weight_map": {n: wmap[n] for n in sorted(wmap)}}, f, indent=2)
            f.write("\n")
    return cfg, {n: v[1] for n, v in w.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--shape", required=True, choices=sorted(SHAPES))
    ap.add_argument("--dtype", default="f32", choices=sorted(DTYPES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--config-style", choices=STYLES, default=None)
    ap.add_argument("--no-metadata", action="store_true",
                    help="leave __metadata__ out of the safetensors header")
    a = ap.parse_args(argv)
    cfg, w = make(a.out, a.shape, a.dtype, a.seed, a.shards, a.config_style, not a.no_metadata)
    n = sum(v.size for v in w.values())
    print(f"{a.shape} {a.dtype} seed {a.seed}: {n / 1e6:.2f}M params, {len(w)} tensors -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
