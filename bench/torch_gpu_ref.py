#!/usr/bin/env python3
"""torch_gpu_ref.py: the anchor of bench/train-gpu.sh, the same model as lm-train
trains (transformers' LlamaForCausalLM: RMSNorm, RoPE rotate-half, grouped-query
attention, SwiGLU, tied embeddings, padded vocabulary) written the way a PyTorch
user would for speed: bf16 autocast over fp32 weights, torch.compile,
scaled_dot_product_attention (flash attention), fused AdamW. Trains on random
tokens and prints one JSON line with tokens/s, MFU and warmup_s (the untimed
first steps, compilation included). torch.compile is regional by default:
each block and the head with the loss compiled on their own, so the identical
blocks compile once, which keeps both shapes inside gpu-check.sh's budget.

  python3 bench/torch_gpu_ref.py --shape 124m --batch 16 --steps 20
  python3 bench/torch_gpu_ref.py --device cpu --shape tiny --context 64 --batch 2 \
      --steps 2 --no-compile     (checks the script where no GPU is)

MFU counts 6 * parameters + 12 * layers * dim * context FLOPs per token (the
formula lm-train uses), parameters with the real vocabulary (50257), against
the peak bf16 rate of --peak (default 989e12, H100/H200 SXM).
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SHAPES = {  # layers, dim, heads, kv heads, ffn (common/model/config.h presets)
    "124m": (12, 768, 12, 12, 2048),
    "350m": (24, 1024, 16, 16, 2816),
    "tiny": (2, 64, 4, 4, 128),  # for checking the scripts, not a benchmark
}


class Block(nn.Module):
    def __init__(self, dim, heads, kv_heads, ffn, eps):
        super().__init__()
        self.heads, self.kv_heads, self.hd = heads, kv_heads, dim // heads
        self.ln1 = nn.RMSNorm(dim, eps=eps)
        self.qkv = nn.Linear(dim, dim + 2 * kv_heads * self.hd, bias=False)
        self.o = nn.Linear(dim, dim, bias=False)
        self.ln2 = nn.RMSNorm(dim, eps=eps)
        self.gate_up = nn.Linear(dim, 2 * ffn, bias=False)
        self.down = nn.Linear(ffn, dim, bias=False)

    def forward(self, x, cos, sin):
        B, T, C = x.shape
        h = self.ln1(x)
        q, k, v = self.qkv(h).split([C, self.kv_heads * self.hd, self.kv_heads * self.hd], dim=-1)
        q = q.view(B, T, self.heads, self.hd).transpose(1, 2)
        k = k.view(B, T, self.kv_heads, self.hd).transpose(1, 2)
        v = v.view(B, T, self.kv_heads, self.hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           enable_gqa=self.kv_heads != self.heads)
        x = x + self.o(a.transpose(1, 2).reshape(B, T, C))
        g, u = self.gate_up(self.ln2(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(g) * u)


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Llama(nn.Module):
    def __init__(self, vocab_padded, layers, dim, heads, kv_heads, ffn, context, theta=10000.0,
                 eps=1e-5):
        super().__init__()
        self.embed = nn.Embedding(vocab_padded, dim)
        self.blocks = nn.ModuleList(Block(dim, heads, kv_heads, ffn, eps) for _ in range(layers))
        self.norm = nn.RMSNorm(dim, eps=eps)
        self.head = nn.Linear(dim, vocab_padded, bias=False)
        self.head.weight = self.embed.weight  # tied
        hd = dim // heads
        inv = 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd)
        ang = torch.outer(torch.arange(context, dtype=torch.float32), inv)
        self.register_buffer("cos", ang.cos()[None, None], persistent=False)
        self.register_buffer("sin", ang.sin()[None, None], persistent=False)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
        nn.init.normal_(self.embed.weight, std=0.02)

    def forward(self, idx, targets, vocab):
        T = idx.shape[1]
        x = self.embed(idx)
        cos, sin = self.cos[:, :, :T], self.sin[:, :, :T]
        for b in self.blocks:
            x = b(x, cos, sin)
        return self.head_loss(x, targets, vocab)

    def head_loss(self, x, targets, vocab):
        logits = self.head(self.norm(x))[..., :vocab]  # padded rows never count
        return F.cross_entropy(logits.float().reshape(-1, vocab), targets.reshape(-1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="124m")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--context", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps (compilation)")
    ap.add_argument("--peak", type=float, default=989e12)
    ap.add_argument("--compile", choices=["regional", "full", "none"], default="regional",
                    help="regional: each block and the head/loss compiled on their own, so "
                    "that the identical blocks compile once (a fraction of full's time)")
    ap.add_argument("--no-compile", action="store_true", help="same as --compile none")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    a = ap.parse_args()

    torch.manual_seed(0)  # fixed: the same weights and tokens every run
    torch.backends.cuda.matmul.allow_tf32 = True
    dev = a.device
    cuda = dev == "cuda"
    L, d, h, kvh, ffn = SHAPES[a.shape]
    vp = (a.vocab + 127) // 128 * 128
    model = Llama(vp, L, d, h, kvh, ffn, a.context).to(dev)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=3e-4, betas=(0.9, 0.95), eps=1e-8, fused=cuda)
    mode = "none" if a.no_compile else a.compile
    step_fn_model = model
    if mode == "full":
        step_fn_model = torch.compile(model)
    elif mode == "regional":
        for b in model.blocks:
            b.compile()
        model.head_loss = torch.compile(model.head_loss)

    def step():
        x = torch.randint(0, a.vocab, (a.batch, a.context + 1), device=dev)
        with torch.autocast(dev, dtype=torch.bfloat16):
            loss = step_fn_model(x[:, :-1], x[:, 1:], a.vocab)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    def timed_step():  # seconds of one step, by CUDA events on the GPU
        if not cuda:
            t = time.perf_counter()
            loss = step()
            return time.perf_counter() - t, loss
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        loss = step()
        e.record()
        e.synchronize()
        return s.elapsed_time(e) / 1000.0, loss

    t0 = time.time()
    for _ in range(a.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
    warm_s = time.time() - t0
    times = []
    for _ in range(a.steps):
        dt, loss = timed_step()
        times.append(dt)
    times.sort()
    med = times[len(times) // 2]
    tps = a.batch * a.context / med
    params = a.vocab * d + L * (2 * d + d * d + 2 * kvh * (d // h) * d + d * d + 3 * d * ffn) + d
    flops_tok = 6 * params + 12 * L * d * a.context
    print(json.dumps({
        "impl": "torch", "shape": a.shape, "batch": a.batch, "context": a.context,
        "params": params, "step_s_median": med, "tokens_per_s": tps,
        "mfu": tps * flops_tok / a.peak, "warmup_s": warm_s, "compile": mode,
        "final_loss": float(loss),
        "gpu": torch.cuda.get_device_name(0) if cuda else "cpu", "torch": torch.__version__,
        "loss_finite": math.isfinite(float(loss)),
    }), flush=True)


if __name__ == "__main__":
    main()
