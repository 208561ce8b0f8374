#!/usr/bin/env bats
# Token streams against docs/formats/tokens.md: what lm-tokenize writes is read
# by tests/python/lmspec.py (written from the spec alone), and streams lmspec.py
# writes are read, or refused, by lm-pack and lm-tokenize decode.

load spec_helpers

setup() {
  spec_setup
  spec_text text.txt
  lm-tokenize train -q --vocab-size 300 -o v.bpe text.txt
}

@test "tokens-spec: the spec's reader finds lm-tokenize's ids and header" {
  lm-tokenize --vocab v.bpe --doc-delim '\n\n' text.txt >s.tok
  lm-tokenize --vocab v.bpe --doc-delim '\n\n' --ids text.txt >s.ids
  run python3 "$SPEC" tokens-read s.tok
  [ "$status" -eq 0 ]
  [ "${#lines[@]}" -eq 2 ]
  id=$(python3 "$SPEC" vocab-dump v.bpe | awk '/^identity/ {print $2}')
  n=$(wc -w <s.ids)
  [ "${lines[0]}" = "stream vocab_size 300 eot 299 identity $id width 2 tokens $n" ]
  [ "${lines[1]}" = "$(tr '\n' ' ' <s.ids | sed 's/ *$//; s/  */ /g')" ]
  # two streams concatenated
  cat s.tok s.tok >two.tok
  run python3 "$SPEC" tokens-read two.tok
  [ "$status" -eq 0 ]
  [ "${#lines[@]}" -eq 4 ]
}

@test "tokens-spec: 4-byte tokens past 65,536 ids, 2-byte at exactly 65,536" {
  python3 - <<'PY'
import lmspec
for n in (65536, 65537):
    ent = [(1, b) for b in range(256)] + [(2, (97, 98))] + [(0, None)] * (n - 258) + [(3, lmspec.EOT)]
    open("v%d.bpe" % n, "wb").write(lmspec.Vocab(1, lmspec.PATTERNS[1].encode(), ent, n - 1).to_bytes())
PY
  printf 'ab abc' >t.txt
  for n in 65536 65537; do
    lm-tokenize --vocab v$n.bpe t.txt >t$n.tok
    run python3 "$SPEC" tokens-read t$n.tok
    [ "$status" -eq 0 ]
    w=2
    [ $n -eq 65537 ] && w=4
    [[ "${lines[0]}" == "stream vocab_size $n eot $((n - 1)) "*" width $w tokens 5" ]]
    [ "${lines[1]}" = "256 32 256 99 $((n - 1))" ]
    echo "97 256 $((n - 1)) 98" >w.ids
    python3 "$SPEC" tokens-write py$n.tok v$n.bpe w.ids
    [ "$(lm-tokenize decode --vocab v$n.bpe --keep-eot py$n.tok)" = "aab<|endoftext|>b" ]
  done
}

@test "tokens-spec: streams written from the spec are read by lm-pack and lm-tokenize decode" {
  lm-tokenize --vocab v.bpe --doc-delim '\n\n' text.txt >s.tok
  lm-tokenize --vocab v.bpe --doc-delim '\n\n' --ids text.txt >s.ids
  docs=$(wc -l <s.ids)
  n=$(wc -w <s.ids)
  for c in 1 7 1000 65536; do
    python3 "$SPEC" tokens-write py$c.tok v.bpe s.ids --chunk $c
    lm-tokenize decode --vocab v.bpe py$c.tok | cmp - <(lm-tokenize decode --vocab v.bpe s.tok)
  done
  cat py7.tok py1000.tok >cat.tok
  lm-pack -q -o ds cat.tok
  run lm-pack inspect ds
  [[ "$output" == *"total:        $((2 * n)) tokens, $((2 * docs)) documents"* ]]
  # a chunk of the largest size the spec allows
  python3 -c 'print(" ".join(["5"] * 1048576))' >max.ids
  python3 "$SPEC" tokens-write max.tok v.bpe max.ids --chunk 1048576
  lm-pack -q -o dsmax max.tok
  # a stream with no chunk is valid: it decodes to nothing
  python3 -c 'import lmspec; open("empty.tok", "wb").write(lmspec.stream_bytes([], 300, 299, lmspec.read_vocab("v.bpe").identity))'
  [ -z "$(lm-tokenize decode --vocab v.bpe empty.tok)" ]
}

@test "tokens-spec: what the spec forbids is refused in one line naming the file" {
  python3 - <<'PY'
import struct, lmspec
from lmspec import h
v = lmspec.read_vocab("v.bpe")
ids = list(range(250)) * 2
def hdr(magic=b"LMTS", ver=1, width=2, flags=0, vs=300, eot=299, ident=v.identity, seal=True):
    head = struct.pack("<4sHBBIIQ", magic, ver, width, flags, vs, eot, ident)
    return head + struct.pack("<Q", h(head) ^ (0 if seal else 1))
def chunk(vals, width=2, fix=True):
    t = struct.pack("<%d%s" % (len(vals), "H" if width == 2 else "I"), *vals)
    return struct.pack("<I", len(vals)) + t + struct.pack("<Q", h(t) ^ (0 if fix else 1))
def end(total, fix=True):
    e = struct.pack("<IQ", 0, total)
    return e + struct.pack("<Q", h(e) ^ (0 if fix else 1))
good = hdr() + chunk(ids) + end(len(ids))
body = good[32:]
cases = {
    "magic": hdr(magic=b"LMTX") + body,
    "version": hdr(ver=2) + body,
    "header_sum": hdr(seal=False) + body,
    "flags": hdr(flags=1) + body,
    "width4": hdr(width=4) + chunk(ids, 4) + end(len(ids)),
    "width3": hdr(width=3) + body,
    "eot": hdr(eot=300) + body,
    "vocab0": hdr(vs=0) + body,
    "chunk_sum": hdr() + chunk(ids, fix=False) + end(len(ids)),
    "token": hdr() + chunk(ids + [300]) + end(len(ids) + 1),
    "total": hdr() + chunk(ids) + end(len(ids) + 1),
    "end_sum": hdr() + chunk(ids) + end(len(ids), fix=False),
    "no_end": hdr() + chunk(ids),
    "in_chunk": good[:100],
    "in_end": good[:-5],
    "in_header": good[:20],
    "empty": b"",
    "trailing3": good + b"xyz",
    "trailing_zero": good + b"\0" * 40,
    "chunk_len": hdr() + struct.pack("<I", 1048577) + b"\0" * 64,
    "other_vocab": good + hdr(ident=v.identity ^ 1) + body,
    "other_size": good + hdr(vs=301) + body,
    "other_eot": good + hdr(eot=0xFFFFFFFF) + body,
}
for k, d in cases.items():
    open(k + ".tok", "wb").write(d)
    try:
        lmspec.read_streams(d)
        raise SystemExit("the spec's reader accepts " + k)
    except lmspec.SpecError:
        pass
# valid for the format, but not of v.bpe: decode refuses it, lm-pack does not
open("identity.tok", "wb").write(hdr(ident=v.identity ^ 1) + body)
PY
  for k in magic version header_sum flags width4 width3 eot vocab0 chunk_sum token total end_sum no_end \
    in_chunk in_end in_header empty trailing3 trailing_zero chunk_len other_vocab other_size other_eot; do
    run lm-pack -q -o ds-$k $k.tok
    refused $k.tok "" || { echo "lm-pack, case $k"; return 1; }
    [ ! -e ds-$k/manifest.json ]
    run bash -c "lm-tokenize decode --vocab v.bpe $k.tok >/dev/null"  # (it streams what precedes the damage)
    refused $k.tok "" || { echo "decode, case $k"; return 1; }
  done
  run lm-pack -q -o ds magic.tok
  refused magic.tok "not a token stream"
  run lm-pack -q -o ds version.tok
  refused version.tok "unsupported token stream version 2"
  run lm-pack -q -o ds no_end.tok
  refused no_end.tok "truncated"
  run lm-pack -q -o ds other_eot.tok
  refused other_eot.tok "end-of-text"
  run lm-tokenize decode --vocab v.bpe identity.tok
  refused identity.tok "another vocabulary"
  lm-pack -q -o ds-identity identity.tok
}
