#!/usr/bin/env python3
"""torch_ref_model.py: the PyTorch anchor of bench/train-cpu.sh.

A Llama model written out here in plain PyTorch (the architecture lm trains
and transformers' LlamaForCausalLM computes: RMSNorm, rotate-half RoPE,
grouped-query attention without biases, SwiGLU MLP, tied or untied head), the
same initialisation, AdamW with decoupled weight decay on matrices only,
global-norm clipping and the same warmup-stable-decay schedule. It reads lm's
files directly (token streams, tok.bpe, model.safetensors) so that no other
package is needed than Debian's python3-torch.

  torch_ref_model.py speed   --vocab-size V [shape] --micro-batch B --steps N
      tokens/s of forward+backward+AdamW on random tokens (first step excluded)
  torch_ref_model.py quality --train train.tok --val val.tok --tok tok.bpe
                             --seconds S [shape] --micro-batch B --lr X
      trains for S seconds (schedule on the clock) and prints the validation
      loss and bits per byte, measured as lm-train measures them
      with --test test.tok [--test-tokens M --curve-every S --curve-tokens N]
      also (bench/recipe.sh): bits per byte on test.tok in lm-eval's windows
      (consecutive windows of the context from its first token), its first M
      tokens (0: the whole file) at the end and its first N tokens every S
      seconds of training (the clock stops meanwhile)
  torch_ref_model.py eval    --ckpt STEPDIR --val val.tok --tok tok.bpe [--val-tokens N]
      loads lm's model.safetensors into this model: the same bits per byte
      as lm-train reports is the cross-check that the two compute one model;
      with --test test.tok [--test-tokens M], in lm-eval's windows as well

Every command prints one JSON line on stdout.
"""
import argparse
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from lm_files import read_safetensors, read_token_stream, token_byte_lengths


# --- lm's files ----------------------------------------------------------------

# --- the model -------------------------------------------------------------------

class RMSNorm(torch.nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        d, hd = c["dim"], c["dim"] // c["heads"]
        self.c, self.hd = c, hd
        self.input_layernorm = RMSNorm(d, c["eps"])
        self.q_proj = torch.nn.Linear(d, c["heads"] * hd, bias=False)
        self.k_proj = torch.nn.Linear(d, c["kv_heads"] * hd, bias=False)
        self.v_proj = torch.nn.Linear(d, c["kv_heads"] * hd, bias=False)
        self.o_proj = torch.nn.Linear(c["heads"] * hd, d, bias=False)
        self.post_attention_layernorm = RMSNorm(d, c["eps"])
        self.gate_proj = torch.nn.Linear(d, c["ffn"], bias=False)
        self.up_proj = torch.nn.Linear(d, c["ffn"], bias=False)
        self.down_proj = torch.nn.Linear(c["ffn"], d, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        H, K, hd = self.c["heads"], self.c["kv_heads"], self.hd
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, H, hd).transpose(1, 2)
        k = self.k_proj(h).view(B, T, K, hd).transpose(1, 2)
        v = self.v_proj(h).view(B, T, K, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if K != H:
            k = k.repeat_interleave(H // K, dim=1)
            v = v.repeat_interleave(H // K, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask
        y = F.softmax(att, dim=-1) @ v
        x = x + self.o_proj(y.transpose(1, 2).reshape(B, T, H * hd))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = torch.nn.Embedding(c["vocab"], c["dim"])
        self.layers = torch.nn.ModuleList([Block(c) for _ in range(c["layers"])])
        self.norm = RMSNorm(c["dim"], c["eps"])
        self.lm_head = None if c["tied"] else torch.nn.Linear(c["dim"], c["vocab"], bias=False)
        hd = c["dim"] // c["heads"]
        inv = 1.0 / (c["theta"] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        f = torch.outer(torch.arange(c["context"], dtype=torch.float32), inv)
        emb = torch.cat((f, f), dim=-1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)
        # lm's initialisation: N(0, 0.02); residual projections / sqrt(2 layers); norms 1.
        for n, p in self.named_parameters():
            if n.endswith("layernorm.weight") or n == "norm.weight":
                continue
            std = 0.02 / math.sqrt(2 * c["layers"]) if n.endswith(("o_proj.weight", "down_proj.weight")) else 0.02
            torch.nn.init.normal_(p, 0.0, std)

    def forward(self, idx):
        T = idx.shape[1]
        x = self.embed_tokens(idx)
        cos, sin = self.cos[:T], self.sin[:T]
        mask = torch.full((T, T), float("-inf")).triu(1)
        for blk in self.layers:
            x = blk(x, cos, sin, mask)
        x = self.norm(x)
        w = self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        return x @ w.t()

    def load_lm(self, tensors):
        """lm's model.safetensors (Hugging Face Llama names) into this model."""
        sd = {}
        for name, t in tensors.items():
            n = name.replace("model.", "", 1) if name.startswith("model.") else name
            n = n.replace("self_attn.", "").replace("mlp.", "")
            sd[n] = t
        missing, unexpected = self.load_state_dict(sd, strict=False)
        assert not unexpected and all("lm_head" in m for m in missing), (missing, unexpected)


def make_optimizer(model, lr, wd):
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    rest = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), eps=1e-8)


def wsd(progress, warmup, decay=0.2):
    if progress >= 1:
        return 0.0
    w = min(1.0, progress / warmup) if warmup > 0 else 1.0
    return w * (min(1.0, (1 - progress) / decay) if progress > 1 - decay else 1.0)


def val_windows(ids, T, max_tokens):
    # lm-train's rule: W windows of T + 1 tokens spread evenly over the split.
    n = len(ids)
    W = min((n - 1) // T, (max_tokens + T - 1) // T)
    stride = (n - 1) // W
    return torch.from_numpy(np.stack([ids[w * stride:w * stride + T + 1] for w in range(W)]))


def evaluate(model, windows, lens, B):
    model.eval()
    tot, nbytes = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(windows), B):
            x = windows[i:i + B]
            logits = model(x[:, :-1])
            tot += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum").item()
    for row in windows[:, 1:].tolist():
        nbytes += sum(lens[t] for t in row)
    model.train()
    n = windows[:, 1:].numel()
    return tot / n, tot / math.log(2) / nbytes


def eval_windows(ids, T, limit):
    """lm-eval's windows (tools/eval, --context T, stride T): the first `limit`
    tokens cut into consecutive windows of T targets, each target predicted
    from the tokens before it in its window; the last window may be shorter."""
    x = ids[:limit] if limit else ids
    return [x[s:s + T + 1] for s in range(0, len(x) - 1, T)]


def evaluate_lm_eval(model, windows, lens):
    """Bits per byte as lm-eval computes them: the loss in bits of the targets
    that are not special tokens (0 bytes) over their bytes."""
    model.eval()
    bits, nbytes = 0.0, 0
    size = torch.tensor(lens)
    with torch.no_grad():
        i = 0
        while i < len(windows):  # batches of windows of one length
            j = i
            while j < len(windows) and j - i < 16 and len(windows[j]) == len(windows[i]):
                j += 1
            x = torch.from_numpy(np.stack(windows[i:j]))
            logits = model(x[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                                   reduction="none")
            b = size[x[:, 1:].reshape(-1)]
            bits += loss[b > 0].double().sum().item() / math.log(2)
            nbytes += int(b.sum())
            i = j
    model.train()
    return bits / nbytes


def shape_args(p):
    p.add_argument("--vocab-size", type=int, default=0)
    p.add_argument("--layers", type=int, required=True)
    p.add_argument("--dim", type=int, required=True)
    p.add_argument("--heads", type=int, required=True)
    p.add_argument("--kv-heads", type=int, default=0)
    p.add_argument("--ffn-dim", type=int, required=True)
    p.add_argument("--context", type=int, required=True)
    p.add_argument("--micro-batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)


def config(a, vocab):
    return {"vocab": vocab, "dim": a.dim, "layers": a.layers, "heads": a.heads, "kv_heads": a.kv_heads or a.heads,
            "ffn": a.ffn_dim, "context": a.context, "eps": 1e-5, "theta": 10000.0, "tied": True}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("speed")
    shape_args(sp)
    sp.add_argument("--steps", type=int, default=10)
    sq = sub.add_parser("quality")
    shape_args(sq)
    sq.add_argument("--train", required=True)
    sq.add_argument("--val", required=True)
    sq.add_argument("--tok", required=True)
    sq.add_argument("--seconds", type=float, required=True)
    sq.add_argument("--lr", type=float, default=6e-4)
    sq.add_argument("--warmup", type=float, default=0.02)
    sq.add_argument("--val-tokens", type=int, default=1 << 30)
    sq.add_argument("--test")
    sq.add_argument("--test-tokens", type=int, default=0)
    sq.add_argument("--curve-every", type=float, default=0)
    sq.add_argument("--curve-tokens", type=int, default=0)
    se = sub.add_parser("eval")
    se.add_argument("--ckpt", required=True)
    se.add_argument("--val", required=True)
    se.add_argument("--tok", required=True)
    se.add_argument("--val-tokens", type=int, default=1 << 30)
    se.add_argument("--threads", type=int, default=0)
    se.add_argument("--test")
    se.add_argument("--test-tokens", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)

    if a.cmd == "eval":
        cfg = json.load(open(a.ckpt + "/config.json"))
        c = {"vocab": cfg["vocab_size"], "dim": cfg["hidden_size"], "layers": cfg["num_hidden_layers"],
             "heads": cfg["num_attention_heads"], "kv_heads": cfg["num_key_value_heads"],
             "ffn": cfg["intermediate_size"], "context": cfg["max_position_embeddings"],
             "eps": cfg["rms_norm_eps"], "theta": cfg["rope_theta"], "tied": cfg["tie_word_embeddings"]}
        m = Llama(c)
        m.load_lm({k: torch.from_numpy(v) for k, v in
                   read_safetensors(a.ckpt + "/model.safetensors").items()})
        w = val_windows(read_token_stream(a.val), c["context"], a.val_tokens)
        lens = token_byte_lengths(a.tok)
        loss, bpb = evaluate(m, w, lens, 8)
        out = {"val_loss": loss, "val_bpb": bpb, "windows": len(w)}
        if a.test:
            out["test_bpb"] = evaluate_lm_eval(m, eval_windows(read_token_stream(a.test), c["context"], a.test_tokens),
                                               lens)
        print(json.dumps(out))
        return

    torch.manual_seed(a.seed)
    if a.cmd == "speed":
        c = config(a, a.vocab_size)
        m = Llama(c)
        opt = make_optimizer(m, 6e-4, 0.1)
        B, T = a.micro_batch, a.context
        g = torch.Generator().manual_seed(a.seed)
        t0 = None
        for s in range(a.steps + 1):
            x = torch.randint(0, c["vocab"], (B, T + 1), generator=g)
            logits = m(x[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, c["vocab"]), x[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            opt.step()
            if s == 0:
                t0 = time.perf_counter()
        dt = time.perf_counter() - t0
        print(json.dumps({"tokens_per_s": a.steps * B * T / dt, "steps": a.steps, "seconds": dt,
                          "threads": torch.get_num_threads()}))
        return

    # quality
    lens = token_byte_lengths(a.tok)
    train_ids = torch.from_numpy(read_token_stream(a.train))
    val = val_windows(read_token_stream(a.val), a.context, a.val_tokens)
    c = config(a, len(lens))
    m = Llama(c)
    opt = make_optimizer(m, a.lr, 0.1)
    B, T = a.micro_batch, a.context
    g = torch.Generator().manual_seed(a.seed)
    nwin = (len(train_ids) - 1) // T
    order, pos, steps = torch.randperm(nwin, generator=g), 0, 0
    test = read_token_stream(a.test) if a.test else None
    curve, paused = [], 0.0
    start = time.perf_counter()
    avg = 0.0
    while True:
        el = time.perf_counter() - start - paused
        if test is not None and a.curve_every > 0 and el >= a.curve_every * len(curve):
            t0 = time.perf_counter()
            w = eval_windows(test, T, a.curve_tokens)
            curve.append({"elapsed": el, "tokens": steps * B * T, "bpb": evaluate_lm_eval(m, w, lens)})
            paused += time.perf_counter() - t0
            el = time.perf_counter() - start - paused
        if el >= a.seconds or (steps and el + 0.5 * avg >= a.seconds):
            break
        for grp in opt.param_groups:
            grp["lr"] = a.lr * wsd(el / a.seconds, a.warmup)
        if pos + B > nwin:
            order, pos = torch.randperm(nwin, generator=g), 0
        idx = order[pos:pos + B] * T
        pos += B
        x = torch.stack([train_ids[i:i + T + 1] for i in idx.tolist()])
        t = time.perf_counter()
        logits = m(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, c["vocab"]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        steps += 1
        d = time.perf_counter() - t
        avg = d if avg == 0 else 0.9 * avg + 0.1 * d
    train_s = time.perf_counter() - start - paused
    loss, bpb = evaluate(m, val, lens, 8)
    out = {"val_loss": loss, "val_bpb": bpb, "steps": steps, "tokens": steps * B * T,
           "train_seconds": train_s, "threads": torch.get_num_threads()}
    if test is not None:
        if a.curve_every > 0:
            curve.append({"elapsed": train_s, "tokens": steps * B * T,
                          "bpb": evaluate_lm_eval(m, eval_windows(test, T, a.curve_tokens), lens)})
        out["test_bpb"] = evaluate_lm_eval(m, eval_windows(test, T, a.test_tokens), lens)
        out["curve"] = curve
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
