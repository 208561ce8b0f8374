#!/usr/bin/env python3
"""export_llamacpp_check.py: dev check that lm-export's GGUF file is what
llama.cpp expects and that llama.cpp runs it as lm runs the checkpoint.

For each --type: lm-export --gguf, then
  1. ggufspec.py's reader (written from ggml's docs/gguf.md) checks every key,
     llama.cpp's tensor names, shapes, types and each tensor's bytes against
     the checkpoint; the gguf package (llama.cpp's gguf-py), when installed,
     must read the same, and by its own tables find llama's key and tensor
     names and, dequantized, the checkpoint's values;
  2. llama.cpp (llama-cpp-python, with a float32 KV cache) loads the file and
     gives the same token ids as lm-tokenize on each held-out document, the
     same loss as lm-eval by lm-eval's own windows (within LOSS_TOL of the
     type), and, for f32, the same greedy text as lm-sample on PROMPTS
     (printed for the other types).
Prints the figures that docs/PERF.md records. Without llama-cpp-python (pip
builds it from source) or numpy, step 2 prints "SKIP ..." and is not done.
Exit status 1 when a check fails.

    tests/python/export_llamacpp_check.py [--bin bin] [--ckpt RUN] [--text FILE]
        [--types f32,f16,bf16,q8_0] [--work DIR] [-n N] [--threads N]

Without --ckpt it trains a small model (a few minutes on 2 cores) on
../shared/corpora/tinyshakespeare, or on generated text when that is absent;
--text is the held-out text (default: the last 5% of that corpus).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
CORP = os.path.join(ROOT, "..", "shared", "corpora", "tinyshakespeare", "input.txt")
PROMPTS = ["First Citizen:\n", "ROMEO:\nO, ", "The king", "What is", "\n\nKING RICHARD III:\n"]
# llama.cpp's loss less lm-eval's, at most (nats/token): f32 differs only by
# the order of float32 sums (measured: 6e-8 and less); the others by their
# rounded weights, and llama.cpp's F16 or Q8_0 activations in the products
# (measured at most 1.2e-4 f16, 3.9e-4 bf16, 2.1e-3 q8_0; docs/PERF.md).
LOSS_TOL = {"f32": 1e-5, "f16": 2e-3, "bf16": 5e-3, "q8_0": 1e-2}


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw).stdout


def corpus():
    if os.path.exists(CORP):
        return open(CORP, encoding="utf-8").read()
    words = "the a king queen lord said to of and my thy thou art is not what for with".split()
    out, x = [], 7
    for i in range(200000):
        x = (x * 1103515245 + 12345) % 2 ** 31
        out.append(words[x % len(words)] + ("\n\n" if x % 97 == 0 else ",\n" if x % 13 == 0 else " "))
    return "".join(out)


def train(b, work):
    text = corpus()
    cut = int(len(text) * 0.95)
    paths = {k: os.path.join(work, k) for k in ("train.txt", "held.txt", "tok.bpe", "shards", "run")}
    open(paths["train.txt"], "w").write(text[:cut])
    open(paths["held.txt"], "w").write(text[cut:])
    run([b("lm-tokenize"), "train", "-q", "--vocab-size", "2048", "-o", paths["tok.bpe"], paths["train.txt"]])
    toks = run([b("lm-tokenize"), "--vocab", paths["tok.bpe"], "--doc-delim", "\\n\\n", paths["train.txt"]])
    run([b("lm-pack"), "-q", "-o", paths["shards"], "--val-fraction", "0.02"], input=toks)
    run([b("lm-train"), "--data", paths["shards"], "--vocab", paths["tok.bpe"], "--out", paths["run"],
         "--layers", "4", "--dim", "128", "--heads", "4", "--kv-heads", "2", "--context", "128",
         "--micro-batch", "8", "--steps", "400", "--lr", "3e-3", "--val-every", "0", "--log-every", "0",
         "--device", "cpu"])
    return paths["run"], paths["held.txt"]


def windows(n, t):
    """lm-eval's windows with stride = context: (start, end) over x[0..n)."""
    k = 0
    while k * t < n - 1:
        yield k * t, min(k * t + t + 1, n)
        k += 1


def nll_llama(llm, x, t, np):
    total = 0.0
    for a, e in windows(len(x), t):
        llm.reset()
        llm.eval(x[a:e - 1])
        logits = np.array(llm.scores[:e - 1 - a], dtype=np.float64)
        m = logits.max(axis=1, keepdims=True)
        lse = (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))[:, 0]
        total += float((lse - logits[np.arange(e - 1 - a), x[a + 1:e]]).sum())
    return total / (len(x) - 1)


def nll_torch(model, x, t):
    import torch
    total = 0.0
    with torch.no_grad():
        for a, e in windows(len(x), t):
            ids = torch.tensor([x[a:e]])
            logits = model(ids[:, :-1]).logits.double()
            total += float(torch.nn.functional.cross_entropy(logits[0], ids[0, 1:], reduction="sum"))
    return total / (len(x) - 1)


def greedy_llama(llm, toks, n, eot):
    out = []
    for tok in llm.generate(toks, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True):
        if tok == eot:
            break
        out.append(tok)
        if len(out) == n:
            break
    return b"".join(llm.detokenize([tk]) for tk in out).decode("utf-8", errors="replace")


def check_reader(gguf, step, typ, failures):
    """ggufspec.py's check, and the gguf package's reading of the file."""
    import ggufspec
    import lmspec
    try:
        ggufspec.check(gguf, step, typ)
        ggufspec.gguf_package(gguf, step)
    except lmspec.SpecError as e:
        failures.append("%s: %s" % (typ, e))
        print("  FAIL %s: %s" % (typ, e))


def check_llama(args, b, step, held, typ, gguf, figures, failures, np, Llama):
    t0 = time.time()
    cfg = json.load(open(os.path.join(step, "config.json")))
    T, eot = cfg["max_position_embeddings"], cfg["eos_token_id"]
    # A float32 KV cache (llama.cpp's default is F16), so that the f32 file
    # differs from lm only by the order of float32 sums.
    f32 = __import__("llama_cpp").GGML_TYPE_F32
    llm = Llama(model_path=gguf, n_ctx=T, n_batch=T, logits_all=True, verbose=False, n_threads=args.threads,
                type_k=f32, type_v=f32)
    need_ok = lambda ok, what: ok or failures.append("%s: %s" % (typ, what))
    text = open(held, encoding="utf-8").read()
    docs = [d for d in text.split("\n\n") if d]
    lm_ids = run([b("lm-tokenize"), "--vocab", os.path.join(step, "tok.bpe"), "--ids", "--no-eot", "--doc-delim",
                  "\\0"], input="\0".join(docs).encode()).decode().split("\n")[:-1]
    need_ok(len(lm_ids) == len(docs), "lm-tokenize gave %d documents for %d" % (len(lm_ids), len(docs)))
    bad = 0
    for d, line in zip(docs, lm_ids):
        got = llm.tokenize(d.encode(), add_bos=False, special=False)
        if got != [int(v) for v in line.split()]:
            bad += 1
            if bad <= 3:
                print("  tokenization differs for %r:\n    lm-tokenize %s\n    llama.cpp   %s" % (
                    d[:60], line[:120], " ".join(map(str, got))[:120]))
    need_ok(bad == 0, "%d of %d documents tokenized differently" % (bad, len(docs)))
    ev = json.loads(run([b("lm-eval"), "--ckpt", step, "--text", held, "--json", "-q", "--device", "cpu"]))
    x = [eot] + [int(v) for v in run([b("lm-tokenize"), "--vocab", os.path.join(step, "tok.bpe"), "--ids",
                                      "--no-eot", held]).split()] + [eot]
    need_ok(len(x) - 1 == ev["targets"], "%d targets, lm-eval's %d" % (len(x) - 1, ev["targets"]))
    loss = nll_llama(llm, x, T, np)
    need_ok(abs(loss - ev["loss"]) <= LOSS_TOL[typ], "loss %.6f, lm-eval's %.6f: more than %g apart" % (
        loss, ev["loss"], LOSS_TOL[typ]))
    same = 0
    for p in PROMPTS:
        toks = llm.tokenize(p.encode(), add_bos=True, special=False)
        need_ok(toks[0] == eot, "llama.cpp does not put <|endoftext|> before %r" % p)
        n = min(args.n, T - len(toks))  # within the context: lm-sample slides past it, llama.cpp stops
        lm = run([b("lm-sample"), "--ckpt", step, "--prompt", p, "-n", str(n), "--temperature", "0", "-q",
                  "--device", "cpu"]).decode("utf-8", errors="replace")
        got = greedy_llama(llm, toks, n, eot)
        same += got == lm
        if got != lm:
            print("  %s: greedy differs for %r:\n    lm-sample %r\n    llama.cpp %r" % (typ, p, lm, got))
    if typ == "f32":
        need_ok(same == len(PROMPTS), "greedy text differs on %d of %d prompts" % (len(PROMPTS) - same,
                                                                                    len(PROMPTS)))
    figures.append((typ, len(docs) - bad, len(docs), ev["loss"], loss, same, len(PROMPTS), time.time() - t0))
    return ev, x, T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "bin"))
    ap.add_argument("--ckpt")
    ap.add_argument("--text")
    ap.add_argument("--types", default="f32,f16,bf16,q8_0")
    ap.add_argument("--work")
    ap.add_argument("-n", type=int, default=48, help="greedy tokens per prompt, at most")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if bool(args.ckpt) != bool(args.text):
        ap.error("give --ckpt and --text together, or neither")
    b = lambda tool: os.path.join(args.bin, tool)
    args.work = args.work or tempfile.mkdtemp(prefix="lm-llamacpp-")
    os.makedirs(args.work, exist_ok=True)
    ckpt, held = args.ckpt, args.text
    if not ckpt:
        ckpt, held = train(b, args.work)
    step = ckpt if os.path.exists(os.path.join(ckpt, "trainer-state.json")) else \
        os.path.realpath(os.path.join(ckpt, "latest"))
    try:
        import numpy as np
        import llama_cpp
        from llama_cpp import Llama
    except ImportError as e:
        np = Llama = None
        why = "%s (pip install llama-cpp-python numpy)" % e
    figures, failures = [], []
    for typ in args.types.split(","):
        gguf = os.path.join(args.work, "m-%s.gguf" % typ)
        run([b("lm-export"), "--ckpt", step, "--gguf", gguf, "--type", typ, "-q"])
        check_reader(gguf, step, typ, failures)
        if Llama:
            ev, x, T = check_llama(args, b, step, held, typ, gguf, figures, failures, np, Llama)
    if not Llama:
        print("SKIP llama.cpp: %s" % why)
    else:
        print("llama-cpp-python %s; checkpoint %s; held-out %s: %d tokens, context %d" % (
            llama_cpp.__version__, step, held, len(x), T))
        print("| GGUF type | tokenization (docs identical) | lm-eval loss | llama.cpp loss | difference "
              "| greedy text identical |")
        print("|---|---|---|---|---|---|")
        for typ, ok, n, a, l, same, np_, secs in figures:
            print("| %s | %d / %d | %.6f | %.6f | %.1e | %d / %d |" % (typ, ok, n, a, l, l - a, same, np_))
        try:
            import torch
            import transformers
            from transformers import AutoModelForCausalLM
        except ImportError:
            print("transformers not installed: no transformers figure")
        else:
            model = AutoModelForCausalLM.from_pretrained(step, torch_dtype=torch.float32)
            tl = nll_torch(model, x, T)
            print("transformers %s, torch %s: loss %.6f (lm-eval %.6f, difference %.1e)" % (
                transformers.__version__, torch.__version__, tl, ev["loss"], tl - ev["loss"]))
    for f in failures:
        print("FAIL %s" % f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
