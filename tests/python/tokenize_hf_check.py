#!/usr/bin/env python3
"""tokenize_hf_check.py: dev check that `lm-tokenize export --hf` writes a
tokenizer.json that Hugging Face `tokenizers` loads and that encodes text to
the same ids as `lm-tokenize encode`. Checks a vocabulary trained here (gpt2
and cl100k patterns) and, when ../shared/corpora is present, the imported
GPT-2, cl100k_base and o200k_base vocabularies. Skips (exit 0, "SKIP" line) without the `tokenizers` package.

    tests/python/tokenize_hf_check.py [--bin bin/lm-tokenize]
"""
import argparse, os, random, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORP = os.path.join(ROOT, "..", "shared", "corpora")


def texts(rng, corpus):
    out = []
    for i in range(1500):
        if corpus and i % 2 == 0:
            a = rng.randrange(len(corpus))
            out.append(corpus[a:a + rng.randrange(1, 300)])
        else:
            out.append("".join(rng.choice(["the", " cat", "'s", "  ", "\n", "123", "4567", "é", "日本", "'ſ", "\r\n", "A\u0301",
                                           "!!", " ", "Don't", "x", "\t", "👋"]) for _ in range(rng.randrange(1, 25))))
    return [t.replace("\0", "") for t in out if t.replace("\0", "")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "bin", "lm-tokenize"))
    args = ap.parse_args()
    try:
        from tokenizers import Tokenizer
    except ImportError:
        print("SKIP tokenizers not installed")
        return 0
    rng = random.Random(3)
    corpus = ""
    p = os.path.join(CORP, "tinyshakespeare", "input.txt")
    if os.path.exists(p):
        corpus = open(p, encoding="utf-8").read()
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        train = os.path.join(tmp, "train.txt")
        with open(train, "w") as f:
            f.write(corpus[:400000] if corpus else "".join(texts(rng, "")) * 20)
        vocabs = []
        for pat in ["gpt2", "cl100k", "o200k"]:
            v = os.path.join(tmp, pat + ".bpe")
            subprocess.run([args.bin, "train", "-q", "--vocab-size", "2000", "--pattern", pat, "-o", v, train], check=True)
            vocabs.append(("trained-" + pat, v))
        if os.path.isdir(os.path.join(CORP, "gpt2-tokenizer")):
            v = os.path.join(tmp, "gpt2.bpe")
            g = os.path.join(CORP, "gpt2-tokenizer")
            subprocess.run([args.bin, "import", "-q", "--gpt2", g + "/encoder.json", g + "/vocab.bpe", "-o", v], check=True)
            vocabs.append(("gpt2", v))
        tokdir = os.path.join(CORP, "tokenizers")
        for name, pat in [("cl100k_base", "cl100k"), ("o200k_base", "o200k")]:
            if not os.path.exists(os.path.join(tokdir, name + ".tiktoken")):
                continue
            import json
            v = os.path.join(tmp, name + ".bpe")
            cmd = [args.bin, "import", "-q", "--tiktoken", os.path.join(tokdir, name + ".tiktoken"), "--pattern", pat, "-o", v]
            for sp, i in json.load(open(os.path.join(tokdir, name + ".json")))["special_tokens"].items():
                cmd.append("--special=%s=%d" % (sp, i))
            subprocess.run(cmd, check=True)
            vocabs.append((name, v))
        ts = texts(rng, corpus)
        inp = os.path.join(tmp, "in.txt")
        with open(inp, "wb") as f:
            f.write(b"\0".join(t.encode() for t in ts))
        for name, v in vocabs:
            js = os.path.join(tmp, name + ".json")
            subprocess.run([args.bin, "export", "--hf", js, "--vocab", v], check=True)
            tok = Tokenizer.from_file(js)
            out = subprocess.run([args.bin, "--vocab", v, "--ids", "--no-eot", "--doc-delim", "\\0", inp],
                                 check=True, capture_output=True).stdout.decode().split("\n")[:-1]
            n_bad = 0
            for t, l in zip(ts, out):
                want = [int(x) for x in l.split()]
                got = tok.encode(t, add_special_tokens=False).ids
                if got != want:
                    n_bad += 1
                    if n_bad <= 3:
                        print("  mismatch %s on %r\n    hf %s\n    lm %s" % (name, t[:60], got[:16], want[:16]))
            print("%s %s: %d texts, %d mismatches" % ("ok" if n_bad == 0 else "FAIL", name, len(ts), n_bad))
            bad += n_bad + (len(out) != len(ts))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
