#!/usr/bin/env python3
"""tokenize_tiktoken_check.py: dev cross-check of `lm-tokenize encode` against
tiktoken on the GPT-2, cl100k_base and o200k_base vocabularies.

Imports each vocabulary from ../shared/corpora/tokenizers, builds the same
encoding in tiktoken from the same files, and compares ids on: slices of real
corpora, random code points from every plane, adversarial runs (spaces,
newlines, digits, apostrophes, letters with combining marks), and random
mixtures of all of these. Prints one line per vocabulary and exits 1 on any
mismatch (showing the first few). Skips (exit 0, "SKIP" line) when tiktoken or
the corpora are absent. Usage:

    tests/python/tokenize_tiktoken_check.py [--bin bin/lm-tokenize] [--n 3000] [--seed 1]
"""
import argparse, base64, json, os, random, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORP = os.path.join(ROOT, "..", "shared", "corpora")


def random_texts(rng, n, corpus):
    pieces = [" ", "  ", "\n", "\n\n", "\r\n", "\t", " \n ", "'s", "'S", "'ll", "'ſ", "'re", "'VE",
              "123", "1234567", "٣٤٥", "ǅ", "ß", "İ", "é", "é", "👋🏽", "🇫🇷", "中文", "日本語",
              "한국어", "Ελληνικά", "русский", "עברית", "العربية", "हिन्दी", "ไทย", "ꦗꦮ", "\u200b",
              "\u3000", "\u00a0", "\u180e", "\u2028", "\x85", "/", "//", "...", "?!", "<|endoftext|>",
              "A\u0301B", "\u0301", "ǈa", "ᾈb", "ʰx", "Xyz", "XYZabc", "aBC", "a'B", "  \n\n  x", "$$$",
              "\x0c", "\x0b", "\x1c", "x\r\ny", " 's", "ª", "ºA", "\U00031350", "\U00011F04\U00011F50", "\U00010D50\U00010D70x", "\U0002EBF0", "\U0001E4D0\u0897"]
    out = []
    blocks = [0x00C0, 0x0370, 0x0400, 0x0530, 0x0590, 0x0600, 0x0900, 0x0980, 0x0B80, 0x0E00, 0x10A0,
              0x1100, 0x1E00, 0x1F00, 0x3040, 0x30A0, 0x4E00, 0xAC00, 0x10400, 0x1D400, 0x11F00, 0x10D40]
    for i in range(n):
        kind = i % 5
        if kind == 4:
            # Words of one script with combining marks, case changes and contractions.
            words = []
            for _ in range(rng.randrange(1, 8)):
                b = rng.choice(blocks)
                w = ""
                for _ in range(rng.randrange(1, 8)):
                    w += chr(b + rng.randrange(0, 96))
                    if rng.random() < 0.2:
                        w += chr(rng.randrange(0x0300, 0x0370))
                    if rng.random() < 0.1:
                        w += rng.choice("AbCxY")
                if rng.random() < 0.3:
                    w += rng.choice(["'s", "'S", "'\u017f", "'ll", "'Re", "'d", "'x"])
                words.append(w)
            out.append(rng.choice([" ", "  ", "\n", "", "\u3000", "1"]).join(words))
            continue
        if kind == 0 and corpus:
            a = rng.randrange(len(corpus))
            out.append(corpus[a:a + rng.randrange(1, 400)])
        elif kind == 1:
            cps = []
            for _ in range(rng.randrange(1, 30)):
                r = rng.random()
                if r < 0.5:
                    cp = rng.randrange(0x20, 0x3000)
                elif r < 0.8:
                    cp = rng.randrange(0x3000, 0x30000)
                else:
                    cp = rng.randrange(0x0, 0x110000)
                if 0xD800 <= cp <= 0xDFFF or cp == 0:
                    cp = 0x41
                cps.append(chr(cp))
            out.append("".join(cps))
        elif kind == 2:
            out.append("".join(rng.choice(pieces) for _ in range(rng.randrange(1, 20))))
        else:
            c = rng.choice([" ", "a", "1", "\n", "'", "é", "中", "!", " a", "A", "  \n"])
            out.append(c * rng.randrange(1, 300) + rng.choice(["", "x", " ", "\n", "1"]))
    return [t.replace("\0", "") for t in out if t.replace("\0", "")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "bin", "lm-tokenize"))
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    try:
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe
    except ImportError:
        print("SKIP tiktoken not installed")
        return 0
    tokdir = os.path.join(CORP, "tokenizers")
    if not os.path.isdir(tokdir):
        print("SKIP ../shared/corpora absent")
        return 0
    import tiktoken_ext.openai_public as pub
    corpus = ""
    for f in ["wikitext-2/wiki.test.tokens", "tinyshakespeare/input.txt"]:
        p = os.path.join(CORP, f)
        if os.path.exists(p):
            corpus += open(p, encoding="utf-8").read()[:300000]
    rng = random.Random(args.seed)
    texts = random_texts(rng, args.n, corpus)
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        inp = os.path.join(tmp, "in.txt")
        with open(inp, "wb") as f:
            f.write(b"\0".join(t.encode("utf-8") for t in texts))
        for name, pat, fn in [("gpt2", "gpt2", pub.gpt2), ("cl100k_base", "cl100k", pub.cl100k_base),
                              ("o200k_base", "o200k", pub.o200k_base)]:
            meta = json.load(open(os.path.join(tokdir, name + ".json")))
            path = os.path.join(tokdir, name + ".tiktoken")
            ranks = load_tiktoken_bpe(path)
            # tiktoken's own pattern string for this encoding, without downloading.
            import inspect
            src = inspect.getsource(fn)
            pat_str = {"gpt2": pub.r50k_pat_str}.get(name)
            if pat_str is None:
                pat_str = meta["pat_str"] if name != "o200k_base" else None
            if name == "cl100k_base":
                pat_str = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
            if name == "o200k_base":
                pat_str = "|".join([
                    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                    r"""\p{N}{1,3}""", r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""", r"""\s*[\r\n]+""", r"""\s+(?!\S)""", r"""\s+"""])
            enc = tiktoken.Encoding(name="x" + name, pat_str=pat_str, mergeable_ranks=ranks,
                                    special_tokens=meta["special_tokens"])
            vocab = os.path.join(tmp, name + ".bpe")
            cmd = [args.bin, "import", "-q", "--tiktoken", path, "--pattern", pat, "-o", vocab]
            for s, i in meta["special_tokens"].items():
                cmd += ["--special", "%s=%d" % (s, i)]
            subprocess.run(cmd, check=True)
            out = subprocess.run([args.bin, "encode", "--vocab", vocab, "--ids", "--no-eot",
                                  "--doc-delim", "\\0", inp], check=True, capture_output=True).stdout
            lines = out.decode().split("\n")[:-1]
            n_bad = 0
            if len(lines) != len(texts):
                print("FAIL %s: %d documents out, %d in" % (name, len(lines), len(texts)))
                bad += 1
                continue
            for t, l in zip(texts, lines):
                want = enc.encode_ordinary(t)
                got = [int(x) for x in l.split()] if l else []
                if got != want:
                    n_bad += 1
                    if n_bad <= 3:
                        print("  mismatch %s on %r\n    tiktoken %s\n    lm       %s" % (name, t[:80], want[:20], got[:20]))
            print("%s %s: %d texts, %d mismatches" % ("ok" if n_bad == 0 else "FAIL", name, len(texts), n_bad))
            bad += n_bad
            # All texts joined by newlines as one document: long enough that
            # lm-tokenize cuts it into pieces (Pretokenizer::SafeSplit) for threads.
            whole = "\n".join(texts)
            doc = os.path.join(tmp, "doc.txt")
            with open(doc, "wb") as f:
                f.write(whole.encode("utf-8"))
            out = subprocess.run([args.bin, "encode", "--vocab", vocab, "--ids", "--no-eot", doc],
                                 check=True, capture_output=True).stdout
            same = [int(x) for x in out.split()] == enc.encode_ordinary(whole)
            print("%s %s: one document of %d bytes" % ("ok" if same else "FAIL", name, len(whole.encode())))
            bad += not same
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
