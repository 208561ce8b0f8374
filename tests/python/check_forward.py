#!/usr/bin/env python3
"""check_forward.py: an independent NumPy implementation of Hugging Face
transformers' LlamaForCausalLM forward pass, to check the logits lm computes.

Written from transformers' modeling_llama.py (LlamaRMSNorm, LlamaRotaryEmbedding
with rotate_half, repeat_kv, eager attention with a causal mask, LlamaMLP),
not from lm's C++. Reads a checkpoint directory's model.safetensors and
config.json with nothing but the standard library and NumPy, runs the model in
float64 on the given token ids, and compares with the logits lm wrote.

  check_forward.py DIR --tokens ids.i32 --batch B --logits logits.f32 [--tol 1e-4]
  check_forward.py DIR --tokens ids.i32 --batch B --loss X [--tol 1e-4]

ids.i32 holds B*T little-endian int32 ids; logits.f32 holds B*T*vocab_size
little-endian float32 logits (row (b*T+t)). Exit 0 when every logit agrees within
tol * max(1, max |logit|), 1 when not, 2 on bad input. Prints the largest difference.
With --loss instead of --logits (for a trained checkpoint, whose logits no tool
writes): X is the mean loss in nats of predicting ids[b, t+1] from ids[b, :t+1]
for every row b and t < T-1, as lm-eval --json reports it for one window a row
(--context T-1); it must agree within tol * max(1, loss).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "BF16": "bf16",
          "I32": np.int32, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        if not (0 <= begin <= end <= len(data)):
            raise ValueError(f"{path}: {name}: data_offsets {begin},{end} outside the data")
        dt = DTYPES.get(info["dtype"])
        if dt is None:
            raise ValueError(f"{path}: {name}: unsupported dtype {info['dtype']}")
        buf = data[begin:end]
        if dt == "bf16":  # bfloat16: the high half of a float32
            a = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            a = a.view(np.float32)
        else:
            a = np.frombuffer(buf, dtype=np.dtype(dt).newbyteorder("<"))
        out[name] = a.reshape(info["shape"]).astype(np.float64)
    return out


def rms_norm(x, w, eps):
    # LlamaRMSNorm: x * rsqrt(mean(x^2) + eps), then weight * x.
    var = np.mean(x * x, axis=-1, keepdims=True)
    return w * (x / np.sqrt(var + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def rope_cos_sin(T, hd, theta):
    # LlamaRotaryEmbedding (default rope type): inv_freq = 1 / theta^(arange(0, hd, 2) / hd),
    # freqs = positions x inv_freq, emb = cat(freqs, freqs).
    inv_freq = 1.0 / (theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    freqs = np.outer(np.arange(T, dtype=np.float64), inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    return np.cos(emb), np.sin(emb)


def llama_forward(w, cfg, ids):
    B, T = ids.shape
    D = cfg["hidden_size"]
    H = cfg["num_attention_heads"]
    KVH = cfg.get("num_key_value_heads") or H
    hd = cfg.get("head_dim") or D // H
    eps = cfg.get("rms_norm_eps", 1e-6)
    theta = cfg.get("rope_theta", 10000.0)
    L = cfg["num_hidden_layers"]
    n_rep = H // KVH

    x = w["model.embed_tokens.weight"][ids]  # (B,T,D)
    cos, sin = rope_cos_sin(T, hd, theta)  # (T,hd)
    mask = np.triu(np.full((T, T), -np.inf), k=1)
    for i in range(L):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(B, T, H, hd).transpose(0, 2, 1, 3)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(B, T, KVH, hd).transpose(0, 2, 1, 3)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(B, T, KVH, hd).transpose(0, 2, 1, 3)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # repeat_kv: kv head j serves query heads j*n_rep .. j*n_rep + n_rep - 1.
        k = np.repeat(k, n_rep, axis=1)
        v = np.repeat(v, n_rep, axis=1)
        s = q @ k.transpose(0, 1, 3, 2) * (hd ** -0.5) + mask
        s = s - s.max(axis=-1, keepdims=True)
        pr = np.exp(s)
        pr = pr / pr.sum(axis=-1, keepdims=True)
        a = (pr @ v).transpose(0, 2, 1, 3).reshape(B, T, H * hd)
        x = x + a @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        g = h @ w[p + "mlp.gate_proj.weight"].T
        u = h @ w[p + "mlp.up_proj.weight"].T
        x = x + ((g / (1.0 + np.exp(-g))) * u) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    if "lm_head.weight" in w:
        head = w["lm_head.weight"]
    elif cfg.get("tie_word_embeddings", False):
        head = w["model.embed_tokens.weight"]
    else:
        raise ValueError("no lm_head.weight and tie_word_embeddings is false")
    return x @ head.T  # (B,T,vocab)


def check_loss(logits, ids, got, tol):
    """The mean cross-entropy of each row's next ids against `got`."""
    z = logits[:, :-1, :]
    z = z - z.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    tgt = ids[:, 1:]
    want = float(-np.take_along_axis(logp, tgt[..., None], axis=-1).mean())
    print(f"check_forward.py: {tgt.size} targets, mean loss {want:.7g} (reference) vs {got:.7g} "
          f"(given), difference {abs(want - got):.3g}")
    if abs(want - got) > tol * max(1.0, abs(want)):
        print("check_forward.py: MISMATCH of the mean loss", file=sys.stderr)
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", help="directory holding model.safetensors and config.json")
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--logits")
    ap.add_argument("--loss", type=float)
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    if (a.logits is None) == (a.loss is None):
        print("check_forward.py: give --logits or --loss (one of them)", file=sys.stderr)
        return 2
    try:
        with open(os.path.join(a.dir, "config.json")) as f:
            cfg = json.load(f)
        for key in ("rope_scaling",):
            if cfg.get(key):
                raise ValueError(f"config.json: {key} is not supported by this checker")
        if cfg.get("hidden_act", "silu") != "silu":
            raise ValueError("config.json: hidden_act must be silu")
        w = read_safetensors(os.path.join(a.dir, "model.safetensors"))
        ids = np.fromfile(a.tokens, dtype="<i4")
        if ids.size == 0 or ids.size % a.batch:
            raise ValueError(f"{a.tokens}: {ids.size} ids do not split into {a.batch} rows")
        ids = ids.reshape(a.batch, -1)
        V = cfg["vocab_size"]
        if ids.min() < 0 or ids.max() >= V:
            raise ValueError(f"{a.tokens}: ids outside [0, {V})")
        if w["model.embed_tokens.weight"].shape[0] != V:
            raise ValueError(f"embedding has {w['model.embed_tokens.weight'].shape[0]} rows, "
                             f"config.json says vocab_size {V}")
        if a.logits is not None:
            got = np.fromfile(a.logits, dtype="<f4").astype(np.float64)
            if got.size != ids.size * V:
                raise ValueError(f"{a.logits}: {got.size} floats, expected {ids.size} x {V}")
        elif ids.shape[1] < 2:
            raise ValueError(f"{a.tokens}: --loss needs at least 2 ids a row")
    except (OSError, ValueError, KeyError) as e:
        print(f"check_forward.py: {e}", file=sys.stderr)
        return 2
    if a.loss is not None:
        return check_loss(llama_forward(w, cfg, ids), ids, a.loss, a.tol)
    want = llama_forward(w, cfg, ids).reshape(-1)
    diff = np.abs(want - got)
    scale = max(1.0, float(np.abs(want).max()))
    worst = int(diff.argmax())
    print(f"check_forward.py: {ids.size} positions x {V} logits, max |logit| {np.abs(want).max():.4g}, "
          f"max difference {diff[worst]:.3g} at position {worst // V} token {worst % V}")
    if diff[worst] > a.tol * scale:
        print(f"check_forward.py: MISMATCH: ours {got[worst]:.7g}, reference {want[worst]:.7g}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
