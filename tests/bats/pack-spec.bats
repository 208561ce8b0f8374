#!/usr/bin/env bats
# lm-pack's output read by an independent reader written from
# docs/formats/shard.md and manifest.md alone (Python, with the reference
# XXH3 and zstd libraries through ctypes), and the split rule recomputed.

load pack_helpers

setup_file() { pack_fixture; }
setup() {
  need_tokenize
  cd "$BATS_TEST_TMPDIR"
  python3 -c 'import ctypes; ctypes.CDLL("libxxhash.so.0"); ctypes.CDLL("libzstd.so.1")' 2>/dev/null ||
    skip "libxxhash.so.0 or libzstd.so.1 not loadable from Python"
  cat >reader.py <<'EOF'
# A dataset reader from the specs: prints "split tokens documents" and checks
# every rule; with a token stream argument, checks that the train split holds
# exactly its tokens (or, with --split-rule F SEED, the split of each document).
import ctypes, json, os, struct, sys

xx = ctypes.CDLL("libxxhash.so.0")
xx.XXH3_64bits.restype = ctypes.c_uint64
xx.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
zs = ctypes.CDLL("libzstd.so.1")
zs.ZSTD_decompress.restype = ctypes.c_size_t
zs.ZSTD_decompress.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
zs.ZSTD_isError.argtypes = [ctypes.c_size_t]

def h(b):
    return xx.XXH3_64bits(bytes(b), len(b))

def unzstd(src, size):
    dst = ctypes.create_string_buffer(size)
    n = zs.ZSTD_decompress(dst, size, bytes(src), len(src))
    assert not zs.ZSTD_isError(n) and n == size, "bad zstd frame"
    return dst.raw

def read_stream(path):
    data, p, out = open(path, "rb").read(), 0, []
    while p < len(data):
        assert data[p:p + 4] == b"LMTS"
        width = data[p + 6]
        p += 32
        while True:
            (n,) = struct.unpack_from("<I", data, p)
            p += 4
            if n == 0:
                p += 16
                break
            out += struct.unpack_from("<%d%s" % (n, "H" if width == 2 else "I"), data, p)
            p += n * width + 8
    return out

d = sys.argv[1]
m = json.load(open(os.path.join(d, "manifest.json")))
assert m["format"] == "lm-dataset" and m["version"] == 1
vs, vid, eot = m["vocab"]["size"], int(m["vocab"]["id"], 16), m["vocab"]["eot"]
width = m["token_width"]
assert width == (2 if vs <= 65536 else 4)
split_tokens = {"train": [], "val": []}
split_docs = {"train": 0, "val": 0}
for e in m["shards"]:
    data = open(os.path.join(d, e["file"]), "rb").read()
    assert len(data) == e["bytes"] and h(data) == int(e["hash"], 16)
    (magic, ver, w, flags, hvs, heot, hvid, T, D, K, B, idx, hh) = struct.unpack_from("<4sHBBIIQQQIIQQ", data, 0)
    assert magic == b"LMSH" and ver == 1 and hh == h(data[:56]) and flags & ~1 == 0
    assert (hvs, hvid, w) == (vs, vid, width) and heot == (eot if eot >= 0 else 0xFFFFFFFF)
    assert (T, D, B) == (e["tokens"], e["documents"], e["blocks"]) and T >= 1
    assert B == (T + K - 1) // K and len(data) == idx + 24 * B + 16 * D + 8
    index = data[idx:]
    assert struct.unpack_from("<Q", index, len(index) - 8)[0] == h(index[:-8])
    assert (flags & 1) == (e["level"] > 0)
    off, toks = 64, []
    for b in range(B):
        o, ss, rs, bh = struct.unpack_from("<QIIQ", index, 24 * b)
        n = min(K, T - b * K)
        assert o == off and rs == n * width and h(data[o:o + ss]) == bh
        raw = unzstd(data[o:o + ss], rs) if flags & 1 else data[o:o + ss]
        assert len(raw) == rs
        toks += struct.unpack("<%d%s" % (n, "H" if width == 2 else "I"), raw)
        off += ss
    assert off == idx
    if not flags & 1:  # raw tokens sit in place from byte 64
        assert list(struct.unpack_from("<%d%s" % (T, "H" if width == 2 else "I"), data, 64)) == toks
    ends = struct.unpack_from("<%dQ" % D, index, 24 * B)
    numbers = struct.unpack_from("<%dQ" % D, index, 24 * B + 8 * D)
    assert all(a < b for a, b in zip(numbers, numbers[1:]))
    assert all(a < b for a, b in zip((0,) + ends, ends)) and (D == 0 or ends[-1] <= T)
    assert all(toks[x - 1] == eot or x == T for x in ends)
    assert sum(1 for t in toks if t == eot) == sum(1 for x in ends if toks[x - 1] == eot)
    assert max(toks) < vs
    split_tokens[e["split"]] += toks
    split_docs[e["split"]] += D
for s in ("train", "val"):
    print(s, len(split_tokens[s]), split_docs[s])

if len(sys.argv) > 2:
    inp = read_stream(sys.argv[2])
    if len(sys.argv) == 3:
        assert split_tokens["train"] == inp and not split_tokens["val"], "train split != input"
    else:  # --split-rule F SEED: manifest.md's rule, document by document
        f, seed = float(sys.argv[4]), int(sys.argv[5])
        want, doc, i = {"train": [], "val": []}, [], 0
        def place(doc, i):
            head = struct.pack("<%dI" % min(64, len(doc)), *doc[:64])
            u = (h(struct.pack("<QQQ", seed, i, h(head))) >> 11) / 2.0**53
            want["val" if u < f else "train"].extend(doc)
        for t in inp:
            doc.append(t)
            if t == eot:
                place(doc, i)
                doc, i = [], i + 1
        if doc:
            place(doc, i)
        assert want == split_tokens, "split differs from the rule"
    print("matches")
EOF
}

@test "spec: an independent reader reads zstd shards and finds the input" {
  lm-pack -o ds --shard-tokens 3000 --block-tokens 500 -q "$FIX/corpus.tok"
  run python3 reader.py ds "$FIX/corpus.tok"
  [ "$status" -eq 0 ]
  train=$(lm-pack inspect ds | awk '$1=="train:" {print $2}')
  [ "${lines[0]}" = "train $train 8" ]
  [ "${lines[2]}" = "matches" ]
}

@test "spec: an independent reader reads --level 0 shards in place" {
  lm-pack -o raw --level 0 --shard-tokens 5000 --block-tokens 100 -q "$FIX/corpus.tok"
  run python3 reader.py raw "$FIX/corpus.tok"
  [ "$status" -eq 0 ]
  [ "${lines[2]}" = "matches" ]
}

@test "spec: the train/val split follows manifest.md's rule" {
  lm-pack -o ds --val-fraction 0.5 --seed 11 -q "$FIX/corpus.tok"
  run python3 reader.py ds "$FIX/corpus.tok" --split-rule 0.5 11
  [ "$status" -eq 0 ]
  [ "${lines[2]}" = "matches" ]
  [[ "${lines[1]}" != "val 0 0" ]]
}

@test "spec: 32-bit tokens of a large vocabulary (cl100k)" {
  tk="$BATS_TEST_DIRNAME/../../../shared/corpora/tokenizers/cl100k_base.tiktoken"
  [ -f "$tk" ] || skip "../shared/corpora absent"
  lm-tokenize import --tiktoken "$tk" --pattern cl100k -o cl.bpe -q
  lm-tokenize --vocab cl.bpe "$FIX"/doc?.txt >cl.tok
  lm-pack -o ds --block-tokens 300 -q cl.tok
  run lm-pack inspect ds
  [[ "$output" == *"32-bit tokens"* ]]
  run python3 reader.py ds cl.tok
  [ "$status" -eq 0 ]
  [ "${lines[2]}" = "matches" ]
  lm-pack cat ds | lm-tokenize decode --vocab cl.bpe | cmp - "$FIX/corpus.txt"
}
