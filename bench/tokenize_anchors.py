#!/usr/bin/env python3
"""tokenize_anchors.py: the anchors of bench/tokenize.sh, timed in-process.

  train-hf OUT_DIR VOCAB_SIZE VALID_DIR FILE...   Hugging Face tokenizers BPE training
  train-rustbpe VOCAB_SIZE VALID_DIR FILE...      rustbpe training
  encode-tiktoken TIKTOKEN_FILE THREADS FILE...   tiktoken encode_ordinary(_batch)

Each prints one line "seconds=S bytes_per_token=B" (training: B on VALID_DIR)
or "seconds=S tokens=N" (encoding). Timing excludes Python start-up and file
reading, which favours the anchors slightly.
"""
import glob, os, sys, time

GPT2_PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def read(files):
    return [open(f, encoding="utf-8").read() for f in files]


def valid_texts(d):
    return read(sorted(glob.glob(os.path.join(d, "*"))))


def main():
    cmd = sys.argv[1]
    if cmd == "train-hf":
        from tokenizers import Tokenizer, models, pre_tokenizers, trainers
        out, size, valid, files = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:]
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        trainer = trainers.BpeTrainer(vocab_size=size, show_progress=False, special_tokens=["<|endoftext|>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        t = time.perf_counter()
        tok.train(files, trainer)
        dt = time.perf_counter() - t
        vt = valid_texts(valid)
        n = sum(len(e.ids) for e in tok.encode_batch(vt))
        print("seconds=%.3f bytes_per_token=%.4f" % (dt, sum(len(x.encode()) for x in vt) / n))
    elif cmd == "train-rustbpe":
        import rustbpe
        size, valid, files = int(sys.argv[2]), sys.argv[3], sys.argv[4:]
        texts = read(files)
        tok = rustbpe.Tokenizer()
        t = time.perf_counter()
        tok.train_from_iterator(iter(texts), size - 1, pattern=GPT2_PAT)
        dt = time.perf_counter() - t
        vt = valid_texts(valid)
        n = sum(len(tok.encode(x)) for x in vt)
        print("seconds=%.3f bytes_per_token=%.4f" % (dt, sum(len(x.encode()) for x in vt) / n))
    elif cmd == "encode-tiktoken":
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe
        import tiktoken_ext.openai_public as pub
        path, threads, files = sys.argv[2], int(sys.argv[3]), sys.argv[4:]
        enc = tiktoken.Encoding(name="gpt2-local", pat_str=pub.r50k_pat_str, mergeable_ranks=load_tiktoken_bpe(path),
                                special_tokens={"<|endoftext|>": 50256})
        texts = read(files)
        t = time.perf_counter()
        if threads == 1:
            n = sum(len(enc.encode_ordinary(x)) for x in texts)
        else:
            n = sum(len(x) for x in enc.encode_ordinary_batch(texts, num_threads=threads))
        print("seconds=%.3f tokens=%d" % (time.perf_counter() - t, n))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
