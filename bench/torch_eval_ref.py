#!/usr/bin/env python3
"""torch_eval_ref.py: the anchor of bench/eval-sample.sh: a PyTorch (CPU, fp32)
implementation of the model (transformers' LlamaForCausalLM, written out so that
only torch is needed) that reads one of our checkpoints (config.json +
model.safetensors) and evaluates a token stream (docs/formats/tokens.md) with
lm-eval's consecutive windows (docs/eval.md, stride = context).

Prints one JSON line: loss (mean nats per target), targets, seconds,
tokens_per_second.

  torch_eval_ref.py --ckpt RUN/step-N --tokens val.tok [--context T] [--batch B] [--threads N]
"""
import argparse
import json
import math
import os
import sys
import time

import torch

from lm_files import read_safetensors, read_token_stream


class Llama:
    def __init__(self, cfg, w):
        self.cfg, self.w = cfg, w
        self.L = cfg["num_hidden_layers"]
        self.H = cfg["num_attention_heads"]
        self.KV = cfg.get("num_key_value_heads", self.H)
        self.D = cfg["hidden_size"]
        self.hd = self.D // self.H
        self.eps = cfg.get("rms_norm_eps", 1e-5)
        theta = cfg.get("rope_theta", 10000.0)
        ctx = cfg["max_position_embeddings"]
        inv = 1.0 / (theta ** (torch.arange(0, self.hd, 2, dtype=torch.float32) / self.hd))
        f = torch.outer(torch.arange(ctx, dtype=torch.float32), inv)
        emb = torch.cat([f, f], dim=-1)
        self.cos, self.sin = emb.cos(), emb.sin()
        self.head = w.get("lm_head.weight", w["model.embed_tokens.weight"])

    def norm(self, x, weight):
        var = x.pow(2).mean(-1, keepdim=True)
        return x * torch.rsqrt(var + self.eps) * weight

    @staticmethod
    def rotate_half(x):
        h = x.shape[-1] // 2
        return torch.cat([-x[..., h:], x[..., :h]], dim=-1)

    def logits(self, ids):
        B, T = ids.shape
        w, p = self.w, "model.layers."
        x = w["model.embed_tokens.weight"][ids]
        cos, sin = self.cos[:T], self.sin[:T]
        mask = torch.full((T, T), float("-inf")).triu(1)
        for i in range(self.L):
            q_in = self.norm(x, w[f"{p}{i}.input_layernorm.weight"])
            q = (q_in @ w[f"{p}{i}.self_attn.q_proj.weight"].T).view(B, T, self.H, self.hd).transpose(1, 2)
            k = (q_in @ w[f"{p}{i}.self_attn.k_proj.weight"].T).view(B, T, self.KV, self.hd).transpose(1, 2)
            v = (q_in @ w[f"{p}{i}.self_attn.v_proj.weight"].T).view(B, T, self.KV, self.hd).transpose(1, 2)
            q = q * cos + self.rotate_half(q) * sin
            k = k * cos + self.rotate_half(k) * sin
            if self.KV != self.H:
                k = k.repeat_interleave(self.H // self.KV, dim=1)
                v = v.repeat_interleave(self.H // self.KV, dim=1)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask
            y = torch.softmax(att, dim=-1) @ v
            y = y.transpose(1, 2).reshape(B, T, self.D)
            x = x + y @ w[f"{p}{i}.self_attn.o_proj.weight"].T
            h = self.norm(x, w[f"{p}{i}.post_attention_layernorm.weight"])
            g = h @ w[f"{p}{i}.mlp.gate_proj.weight"].T
            u = h @ w[f"{p}{i}.mlp.up_proj.weight"].T
            x = x + (torch.nn.functional.silu(g) * u) @ w[f"{p}{i}.mlp.down_proj.weight"].T
        x = self.norm(x, w["model.norm.weight"])
        return x @ self.head.T


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--context", type=int, default=0)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--limit-tokens", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = json.load(open(os.path.join(a.ckpt, "config.json")))
    weights = read_safetensors(os.path.join(a.ckpt, "model.safetensors"))
    model = Llama(cfg, {k: torch.from_numpy(v) for k, v in weights.items()})
    toks = read_token_stream(a.tokens)
    if a.limit_tokens:
        toks = toks[: a.limit_tokens]
    N = len(toks)
    T = a.context or cfg["max_position_embeddings"]
    # Consecutive windows: window k holds tokens [kT, min(kT + T + 1, N)).
    windows = []
    b = 0
    while True:
        e = min(b + T + 1, N)
        windows.append((b, e))
        if e == N:
            break
        b += T
    width = windows[0][1] - windows[0][0] - 1
    total, count = 0.0, 0
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(windows), a.batch):
            group = windows[i : i + a.batch]
            inp = torch.zeros((len(group), width), dtype=torch.long)
            tgt = torch.full((len(group), width), -100, dtype=torch.long)
            for r, (b, e) in enumerate(group):
                seg = torch.from_numpy(toks[b:e])
                inp[r, : e - b - 1] = seg[:-1]
                tgt[r, : e - b - 1] = seg[1:]
            lg = model.logits(inp)
            loss = torch.nn.functional.cross_entropy(
                lg.reshape(-1, lg.shape[-1]), tgt.reshape(-1), ignore_index=-100, reduction="none"
            )
            sel = tgt.reshape(-1) >= 0
            total += loss[sel].double().sum().item()
            count += int(sel.sum().item())
    secs = time.perf_counter() - t0
    print(json.dumps({"loss": total / count, "targets": count, "seconds": secs,
                      "tokens_per_second": count / secs, "threads": torch.get_num_threads(),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    sys.exit(main())
