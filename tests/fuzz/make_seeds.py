#!/usr/bin/env python3
"""make_seeds.py: writes the fuzz targets' seed corpora, tests/fuzz/corpus/NAME/.

Seeds are small valid files of every kind the target reads, and a few
near-misses: some made by lm's own tools (bin/, built first: `make NVCC=`),
the rest from the specs alone through tests/python/lmspec.py, so that a seed
does not only hold what lm's writers happen to write. Run it again after a
format changes, and commit what changes:

  tests/fuzz/make_seeds.py [--bin DIR]
"""
import base64
import json
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
import lmspec  # noqa: E402

BIN = os.path.join(ROOT, "bin")
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
TEXT = (b"The quick brown fox jumps over the lazy dog. It's 2024; don't panic!\n\n"
        b"Caf\xc3\xa9 na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e 12345 tabs\tand  spaces\n\n"
        b"<|endoftext|> is a special token's text.\n")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def run(*args, stdin=None):
    return subprocess.run([os.path.join(BIN, args[0])] + list(args[1:]), input=stdin,
                          stdout=subprocess.PIPE, check=True).stdout


def byte_entries():
    return [(lmspec.KIND_BYTE, b) for b in range(256)]


def spec_vocab(pattern_kind=1, pattern=None, extra=(), eot_at=None):
    """A vocabulary from vocab.md: the bytes, `extra` entries, <|endoftext|>."""
    entries = byte_entries() + list(extra)
    eot = len(entries) if eot_at is None else eot_at
    entries.insert(eot, (lmspec.KIND_SPECIAL, lmspec.EOT))
    if pattern is None:
        pattern = lmspec.PATTERNS.get(pattern_kind, "").encode()
    v = lmspec.Vocab(pattern_kind, pattern, entries, eot)
    return v.to_bytes()


def vocab_seeds(tmp):
    txt = os.path.join(tmp, "t.txt")
    open(txt, "wb").write(TEXT * 4)
    for name, pat in (("gpt2", "gpt2"), ("cl100k", "cl100k"), ("none", "none")):
        out = os.path.join(tmp, name + ".bpe")
        run("lm-tokenize", "train", "--vocab-size", "300", "--pattern", pat, "-o", out, txt)
        put("vocab", "trained-" + name + ".bpe", open(out, "rb").read())
    put("vocab", "spec-literals.bpe", spec_vocab(3, extra=[
        (lmspec.KIND_LITERAL, b"xyz"), (lmspec.KIND_MERGE, (120, 121)), (lmspec.KIND_UNUSED, None),
        (lmspec.KIND_SPECIAL, b"<|fim|>"), (lmspec.KIND_MERGE, (256, 122))], eot_at=258))
    put("vocab", "spec-regex.bpe", spec_vocab(4, pattern=rb"\p{L}+|\d{1,3}|\s+(?!\S)|.",
                                              extra=[(lmspec.KIND_MERGE, (97, 98))]))
    return os.path.join(tmp, "gpt2.bpe")


def tokens_seeds(tmp, vocab):
    txt = os.path.join(tmp, "t.txt")
    one = run("lm-tokenize", "--vocab", vocab, "--doc-delim", r"\n\n", txt)
    put("tokens", "encoded.tok", one)
    put("tokens", "concatenated.tok", one + one)
    v = lmspec.read_vocab(vocab)
    ids = list(range(0, 300, 7)) + [v.eot_id]
    put("tokens", "spec-chunks.tok", lmspec.stream_bytes(ids, len(v.entries), v.eot_id, v.identity, chunk=5))
    put("tokens", "spec-empty.tok", lmspec.stream_bytes([], len(v.entries), v.eot_id, v.identity))
    put("tokens", "spec-wide-no-eot.tok", lmspec.stream_bytes([0, 70000, 99999, 1], 100000, 0xFFFFFFFF,
                                                            0x0123456789abcdef, chunk=3))
    return one


def pack_seeds(tmp, stream):
    tok = os.path.join(tmp, "in.tok")
    open(tok, "wb").write(stream * 3)
    for name, opts in (("zstd", ["--level", "3"]), ("raw", ["--level", "0"])):
        d = os.path.join(tmp, "ds-" + name)
        run("lm-pack", "-o", d, "--val-fraction", "0.3", "--seed", "5", "--shard-tokens", "120",
            "--block-tokens", "32", *opts, tok)
        run("lm-pack", "-o", d, "--append", "--val-docs", "1", "--label", "second input",
            "--block-tokens", "32", *opts, tok)
        files = sorted(f for f in os.listdir(d) if f.endswith(".lms"))
        for i, f in enumerate(files[:2] + files[-2:]):  # train shards, then val
            put("shard", "%s-%d-%s.lms" % (name, i, f.split("-")[0]), open(os.path.join(d, f), "rb").read())
        put("manifest", name + ".json", open(os.path.join(d, "manifest.json"), "rb").read())
    put("manifest", "spec-minimal.json", json.dumps({
        "format": "lm-dataset", "version": 1, "vocab": {"size": 70000, "id": "00000000000000ff", "eot": -1},
        "token_width": 4, "shards": [{"file": "a shard", "split": "val", "tokens": 5, "documents": 0,
                                      "blocks": 1, "bytes": 100, "level": 0, "hash": "0123456789abcdef"}],
        "future_member": [1, 2.5, None]}).encode())


def safetensors_seeds(tmp, vocab):
    step = os.path.join(tmp, "step-0000007")
    lmspec.build_step_dir(step, vocab, layers=1, D=8, H=2, F=16, kv_heads=1, ctx=16)
    put("config", "spec-gqa.json", open(os.path.join(step, "config.json"), "rb").read())
    put("trainer_state", "spec-sealed.json", open(os.path.join(step, "trainer-state.json"), "rb").read())
    st = json.load(open(os.path.join(step, "trainer-state.json")))
    st.pop("checksum")
    st.update({"adam_step": 7, "loader": {"seed": 1, "epoch": 0, "index": 3}, "command_line": ["lm-train"]})
    put("trainer_state", "spec-unsealed.json", (json.dumps(st, indent=1) + "\n").encode())
    put("trainer_state", "spec-extra.json", lmspec.seal_state(st))
    put("config", "hf-defaults.json", json.dumps({
        "vocab_size": 300, "hidden_size": 16, "intermediate_size": 40, "num_hidden_layers": 2,
        "num_attention_heads": 4, "max_position_embeddings": 64, "rope_scaling": None,
        "tie_word_embeddings": True, "torch_dtype": "bfloat16"}).encode())
    # A small model-like file (the real one is ~20 KB: too slow a seed) and an
    # optimizer-like one, then every dtype the container knows.
    small = [("model.embed_tokens.weight", [3, 2], [0.5, -1, 2, 0, 1e-3, 7]),
             ("model.norm.weight", [2], [1.0, 1.0])]
    p = os.path.join(tmp, "m.safetensors")
    lmspec.write_safetensors(p, small, {"format": "pt"})
    put("safetensors", "model-like.safetensors", open(p, "rb").read())
    opt = [("exp_avg." + n, s, v) for n, s, v in small] + [("exp_avg_sq." + n, s, v) for n, s, v in small]
    lmspec.write_safetensors(p, opt, {"format": "lm-adamw", "step": "7"})
    put("safetensors", "optimizer-like.safetensors", open(p, "rb").read())
    header, blob = {}, b""
    for dt, size in (("BF16", 2), ("F16", 2), ("F64", 8), ("I8", 1), ("U64", 8), ("BOOL", 1)):
        header["t_" + dt] = {"dtype": dt, "shape": [2], "data_offsets": [len(blob), len(blob) + 2 * size]}
        blob += bytes(range(17, 17 + 2 * size))
    header["empty"] = {"dtype": "F32", "shape": [0, 3], "data_offsets": [len(blob), len(blob)]}
    js = json.dumps(header).encode()  # unpadded, no metadata
    put("safetensors", "dtypes.safetensors", struct.pack("<Q", len(js)) + js + blob)


def import_seeds(tmp):
    lines = [base64.b64encode(bytes([b])) + b" %d" % b for b in range(256)]
    lines += [base64.b64encode(b"th") + b" 256", base64.b64encode(b"the") + b" 257",
              base64.b64encode(b" the") + b" 259", base64.b64encode(b"\xff\xfe") + b" 300"]
    # The target's first byte picks the pattern kind (% 5) and --special (& 8).
    put("tiktoken", "small.tiktoken", b"\x01" + b"\n".join(lines) + b"\n")
    put("tiktoken", "crlf-shuffled-specials.tiktoken", b"\x0a" + b"\r\n".join(reversed(lines)))
    enc = {lmspec_gpt2_char(b): i for i, b in enumerate(range(256))}
    enc[lmspec_gpt2_char(ord("h")) + lmspec_gpt2_char(ord("e"))] = 256
    enc[lmspec_gpt2_char(32) + "he"] = 257
    enc["<|endoftext|>"] = 258
    merges = "#version: 0.2\nh e\n" + lmspec_gpt2_char(32) + " he\n"
    # The target cuts its input at the first NUL: encoder.json, then vocab.bpe.
    put("gpt2", "small.gpt2", json.dumps(enc, ensure_ascii=False).encode() + b"\0" + merges.encode())


def lmspec_gpt2_char(b):
    """GPT-2's bytes_to_unicode (its printable stand-in for byte b)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    if b in printable:
        return chr(b)
    return chr(256 + [c for c in range(256) if c not in printable].index(b))


def text_seeds():
    # The target's first byte picks the mode (% 3: JSONL, lines, "\n\n") and
    # small pieces cut by a pattern (& 4; (>> 3) % 3: gpt2, cl100k, o200k).
    put("jsonl", "lines-pieces.txt", b"\x04" + TEXT * 3)
    put("jsonl", "delim-pieces-o200k.txt", b"\x14" + TEXT * 3)
    put("jsonl", "docs.jsonl", b'\x00{"text": "first document"}\n{"id": 2, "text": "second\\nline \\u00e9"}\n'
        b'\n   \n{"text": ""}\r\n{"text": "no newline at the end", "more": [1, {"a": null}]}')
    put("jsonl", "escapes-pieces-cl100k.jsonl", b'\x0c{"text": "\\ud83d\\ude00 \\t tab <|endoftext|>"}\n{"text":"x"}\n')
    rec = {"ckpt": "step-0000100", "id": "0123456789abcdef", "key": "fedcba9876543210", "loss": 3.5}
    put("eval_record", "record.jsonl", (json.dumps(rec) + "\n" + json.dumps(dict(rec, ckpt="step-0000200"))
                                        + "\n" + '{"ckpt": "step-0000300", "id"').encode())


def main():
    global BIN
    if "--bin" in sys.argv:
        BIN = sys.argv[sys.argv.index("--bin") + 1]
    with tempfile.TemporaryDirectory() as tmp:
        vocab = vocab_seeds(tmp)
        stream = tokens_seeds(tmp, vocab)
        pack_seeds(tmp, stream)
        safetensors_seeds(tmp, vocab)
        import_seeds(tmp)
        text_seeds()


if __name__ == "__main__":
    main()
