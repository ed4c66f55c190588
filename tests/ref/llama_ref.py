#!/usr/bin/env python3
"""NumPy reference for Llama-family models: HF LlamaForCausalLM semantics, in float64.

    llama_ref.py logits   --model DIR --tokens 1,2,3 --out FILE.npy [--precision f64|f32]
    llama_ref.py generate --model DIR --tokens 1,2,3 --max-new N [--precision f64|f32]
    llama_ref.py selftest

`logits` writes float32 logits [T, vocab], one row for every prompt position.  `generate`
prints the greedy continuation (N ids, space-separated, on one line: the same format as
`modelc run`).  `selftest` checks the reference against itself (see selftest()).

--model takes a Hugging Face checkpoint directory (config.json + model.safetensors, or
shards with model.safetensors.index.json) or a single .safetensors file with config.json
beside it.  Weights are read exactly as stored (F32/F16/BF16) and widened to float64.

Written from the math, not from transformers:
  x = embed[tokens]
  per layer:  h = rmsnorm(x, input_layernorm)        rmsnorm(x, w) = x / sqrt(mean(x^2) + eps) * w
              q, k, v = h Wq^T, h Wk^T, h Wv^T       split row-major into [T, H, head_dim]
              q, k = rope(q), rope(k)                HF rotate_half: pairs (j, j + hd/2)
              attention: scale 1/sqrt(hd), causal, q head h reads kv head h // (Hq/Hkv)
              x += merge_heads(attn) Wo^T
              h = rmsnorm(x, post_attention_layernorm)
              x += (silu(h Wgate^T) * (h Wup^T)) Wdown^T
  logits = rmsnorm(x, norm) head^T                   head = embed when tie_word_embeddings
RoPE: inv_freq[j] = theta^(-2j/hd), j < hd/2, optionally rescaled by llama3 rules; angle =
pos * inv_freq; out = x cos + rotate_half(x) sin with cos/sin repeated over both halves.
Positions continue across calls when a KVCache is passed (incremental decoding).

8-bit activations (Model.q8, {weight name: "Q8_0" | "Q4_0" | "Q4_1"}): a linear whose weight
is named there takes its input as llama.cpp's CPU code does for weights stored as those
ggml blocks (quantize_row_q8_1 of ggml's x86 code, written here from its definition): per
block of 32, d = max|x| / 127 and q = round-half-even(x * (127 / max|x|)) in float32, d
kept as a half; the product is sum_b d_w d_x (q_w . q_x), which equals x_hat W^T with
x_hat = half(d) q and W the dequantized weight, plus for Q4_1 the block offsets m times
s = half(d * sum q) in place of half(d) * sum q (m is each Q4_1 block's minimum: its q = 0
element).

The "mlp" family (tensors embed/layers.{i}.{norm,gate,up,down}/norm/head):
  x = embed[tokens]; per layer x += down(silu(gate(rmsnorm(x, norm_i))) * up(...));
  logits = rmsnorm(x, norm) head^T.
"""
import argparse
import json
import math
import os
import sys

import numpy as np


class CheckpointError(Exception):
    """A checkpoint that cannot be read; the message names the file."""


# ---- safetensors reading (independent of make_checkpoint's writer) -------------------

_ST_DTYPES = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
              "BF16": np.dtype("<u2"), "I64": np.dtype("<i8"), "I32": np.dtype("<i4")}


def read_safetensors(path):
    """{name: float64 array} from one safetensors file; CheckpointError if malformed."""
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read: {e.strerror}")
    if len(buf) < 8:
        raise CheckpointError(f"{path}: truncated (file is {len(buf)} bytes, no header)")
    n = int.from_bytes(buf[:8], "little")
    if 8 + n > len(buf):
        raise CheckpointError(f"{path}: truncated header ({n} bytes declared, {len(buf) - 8} present)")
    try:
        header = json.loads(buf[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: bad header JSON: {e}")
    data = memoryview(buf)[8 + n:]
    out = {}
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info.get("dtype")
        if dt not in _ST_DTYPES:
            raise CheckpointError(f"{path}: tensor {name}: unsupported dtype {dt!r}")
        shape = tuple(int(s) for s in info["shape"])
        b, e = (int(v) for v in info["data_offsets"])
        want = int(np.prod(shape, dtype=np.int64)) * _ST_DTYPES[dt].itemsize
        if e - b != want or b < 0:
            raise CheckpointError(f"{path}: tensor {name}: data_offsets [{b}, {e}] do not fit "
                                  f"shape {list(shape)} {dt}")
        if e > len(data):
            raise CheckpointError(f"{path}: truncated: tensor {name} needs bytes [{b}, {e}) "
                                  f"of {len(data)} data bytes")
        a = np.frombuffer(data[b:e], dtype=_ST_DTYPES[dt]).reshape(shape)
        if dt == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = a.astype(np.float64)
        spans.append((b, e, name))
    spans.sort()
    pos = 0
    for b, e, name in spans:
        if b != pos:
            raise CheckpointError(f"{path}: tensor {name}: data not contiguous (starts at {b}, "
                                  f"expected {pos})")
        pos = e
    if pos != len(data):
        raise CheckpointError(f"{path}: {len(data) - pos} trailing bytes after the last tensor")
    return out


def load_checkpoint(path):
    """(config dict, {name: float64 array}) from a checkpoint directory or .safetensors file."""
    if os.path.isdir(path):
        d = path
        idx = os.path.join(d, "model.safetensors.index.json")
        if os.path.exists(idx):
            try:
                with open(idx) as f:
                    wmap = json.load(f)["weight_map"]
            except (OSError, ValueError, KeyError) as e:
                raise CheckpointError(f"{idx}: bad index: {e}")
            files = sorted(set(wmap.values()))
        elif os.path.exists(os.path.join(d, "model.safetensors")):
            files, wmap = ["model.safetensors"], None
        else:
            files = sorted(f for f in os.listdir(d) if f.endswith(".safetensors"))
            wmap = None
            if not files:
                raise CheckpointError(f"{d}: no .safetensors files")
        files = [os.path.join(d, f) for f in files]
    else:
        d, files, wmap = os.path.dirname(path) or ".", [path], None
    cfg_path = os.path.join(d, "config.json")
    try:
        with open(cfg_path) as f:
            cfg = json.load(f)
    except OSError as e:
        raise CheckpointError(f"{cfg_path}: cannot read: {e.strerror}")
    except ValueError as e:
        raise CheckpointError(f"{cfg_path}: bad JSON: {e}")
    tensors = {}
    for fn in files:
        for k, v in read_safetensors(fn).items():
            if k in tensors:
                raise CheckpointError(f"{fn}: tensor {k} also in another shard")
            if wmap is not None and os.path.join(d, wmap.get(k, "")) != fn:
                raise CheckpointError(f"{fn}: tensor {k} not mapped to this file by the index")
            tensors[k] = v
    if wmap is not None:
        missing = sorted(set(wmap) - set(tensors))
        if missing:
            raise CheckpointError(f"{d}: index names tensors no shard holds: {missing[:3]}")
    return cfg, tensors


# ---- rope ----------------------------------------------------------------------------

def rope_settings(cfg):
    """(theta, rope_type, parameters dict) from either config layout."""
    rp = cfg.get("rope_parameters")
    if isinstance(rp, dict):                            # transformers >= 5
        theta = float(rp.get("rope_theta", cfg.get("rope_theta", 10000.0)))
        params = rp
    else:
        theta = float(cfg.get("rope_theta", 10000.0))
        params = cfg.get("rope_scaling") or {}
    rtype = params.get("rope_type", params.get("type", "default"))
    return theta, rtype, params


def llama3_scale(inv_freq, factor, low_freq_factor, high_freq_factor, original_max):
    wavelen = 2 * math.pi / inv_freq
    low_wl = original_max / low_freq_factor
    high_wl = original_max / high_freq_factor
    out = np.empty_like(inv_freq)
    for j, (f, wl) in enumerate(zip(inv_freq, wavelen)):
        if wl < high_wl:
            out[j] = f
        elif wl > low_wl:
            out[j] = f / factor
        else:
            s = (original_max / wl - low_freq_factor) / (high_freq_factor - low_freq_factor)
            out[j] = (1 - s) * f / factor + s * f
    return out


def rope_inv_freq(cfg, head_dim):
    theta, rtype, p = rope_settings(cfg)
    j = np.arange(head_dim // 2, dtype=np.float64)
    inv = theta ** (-2.0 * j / head_dim)
    if rtype == "default":
        return inv
    if rtype == "llama3":
        return llama3_scale(inv, float(p["factor"]), float(p["low_freq_factor"]),
                            float(p["high_freq_factor"]),
                            float(p["original_max_position_embeddings"]))
    raise CheckpointError(f"config.json: rope type {rtype!r} not supported by the reference")


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def apply_rope(x, pos, inv_freq):
    """x [H, T, hd] at positions pos [T] -> rotated x."""
    ang = np.outer(pos.astype(np.float64), inv_freq)          # [T, hd/2]
    ang = np.concatenate([ang, ang], axis=-1)                 # [T, hd]
    cos, sin = np.cos(ang).astype(x.dtype), np.sin(ang).astype(x.dtype)
    return x * cos + rotate_half(x) * sin


# ---- building blocks ----------------------------------------------------------------

def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def silu(x):
    return x * (0.5 * (1.0 + np.tanh(0.5 * x)))              # x * sigmoid(x), no overflow


def quantize_q8_1(x):
    """(half(d), half(s), q) of x [..., K] in blocks of 32, as float64 arrays [..., K/32(, 32)]."""
    xs = np.asarray(x, dtype=np.float32).reshape(*np.shape(x)[:-1], -1, 32)
    amax = np.abs(xs).max(-1)
    d = (amax / np.float32(127)).astype(np.float32)
    safe = np.where(amax != 0, amax, np.float32(1))
    inv = np.where(amax != 0, np.float32(127) / safe, np.float32(0)).astype(np.float32)
    q = np.rint((xs * inv[..., None]).astype(np.float32))          # round half to even, as vroundps
    s = (d * q.sum(-1, dtype=np.float32)).astype(np.float16)
    return d.astype(np.float16).astype(np.float64), s.astype(np.float64), q.astype(np.float64)


def q4_1_offsets(W):
    """Each Q4_1 block's offset m of a dequantized weight [N, K]: its minimum, [N, K/32]."""
    return W.astype(np.float64).reshape(W.shape[0], -1, 32).min(-1)


def q8_linear(h, W, wtype, m=None):
    """h W^T with h quantized to q8_1 blocks (see the module docstring); m: q4_1_offsets(W), if
    the caller keeps it."""
    dh, s, q = quantize_q8_1(h)
    y = (dh[..., None] * q).reshape(np.shape(h)) @ W.T.astype(np.float64)
    if wtype == "Q4_1":
        y = y + (s - dh * q.sum(-1)) @ (q4_1_offsets(W) if m is None else m).T
    return y.astype(np.asarray(h).dtype)


def softmax(s):
    m = np.max(s, axis=-1, keepdims=True)
    e = np.exp(s - m)
    return e / np.sum(e, axis=-1, keepdims=True)


class KVCache:
    def __init__(self, n_layers):
        self.k = [None] * n_layers
        self.v = [None] * n_layers
        self.length = 0


class Model:
    """A loaded model; forward() returns logits for every position of a chunk."""

    def __init__(self, cfg, tensors, precision="f64"):
        self.cfg = cfg
        self.dt = {"f64": np.float64, "f32": np.float32}[precision]
        W = {k: v.astype(self.dt) for k, v in tensors.items()}
        self.W = W
        self.q8 = {}
        self._q4_1_m = {}          # q4_1_offsets per weight name, once
        self.family = "llama" if "model.embed_tokens.weight" in W else "mlp"
        g = lambda k, d=None: cfg[k] if k in cfg else d
        self.V, self.D = int(cfg["vocab_size"]), int(cfg["hidden_size"])
        self.L = int(cfg["num_hidden_layers"])
        self.eps = float(g("rms_norm_eps", 1e-6))
        if self.family == "mlp":
            need = ["embed.weight", "norm.weight", "head.weight"]
            for i in range(self.L):
                need += [f"layers.{i}.{n}.weight" for n in ("norm", "gate", "up", "down")]
            self._need(need)
            self.embed, self.head = W["embed.weight"], W["head.weight"]
            self.head_name = "head.weight"
            self.norm = W["norm.weight"]
            return
        if g("hidden_act", "silu") != "silu":
            raise CheckpointError(f"config.json: hidden_act {cfg['hidden_act']!r} not supported")
        if g("attention_bias", False) or g("mlp_bias", False):
            raise CheckpointError("config.json: biases not supported by the reference")
        self.Hq = int(cfg["num_attention_heads"])
        self.Hkv = int(g("num_key_value_heads") or self.Hq)
        self.hd = int(g("head_dim") or self.D // self.Hq)
        if self.Hq % self.Hkv:
            raise CheckpointError("config.json: num_attention_heads not a multiple of num_key_value_heads")
        self.inv_freq = rope_inv_freq(cfg, self.hd)
        need = ["model.embed_tokens.weight", "model.norm.weight"]
        for i in range(self.L):
            p = f"model.layers.{i}."
            need += [p + n + ".weight" for n in (
                "input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                "self_attn.o_proj", "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj",
                "mlp.down_proj")]
        self.tied = bool(g("tie_word_embeddings", False))
        if not self.tied:
            need.append("lm_head.weight")
        self._need(need)
        self.embed = W["model.embed_tokens.weight"]
        self.head = self.embed if self.tied else W["lm_head.weight"]
        self.head_name = "model.embed_tokens.weight" if self.tied else "lm_head.weight"
        self.norm = W["model.norm.weight"]

    def _need(self, names):
        missing = [n for n in names if n not in self.W]
        if missing:
            raise CheckpointError(f"checkpoint lacks tensor {missing[0]}"
                                  + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))

    def lin(self, h, name):
        """h W^T for the weight named name (8-bit activations if self.q8 names it)."""
        t = self.q8.get(name)
        if t is None:
            return h @ self.W[name].T
        if t == "Q4_1" and name not in self._q4_1_m:
            self._q4_1_m[name] = q4_1_offsets(self.W[name])
        return q8_linear(h, self.W[name], t, self._q4_1_m.get(name))

    def new_cache(self):
        return KVCache(self.L)

    def forward(self, tokens, cache=None, probe=None):
        """Logits [T, V] for tokens; with a cache, continue after what it holds.

        probe, if given, is a list that receives each layer's attention probabilities."""
        tokens = np.asarray(tokens, dtype=np.int64)
        if tokens.ndim != 1 or tokens.size == 0:
            raise ValueError("tokens must be a non-empty 1-d sequence")
        if tokens.min() < 0 or tokens.max() >= self.V:
            raise ValueError(f"token id out of range [0, {self.V})")
        W, eps = self.W, self.eps
        x = self.embed[tokens]
        if self.family == "mlp":
            for i in range(self.L):
                p = f"layers.{i}."
                h = rmsnorm(x, W[p + "norm.weight"], eps)
                x = x + self.lin(silu(self.lin(h, p + "gate.weight")) * self.lin(h, p + "up.weight"), p + "down.weight")
            return self.lin(rmsnorm(x, self.norm, eps), self.head_name)
        T = len(tokens)
        pos0 = cache.length if cache is not None else 0
        pos = np.arange(pos0, pos0 + T)
        Hq, Hkv, hd = self.Hq, self.Hkv, self.hd
        group = Hq // Hkv
        scale = 1.0 / math.sqrt(hd)
        for i in range(self.L):
            p = f"model.layers.{i}."
            h = rmsnorm(x, W[p + "input_layernorm.weight"], eps)
            q = self.lin(h, p + "self_attn.q_proj.weight").reshape(T, Hq, hd).transpose(1, 0, 2)
            k = self.lin(h, p + "self_attn.k_proj.weight").reshape(T, Hkv, hd).transpose(1, 0, 2)
            v = self.lin(h, p + "self_attn.v_proj.weight").reshape(T, Hkv, hd).transpose(1, 0, 2)
            q = apply_rope(q, pos, self.inv_freq)
            k = apply_rope(k, pos, self.inv_freq)
            if cache is not None:
                if cache.k[i] is not None:
                    k = np.concatenate([cache.k[i], k], axis=1)
                    v = np.concatenate([cache.v[i], v], axis=1)
                cache.k[i], cache.v[i] = k, v
            S = k.shape[1]
            kk = np.repeat(k, group, axis=0)                   # q head h -> kv head h // group
            vv = np.repeat(v, group, axis=0)
            s = (q @ kk.transpose(0, 2, 1)) * self.dt(scale)   # [Hq, T, S]
            allowed = np.arange(S)[None, :] <= pos[:, None]    # key j visible to query at pos
            s = np.where(allowed[None], s, -np.inf)
            a = softmax(s)
            if probe is not None:
                probe.append(a)
            o = (a @ vv).transpose(1, 0, 2).reshape(T, Hq * hd)
            x = x + self.lin(o, p + "self_attn.o_proj.weight")
            h = rmsnorm(x, W[p + "post_attention_layernorm.weight"], eps)
            g_ = self.lin(h, p + "mlp.gate_proj.weight")
            u_ = self.lin(h, p + "mlp.up_proj.weight")
            x = x + self.lin(silu(g_) * u_, p + "mlp.down_proj.weight")
        if cache is not None:
            cache.length += T
        return self.lin(rmsnorm(x, self.norm, eps), self.head_name)

    def logits(self, tokens):
        """Logits for every position of tokens, one full (non-incremental) pass."""
        return self.forward(tokens, None)

    def generate(self, tokens, max_new):
        """Greedy continuation: (ids, prompt logits [T, V]).  Uses the KV cache (llama);
        the mlp family has no context, so each step is one token on its own."""
        cache = self.new_cache() if self.family == "llama" else None
        lg = self.forward(tokens, cache)
        prompt_logits = lg
        out = []
        for _ in range(max_new):
            t = int(np.argmax(lg[-1]))
            out.append(t)
            if len(out) == max_new:
                break
            lg = self.forward([t], cache)
        return out, prompt_logits


def load(path, precision="f64"):
    cfg, tensors = load_checkpoint(path)
    return Model(cfg, tensors, precision)


# ---- self-test ----------------------------------------------------------------------

def _naive_llama(cfg, W, tokens):
    """A second, loop-by-loop implementation: complex-number rope on (j, j+hd/2) pairs,
    explicit per-head, per-query attention.  Slow; used only on tiny inputs."""
    V, D, L = cfg["vocab_size"], cfg["hidden_size"], cfg["num_hidden_layers"]
    Hq = cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads", Hq)
    hd = cfg.get("head_dim") or D // Hq
    eps = cfg["rms_norm_eps"]
    inv = rope_inv_freq(cfg, hd)

    def norm(v, w):
        return w * v / math.sqrt(float(np.dot(v, v)) / len(v) + eps)

    def rope(vec, p):
        half = hd // 2
        z = (vec[:half] + 1j * vec[half:]) * np.exp(1j * p * inv)
        return np.concatenate([z.real, z.imag])

    T = len(tokens)
    xs = [W["model.embed_tokens.weight"][t].copy() for t in tokens]
    for i in range(L):
        pre = f"model.layers.{i}."
        Ks, Vs, Qs = [], [], []
        for t in range(T):
            h = norm(xs[t], W[pre + "input_layernorm.weight"])
            q = W[pre + "self_attn.q_proj.weight"] @ h
            k = W[pre + "self_attn.k_proj.weight"] @ h
            v = W[pre + "self_attn.v_proj.weight"] @ h
            Qs.append([rope(q[a * hd:(a + 1) * hd], t) for a in range(Hq)])
            Ks.append([rope(k[a * hd:(a + 1) * hd], t) for a in range(Hkv)])
            Vs.append([v[a * hd:(a + 1) * hd] for a in range(Hkv)])
        new = []
        for t in range(T):
            heads = []
            for a in range(Hq):
                kv = a * Hkv // Hq
                sc = [float(np.dot(Qs[t][a], Ks[u][kv])) / math.sqrt(hd) for u in range(t + 1)]
                m = max(sc)
                e = [math.exp(s - m) for s in sc]
                z = sum(e)
                heads.append(sum(e[u] / z * Vs[u][kv] for u in range(t + 1)))
            x = xs[t] + W[pre + "self_attn.o_proj.weight"] @ np.concatenate(heads)
            h = norm(x, W[pre + "post_attention_layernorm.weight"])
            g = W[pre + "mlp.gate_proj.weight"] @ h
            g = g / (1 + np.exp(-g))
            x = x + W[pre + "mlp.down_proj.weight"] @ (g * (W[pre + "mlp.up_proj.weight"] @ h))
            new.append(x)
        xs = new
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else W["lm_head.weight"]
    return np.stack([head @ norm(x, W["model.norm.weight"]) for x in xs])


def selftest(verbose=True):
    """Internal consistency checks of the reference and of make_checkpoint; returns
    the number of failures."""
    import tempfile
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import make_checkpoint as mc

    fails = []

    def check(name, ok, detail=""):
        if verbose:
            print(f"  {'ok  ' if ok else 'FAIL'} {name}{(': ' + detail) if detail else ''}")
        if not ok:
            fails.append(name)

    rng = np.random.default_rng(1234)
    # bf16 rounding: ties go to even, others to nearest
    f = np.array([1.0, 1.00390625, 1.01171875, 1.0 + 2 ** -8 + 2 ** -20, -3.5, 65504.0],
                 dtype=np.float32)
    bits = mc.to_bf16_bits(f)
    check("bf16 round-to-nearest-even", list(bits) == [0x3F80, 0x3F80, 0x3F82, 0x3F81, 0xC060, 0x4780],
          " ".join(f"{b:04x}" for b in bits))
    x = rng.standard_normal(10000).astype(np.float32)
    back = mc.from_bf16_bits(mc.to_bf16_bits(x)).astype(np.float64)
    err = np.abs(back - x) / np.abs(x)
    check("bf16 relative rounding error <= 2^-8", float(err.max()) <= 2 ** -8, f"{err.max():.3g}")

    # llama3 scaling: keeps high frequencies, divides low ones, smooth in between
    inv = 10000.0 ** (-np.arange(32) / 32.0)
    sc = llama3_scale(inv, 8.0, 1.0, 4.0, 64.0)
    wl = 2 * math.pi / inv
    hi, lo, mid = wl < 16, wl > 64, (wl >= 16) & (wl <= 64)
    check("llama3 keeps high-frequency components", np.array_equal(sc[hi], inv[hi]) and hi.any())
    check("llama3 divides low-frequency components", np.allclose(sc[lo], inv[lo] / 8, rtol=0, atol=0) and lo.any())
    r = sc[mid] / inv[mid]
    check("llama3 smooth ratios in (1/8, 1), rising with frequency",
          mid.any() and bool(np.all((r > 1 / 8) & (r < 1))) and bool(np.all(np.diff(r) < 0)))
    check("llama3 with factor 1 is the identity", np.allclose(llama3_scale(inv, 1.0, 1.0, 4.0, 64.0), inv, rtol=1e-15))

    # rope: a rotation (norm kept) whose dot products depend only on relative position
    q = rng.standard_normal((1, 1, 48))
    k = rng.standard_normal((1, 1, 48))
    inv48 = 500000.0 ** (-np.arange(24) * 2 / 48)
    d = lambda m, n: float(np.sum(apply_rope(q, np.array([m]), inv48) * apply_rope(k, np.array([n]), inv48)))
    check("rope keeps norms", abs(np.linalg.norm(apply_rope(q, np.array([37]), inv48)) - np.linalg.norm(q)) < 1e-12)
    check("rope dot product depends on m - n only", abs(d(5, 2) - d(40, 37)) < 1e-12 and abs(d(5, 2) - d(2, 5)) > 1e-6)
    check("rope at position 0 is the identity", np.allclose(apply_rope(q, np.array([0]), inv48), q, rtol=0, atol=0))
    s = softmax(rng.standard_normal((3, 7, 9)) * 30)
    check("softmax rows sum to 1", np.allclose(s.sum(-1), 1, rtol=0, atol=1e-14))

    with tempfile.TemporaryDirectory() as tmp:
        cases = [("tiny", "f32", 1, None), ("odd", "bf16", 1, None), ("hd48", "f16", 3, "old"),
                 ("gqa3", "bf16", 2, "new"), ("mistral", "f32", 1, "new"), ("mlp", "f16", 1, None)]
        for shape, dt, shards, style in cases:
            dd = os.path.join(tmp, f"{shape}-{dt}")
            cfg, w = mc.make(dd, shape, dt, seed=7, shards=shards, config_style=style)
            cfg2, w2 = load_checkpoint(dd)
            same = cfg == cfg2 and set(w) == set(w2) and all(np.array_equal(w[n], w2[n]) for n in w)
            check(f"{shape}/{dt}/{shards} shard(s): read back exactly what was written", same)
            if shards > 1:
                nfiles = len([f for f in os.listdir(dd) if f.endswith(".safetensors")])
                check(f"{shape}: {shards} shard files", nfiles == shards, str(nfiles))
            m = Model(cfg2, w2)
            V = m.V
            toks = rng.integers(0, V, size=9)
            full = m.logits(toks)
            check(f"{shape}: logits finite, shape [T, V]", full.shape == (9, V) and np.isfinite(full).all())
            spread = float(np.std(full))
            check(f"{shape}: logits spread out (std {spread:.2f})", spread > 0.3)
            if m.family == "mlp":
                one = np.concatenate([m.forward([t]) for t in toks])
                check("mlp: each position depends on its own token only", np.allclose(one, full, rtol=1e-13, atol=1e-12))
                continue
            # incremental: one token at a time, and uneven chunks, against the full pass
            c = m.new_cache()
            inc = np.concatenate([m.forward([t], c) for t in toks])
            check(f"{shape}: token-by-token with KV cache == full pass",
                  np.allclose(inc, full, rtol=1e-12, atol=1e-11), f"{np.abs(inc - full).max():.2g}")
            c = m.new_cache()
            ch = np.concatenate([m.forward(toks[:4], c), m.forward(toks[4:5], c), m.forward(toks[5:], c)])
            check(f"{shape}: chunked prefill == full pass", np.allclose(ch, full, rtol=1e-12, atol=1e-11))
            # causality: changing a later token leaves earlier rows alone
            t2 = toks.copy()
            t2[6] = (t2[6] + 1) % V
            f2 = m.logits(t2)
            check(f"{shape}: causal", np.array_equal(f2[:6], full[:6]) and not np.allclose(f2[6:], full[6:]))
            probe = []
            m.forward(toks, None, probe)
            check(f"{shape}: attention rows sum to 1, zero above the diagonal",
                  all(np.allclose(a.sum(-1), 1, atol=1e-13) and not np.triu(a[0], 1).any() for a in probe))
            # an independent loop-by-loop implementation
            nv = _naive_llama(cfg2, w2, toks[:6])
            check(f"{shape}: matches the loop-by-loop implementation",
                  np.allclose(nv, full[:6], rtol=1e-10, atol=1e-10), f"{np.abs(nv - full[:6]).max():.2g}")
            # GQA: repeating each kv head's weights into Hq heads changes nothing
            if m.Hkv != m.Hq:
                g = m.Hq // m.Hkv
                w3 = dict(w2)
                for i in range(m.L):
                    for pn in ("k_proj", "v_proj"):
                        n = f"model.layers.{i}.self_attn.{pn}.weight"
                        w3[n] = np.repeat(w2[n].reshape(m.Hkv, m.hd, m.D), g, axis=0).reshape(m.Hq * m.hd, m.D)
                m3 = Model(dict(cfg2, num_key_value_heads=m.Hq), w3)
                check(f"{shape}: GQA == MHA with repeated kv heads",
                      np.allclose(m3.logits(toks), full, rtol=1e-12, atol=1e-11))
            # generate: greedy ids are the argmax of a teacher-forced full pass
            ids, pl = m.generate(toks, 12)
            tf = m.logits(np.concatenate([toks, ids]))
            check(f"{shape}: greedy generate == argmax of the teacher-forced pass",
                  ids == [int(t) for t in tf[len(toks) - 1:-1].argmax(-1)] and np.array_equal(pl, full))
            # float32 precision stays within the e2e tolerance
            m32 = Model(cfg2, w2, "f32")
            rel = float(np.linalg.norm(m32.logits(toks) - full) / np.linalg.norm(full))
            check(f"{shape}: float32 pass within 1e-5 of float64", rel < 1e-5, f"{rel:.2g}")
        # config styles: old / legacy / new give the same model
        outs = []
        for style in ("old", "legacy", "new"):
            dd = os.path.join(tmp, f"hd48-{style}")
            mc.make(dd, "hd48", "f32", seed=3, config_style=style)
            outs.append(load(dd).logits([5, 9, 100, 3, 7, 1, 2, 8, 40, 41, 42, 43]))
        check("hd48: old, legacy and new config styles agree",
              np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2]))
        # llama3 scaling matters at the positions the tests use
        cfg, w = load_checkpoint(os.path.join(tmp, "hd48-old"))
        plain = dict(cfg, rope_scaling=None)
        toks = list(range(1, 45))
        a, b = Model(cfg, w).logits(toks), Model(plain, w).logits(toks)
        rel = float(np.linalg.norm(a - b) / np.linalg.norm(b))
        check("hd48: llama3 scaling changes logits at positions < 45", rel > 1e-2, f"rel diff {rel:.2g}")
        # a damaged file names itself
        dd = os.path.join(tmp, "tiny-f32")
        fn = os.path.join(dd, "model.safetensors")
        with open(fn, "r+b") as fh:
            fh.truncate(os.path.getsize(fn) - 100)
        try:
            load_checkpoint(dd)
            check("truncated file rejected", False)
        except CheckpointError as e:
            check("truncated file rejected, message names it", fn in str(e), str(e))
    print(f"selftest: {len(fails)} failed" + (f" ({', '.join(fails)})" if fails else ""))
    return len(fails)


# ---- command line ------------------------------------------------------------------

def parse_tokens(s):
    try:
        return [int(t) for t in s.split(",") if t.strip() != ""]
    except ValueError:
        raise SystemExit(f"llama_ref: bad --tokens {s!r} (want comma-separated ids)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = ap.add_subparsers(dest="cmd", required=True)
    p = sp.add_parser("logits", help="float32 logits [T, V] of every prompt position")
    p.add_argument("--model", required=True)
    p.add_argument("--tokens", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--precision", choices=("f64", "f32"), default="f64")
    p = sp.add_parser("generate", help="greedy continuation, ids on one line")
    p.add_argument("--model", required=True)
    p.add_argument("--tokens", required=True)
    p.add_argument("--max-new", type=int, default=32)
    p.add_argument("--precision", choices=("f64", "f32"), default="f64")
    sp.add_parser("selftest", help="internal consistency checks")
    a = ap.parse_args(argv)
    if a.cmd == "selftest":
        return 1 if selftest() else 0
    try:
        m = load(a.model, a.precision)
        toks = parse_tokens(a.tokens)
        if a.cmd == "logits":
            out = m.logits(toks).astype(np.float32)
            np.save(a.out, out)
            print(f"logits {out.shape} -> {a.out}", file=sys.stderr)
        else:
            ids, _ = m.generate(toks, a.max_new)
            print(" ".join(map(str, ids)))
    except (CheckpointError, ValueError) as e:
        print(f"llama_ref: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
