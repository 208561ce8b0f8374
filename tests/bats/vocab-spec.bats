#!/usr/bin/env bats
# tok.bpe against docs/formats/vocab.md: vocabularies lm-tokenize writes are
# read by tests/python/lmspec.py (a reader, writer and encoder written from the
# spec alone), and vocabularies lmspec.py writes are used, or refused, by
# lm-tokenize.

load spec_helpers

setup() {
  spec_setup
  spec_text text.txt
}

@test "vocab-spec: a trained vocabulary has the spec's fields, checksum and id assignment" {
  run lm-tokenize train --vocab-size 300 --special '<|pad|>' --special '<|x|>' -o v.bpe text.txt
  [ "$status" -eq 0 ]
  id=$(echo "$output" | sed -n 's/.*identity \([0-9a-f]\{16\}\).*/\1/p')
  run python3 - <<'PY'
import lmspec
v = lmspec.read_vocab("v.bpe")
data = open("v.bpe", "rb").read()
assert v.to_bytes() == data, "the spec's writer does not give the same bytes back"
n = len(v.entries)
assert n == 300 and v.pattern_kind == 1 and v.pattern.decode() == lmspec.PATTERNS[1]
assert all(v.entries[i] == (1, i) for i in range(256)), "ids 0..255 are not the bytes"
merges = [e for e in v.entries[256:297]]
assert all(k == 2 for k, _ in merges), "merges do not follow the bytes"
assert v.entries[297:] == [(3, b"<|endoftext|>"), (3, b"<|pad|>"), (3, b"<|x|>")] and v.eot_id == 297
print("%016x" % v.identity)
PY
  [ "$status" -eq 0 ]
  [ "$output" = "$id" ]
}

@test "vocab-spec: the spec's encoder gives lm-tokenize's ids, and decodes them" {
  lm-tokenize train -q --vocab-size 400 -o v.bpe text.txt
  printf "Hello, world! It's 12345 dogs' \"time\"...\n\n  tabs\there  \n<|endoftext|>x  \n" >>text.txt
  for a in "" --allow-special; do
    python3 "$SPEC" vocab-encode v.bpe text.txt $a >mine
    lm-tokenize --vocab v.bpe --ids --no-eot $a text.txt >theirs
    cmp mine theirs
  done
  python3 "$SPEC" vocab-decode v.bpe theirs | cmp - text.txt
}

# A vocabulary lm never writes: bytes in shuffled ids, unused ids, literal
# tokens, merges recorded with another cut than the one encoding uses, several
# specials (one the prefix of another); lm-tokenize must encode and decode it
# as the spec says, for each pattern kind.
@test "vocab-spec: lm-tokenize encodes and decodes a vocabulary written from the spec" {
  python3 - <<'PY'
import random, lmspec
rnd = random.Random(5)
def build(kind, pattern):
    perm = list(range(256)); rnd.shuffle(perm)
    ent = [(0, None), (0, None)] + [(1, b) for b in perm]
    ids = {bytes([b]): i + 2 for i, b in enumerate(perm)}
    for w in (b"th", b"he", b"the", b" the", b"in", b"ing", b" a", b"an", b"and", b" and", b"er", b"re",
              b"at", b"ou", b"ed", b" t", b"ca", b"cat", b"xyz", b"hello"):
        cut = next((c for c in range(1, len(w)) if w[:c] in ids and w[c:] in ids), None)
        ent.append((4, w) if cut is None or w == b"xyz" else (2, (ids[w[:cut]], ids[w[cut:]])))
        ids[w] = len(ent) - 1
    ent += [(0, None), (3, b"<|a|>"), (3, b"<|a|>b"), (3, lmspec.EOT), (3, "\u00e9t\u00e9".encode())]
    return lmspec.Vocab(kind, pattern, ent, len(ent) - 2)
for name, kind, pat in (("none", 0, b""), ("gpt2", 1, lmspec.PATTERNS[1].encode()),
                        ("regex", 4, rb"\w+|\s+|[^\w\s]+")):
    open(name + ".bpe", "wb").write(build(kind, pat).to_bytes())
PY
  # short: with pattern none the whole text is one chunk, and lmspec's merge loop is quadratic
  head -c 1500 text.txt >short.txt
  printf 'the theater and then hello hellothere xyzzy <|a|>b<|a|><|endoftext|>the\n\n\tcats  and   dogs\r\n' >>short.txt
  mv short.txt text.txt
  for v in none gpt2 regex; do
    for a in "" --allow-special; do
      python3 "$SPEC" vocab-encode $v.bpe text.txt $a >mine
      lm-tokenize --vocab $v.bpe --ids --no-eot $a text.txt >theirs
      cmp mine theirs
      lm-tokenize decode --vocab $v.bpe --keep-eot --ids theirs | cmp - text.txt
    done
  done
  # an unused id decodes to nothing: an error
  run lm-tokenize decode --vocab gpt2.bpe --ids <<<"0"
  refused "<stdin>" "token id 0 is unused"
}

@test "vocab-spec: the 64 MiB total is exact, and a longer varint form is accepted" {
  python3 - <<'PY'
import lmspec
P = lmspec.PATTERNS[1].encode()
ent = [(1, b) for b in range(256)]
pw, n = {1: 97}, 1
while n < 32768:  # "a" * 2^k
    ent.append((2, (pw[n], pw[n]))); n *= 2; pw[n] = len(ent) - 1
acc = pw[32768]
for p in (16384, 8192, 4096, 2048, 1024, 512, 256, 128, 64, 32, 16, 8, 4, 2):
    ent.append((2, (acc, pw[p]))); acc = len(ent) - 1  # "a" * 65534
pairs = []
for x in range(98, 200):
    for y in range(97, 123):
        ent.append((2, (x, y))); pairs.append(len(ent) - 1)
toks = []
for k, p in ent:
    toks.append(bytes([p]) if k == 1 else toks[p[0]] + toks[p[1]])
room = 67108864 - sum(map(len, toks)) - 13  # 13: <|endoftext|>
for name, extra in (("max", 0), ("over", 1)):
    e = ent + [(2, (acc, q)) for q in pairs[:room // 65536 + extra]] + [(3, lmspec.EOT)]
    open(name + ".bpe", "wb").write(lmspec.vocab_file_bytes(1, P, e, len(e) - 1))
# pattern_len written as 2 bytes more than needed
v = lmspec.Vocab(1, P, [(1, b) for b in range(256)] + [(3, lmspec.EOT)], 256)
body = v.body()
body = body[:1] + bytes([body[1] | 0x80, 0x80, 0x00]) + body[2:]
open("long.bpe", "wb").write(lmspec.vocab_file_bytes(1, P, v.entries, 256, body=body))
PY
  run python3 "$SPEC" vocab-dump max.bpe
  [ "$status" -eq 0 ]
  # lm-tokenize accepts it too (its pair table, built by cutting each token
  # at every length some token has, took two minutes when it tried every cut).
  run lm-tokenize --vocab max.bpe --ids text.txt
  [ "$status" -eq 0 ]
  run python3 "$SPEC" vocab-dump over.bpe
  [ "$status" -eq 1 ]
  run lm-tokenize --vocab over.bpe --ids text.txt
  refused over.bpe "64 MiB"
  run python3 "$SPEC" vocab-dump long.bpe
  [ "$status" -eq 0 ]
  [[ "$output" == *"rewrite differs"* ]]
  lm-tokenize --vocab long.bpe --ids text.txt >/dev/null
}

@test "vocab-spec: lm-tokenize refuses what the spec forbids, in one line naming the file" {
  python3 - <<'PY'
import lmspec
from lmspec import vocab_file_bytes as raw, EOT
P = lmspec.PATTERNS[1].encode()
B = [(1, b) for b in range(256)]
base = B + [(2, (97, 98)), (3, EOT)]
good = raw(1, P, base, 257)
v = lmspec.Vocab(1, P, base, 257)
body = v.body()
cases = {
    "magic": raw(1, P, base, 257, magic=b"LMBX"),
    "short": good[:39],
    "version": raw(1, P, base, 257, version=2),
    "truncated": good[:-1],
    "trailing": good + b"\0",
    "checksum": raw(1, P, base, 257, good_checksum=False),
    "flags": raw(1, P, base, 257, flags=1),
    "reserved": raw(1, P, base, 257, reserved=1),
    "n_ids": raw(1, P, B[:255] + [(3, EOT)], 255),
    "body_trailing": raw(1, P, base, 257, body_extra=b"\0"),
    "entry_kind": raw(1, P, base, 257, body=body[:-17] + b"\x05" + body[-15:]),
    "pattern_kind": raw(5, P, base, 257),
    "empty_regex": raw(4, b"", base, 257),
    "long_pattern": raw(4, b"a" * 65537, base, 257),
    "pattern_utf8": raw(1, b"\xff", base, 257),
    "bad_regex": raw(4, b"(", base, 257),
    "varint11": raw(1, P, base, 257, body=body[:1] + b"\x80" * 10 + b"\x00" + body[2:]),
    "merge_later": raw(1, P, B + [(2, (97, 256)), (3, EOT)], 257),
    "merge_special": raw(1, P, B + [(3, EOT), (2, (97, 256))], 256),
    "byte_twice": raw(1, P, B[:255] + [(1, 0), (3, EOT)], 256),
    "literal_short": raw(1, P, B + [(4, b"a"), (3, EOT)], 257),
    "same_bytes": raw(1, P, B + [(2, (97, 98)), (4, b"ab"), (3, EOT)], 258),
    "special_twice": raw(1, P, B + [(3, EOT), (3, EOT)], 256),
    "special_empty": raw(1, P, B + [(3, b""), (3, EOT)], 257),
    "eot_not_eot": raw(1, P, B + [(3, b"<|x|>"), (3, EOT)], 256),
    "eot_range": raw(1, P, base, 258),
    "token_long": raw(1, P, B + [(4, b"x" * 65537), (3, EOT)], 257),
}
for k, d in cases.items():
    open(k + ".bpe", "wb").write(d)
    if k == "bad_regex":  # valid for the format; PCRE2 cannot compile it
        continue
    try:
        lmspec.Vocab.from_bytes(d)
        raise SystemExit("the spec's reader accepts " + k)
    except lmspec.SpecError:
        pass
print(" ".join(cases))
PY
  for k in magic short version truncated trailing checksum flags reserved n_ids body_trailing entry_kind \
    pattern_kind empty_regex long_pattern pattern_utf8 bad_regex varint11 merge_later merge_special \
    byte_twice literal_short same_bytes special_twice special_empty eot_not_eot eot_range token_long; do
    [ -f $k.bpe ]
    run lm-tokenize --vocab $k.bpe --ids text.txt
    refused $k.bpe "" || { echo "case $k"; return 1; }
  done
  run lm-tokenize --vocab magic.bpe --ids text.txt
  refused magic.bpe "not a vocabulary file"
  run lm-tokenize --vocab version.bpe --ids text.txt
  refused version.bpe "unsupported vocabulary version 2"
  run lm-tokenize --vocab checksum.bpe --ids text.txt
  refused checksum.bpe "checksum mismatch"
  run lm-tokenize --vocab truncated.bpe --ids text.txt
  refused truncated.bpe "truncated"
  run lm-tokenize --vocab pattern_utf8.bpe --ids text.txt
  refused pattern_utf8.bpe "not valid UTF-8"
}
