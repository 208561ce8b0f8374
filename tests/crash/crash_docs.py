#!/usr/bin/env python3
"""crash_docs.py: inputs whose documents can be found again, for the crash
campaigns (tests/crash/*.sh, docs/RELIABILITY.md).

  crash_docs.py stream OUT WRITER DOCS [SEED] [--trickle MS]
      a token stream (docs/formats/tokens.md; vocabulary of 65536 ids, <eot> 0)
      of DOCS documents; document d of writer w starts [1 + w, 1 + d // 65000,
      1 + d % 65000] and has 20 to 300 tokens, so that each one is known.
      OUT - is stdout; --trickle writes it in 16 pieces, MS ms apart, as a
      slow producer (lm-tokenize) would
  crash_docs.py check STREAM WRITER:DOCS...
      STREAM (lm-pack cat's output) must be exactly the inputs of the writers
      named, each whole and in its order, in the order named: every document
      of every committed writer once, nothing of any other. Prints a summary;
      exits 1 naming the first difference.
"""
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import lmspec  # noqa: E402

VOCAB, EOT, IDENTITY = 65536, 0, 0x6c6d2d6372617368  # "lm-crash"


def document(w, d, seed):
    rnd = random.Random("%d/%d/%d" % (seed, w, d))
    body = [rnd.randrange(1, VOCAB) for _ in range(rnd.randrange(17, 298))]
    return [1 + w, 1 + d // 65000, 1 + d % 65000] + body + [EOT]


def stream(out, w, n, seed, trickle_ms=0):
    ids = []
    for d in range(n):
        ids += document(w, d, seed)
    data = lmspec.stream_bytes(ids, VOCAB, EOT, IDENTITY)
    f = sys.stdout.buffer if out == "-" else open(out, "wb")
    pieces = 16 if trickle_ms else 1
    for i in range(pieces):
        f.write(data[i * len(data) // pieces:(i + 1) * len(data) // pieces])
        f.flush()
        if trickle_ms and i + 1 < pieces:
            time.sleep(trickle_ms / 1000)
    if f is not sys.stdout.buffer:
        f.close()


def check(path, expected, seed):
    ids = []
    for _, part in lmspec.read_streams(open(path, "rb").read()):
        ids += part
    got = lmspec.split_documents(ids, EOT)
    want = [(w, d) for w, n in expected for d in range(n)]
    if len(got) != len(want):
        seen = {}
        for doc in got:
            key = (doc[0] - 1, (doc[1] - 1) * 65000 + doc[2] - 1) if len(doc) > 3 else None
            seen[key] = seen.get(key, 0) + 1
        twice = [k for k, c in seen.items() if c > 1][:3]
        raise SystemExit("crash_docs: %d documents, expected %d (%s)" % (
            len(got), len(want), "twice: %s" % twice if twice else "some missing"))
    for i, (doc, (w, d)) in enumerate(zip(got, want)):
        if doc != document(w, d, seed):
            raise SystemExit("crash_docs: document %d is not writer %d's document %d" % (i, w, d))
    print("crash_docs: %d documents of %d writers, each once, in order" % (len(got), len(expected)))


def main(argv):
    if len(argv) >= 5 and argv[1] == "stream":
        trickle = 0
        if "--trickle" in argv:
            i = argv.index("--trickle")
            trickle = int(argv[i + 1])
            argv = argv[:i] + argv[i + 2:]
        stream(argv[2], int(argv[3]), int(argv[4]), int(argv[5]) if len(argv) > 5 else 1, trickle)
    elif len(argv) >= 3 and argv[1] == "check":
        seed = int(os.environ.get("CRASH_SEED", "1"))
        check(argv[2], [tuple(int(x) for x in a.split(":")) for a in argv[3:]], seed)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
