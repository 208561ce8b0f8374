#!/usr/bin/env bats
# Checkpoints against docs/formats/checkpoint.md: a run lm-train writes is read
# by tests/python/lmspec.py (written from the spec alone: safetensors, config,
# trainer-state.json and its checksum, file hashes), and step directories
# lmspec.py builds are loaded, or refused, by lm-sample and lm-eval.

load spec_helpers

setup_file() {
  cd "$BATS_FILE_TMPDIR" || return 1
  awk 'BEGIN { srand(7); split("the a cat dog sat on mat ran fast and then it was very happy", w, " ");
    for (d = 0; d < 200; d++) { s = ""; for (i = 0; i < 30; i++) s = s w[1 + int(rand() * 15)] " "; print s; print "" } }' >corpus.txt
  lm-tokenize train --vocab-size 300 -o v.bpe corpus.txt 2>/dev/null
  lm-tokenize --vocab v.bpe --doc-delim '\n\n' corpus.txt | lm-pack -q -o ds --val-fraction 0.1 --seed 1
  lm-train --data ds --vocab v.bpe --out run --preset tiny --context 32 --micro-batch 4 --steps 3 \
    --val-every 0 --val-tokens 256 --device cpu --threads 1 --log-every 0 2>/dev/null
}

setup() {
  spec_setup
  F=$BATS_FILE_TMPDIR
}

@test "checkpoint-spec: lm-train's run directory follows the spec" {
  [ "$(readlink "$F/run/latest")" = step-0000003 ]
  run python3 "$SPEC" ckpt-check "$F/run/step-0000003" "$F/v.bpe" --lm
  [ "$status" -eq 0 ]
  n=$(python3 "$SPEC" vocab-dump "$F/v.bpe" | awk '/^n_ids/ {print $2}')
  [ "$output" = "step 3 tensors 20 layers 2 vocab $n tied True" ]
  run python3 - "$F/run" <<'PY'
import json, sys, lmspec
run = sys.argv[1]
st = json.load(open(run + "/step-0000003/trainer-state.json"))
assert st["adam_step"] == 3 and st["tokens_seen"] == 3 * st["train"]["tokens_per_step"]
assert st["rng"]["algorithm"] == "splitmix64" and len(st["rng"]["state"]) == 16
assert set(st["loader"]) == {"seed", "epoch", "index"} and set(st["data"]) == {"dir", "identity"}
assert isinstance(st["command_line"], list) and st["command_line"][0].endswith("lm-train")
recs = [json.loads(l) for l in open(run + "/metrics.jsonl")]
steps = [r for r in recs if "loss" in r]
assert [r["step"] for r in steps] == [1, 2, 3]
for r in steps:
    assert set(r) == {"step", "tokens", "elapsed", "loss", "lr", "grad_norm", "tokens_per_s", "skipped",
                      "epochs"}, r
vals = [r for r in recs if "val_loss" in r]
assert vals and set(vals[-1]) == {"step", "tokens", "elapsed", "val_loss", "val_bpb"}, vals
PY
  [ "$status" -eq 0 ]
}

# Layers of zeros leave the residual stream the token's embedding, so the
# next token is the lm_head row nearest to it: the embedding itself (tied), or
# the row lmspec.py put there (untied: each letter is followed by the next).
@test "checkpoint-spec: lm-sample and lm-eval load step directories written from the spec" {
  python3 - "$F/v.bpe" <<'PY'
import random, sys, lmspec
rnd = random.Random(3)
V, D = len(lmspec.read_vocab(sys.argv[1]).entries), 64
emb = [[rnd.gauss(0, 1) for _ in range(D)] for _ in range(V)]
nxt = list(range(V))
for x in range(97, 122):
    nxt[x] = x + 1
nxt[122] = 97
head = [None] * V
for x in range(V):
    head[nxt[x]] = emb[x]
def values(name, shape):
    n = 1
    for s in shape:
        n *= s
    if name == "model.embed_tokens.weight":
        return [v for row in emb for v in row]
    if name == "lm_head.weight":
        return [v for row in head for v in row]
    return [1.0] * n if len(shape) == 1 else [0.0] * n
lmspec.build_step_dir("tied/step-0000002", sys.argv[1], step=2, values=values)
lmspec.build_step_dir("untied/step-0000005", sys.argv[1], step=5, untied=True, kv_heads=2, values=values)
lmspec.build_step_dir("random", sys.argv[1], step=9, with_checksum=False)
PY
  [ "$(lm-sample --ckpt tied --device cpu --prompt a -n 5 --temperature 0 -q)" = aaaaa ]
  [ "$(lm-sample --ckpt untied --device cpu --prompt x -n 5 --temperature 0 -q)" = yzabc ]
  lm-eval --ckpt random --device cpu --text "$F/corpus.txt" -q --json | grep -q '"loss"'
}

@test "checkpoint-spec: a run without latest resolves to the highest step by number" {
  mkdir r
  python3 -c '
import sys, lmspec
for d, s in (("r/step-0000009", 9), ("r/step-10", 10), ("r/step-00000008", 8)):
    lmspec.build_step_dir(d, sys.argv[1], step=s)' "$F/v.bpe"
  run lm-sample --ckpt r --device cpu --prompt a -n 1 --json -q
  [[ "$output" == *'"ckpt":"r/step-10"'* ]]
  echo "step-0000009  " >r/latest
  run lm-sample --ckpt r --device cpu --prompt a -n 1 --json -q
  [[ "$output" == *'"ckpt":"r/step-0000009"'* ]]
  echo "step-0000011" >r/latest
  run lm-sample --ckpt r --device cpu --prompt a -n 1 -q
  refused r/latest "not a complete checkpoint"
}

@test "checkpoint-spec: what the spec forbids is refused in one line naming the file" {
  python3 - "$F/v.bpe" <<'PY'
import json, os, struct, sys, lmspec
from lmspec import h
V = sys.argv[1]
def case(name, **kw):
    d = "c/" + name
    lmspec.build_step_dir(d, V, **kw)
    return d
def state(d):
    return json.loads(open(d + "/trainer-state.json", "rb").read())
def put_state(d, st):
    st.pop("checksum", None)
    open(d + "/trainer-state.json", "wb").write(lmspec.seal_state(st))
def rehash(d):
    st = state(d)
    for f in st["files"]:
        st["files"][f] = "%016x" % h(open(os.path.join(d, f), "rb").read())
    put_state(d, st)
def edit_state(name, fn):
    d = case(name); st = state(d); fn(st); put_state(d, st)
def edit_config(name, fn):
    d = case(name); c = json.load(open(d + "/config.json")); fn(c)
    json.dump(c, open(d + "/config.json", "w")); rehash(d)
def model(name, fn):
    d = case(name)
    meta, ts, raw = lmspec.read_safetensors(d + "/model.safetensors")
    (n,) = struct.unpack_from("<Q", raw)
    header = json.loads(raw[8:8 + n])
    out = fn(header, raw[8 + n:])
    if isinstance(out, tuple):
        header, data = out
        js = json.dumps(header).encode(); js += b" " * (-len(js) % 8)
        out = struct.pack("<Q", len(js)) + js + data
    open(d + "/model.safetensors", "wb").write(out); rehash(d)
expect = {}
# trainer-state.json
d = case("checksum"); raw = open(d + "/trainer-state.json", "rb").read()
open(d + "/trainer-state.json", "wb").write(raw.replace(b'"step": 7', b'"step": 8'))
expect["checksum"] = "trainer-state.json: checksum mismatch"
d = case("after_checksum"); raw = open(d + "/trainer-state.json", "rb").read()
open(d + "/trainer-state.json", "wb").write(raw[:-3] + b',\n  "step": 7\n}\n')
expect["after_checksum"] = "trainer-state.json: the checksum is not the file's last member"
d = case("nul"); open(d + "/trainer-state.json", "ab").write(b"\0")
expect["nul"] = "trainer-state.json: not valid JSON"
edit_state("format", lambda s: s.update(format="x")); expect["format"] = "trainer-state.json: not an lm trainer state"
edit_state("version", lambda s: s.update(version=3)); expect["version"] = "trainer-state.json: unsupported version"
edit_state("no_step", lambda s: s.pop("step")); expect["no_step"] = "trainer-state.json: field 'step'"
edit_state("neg_tokens", lambda s: s.update(tokens_seen=-1)); expect["neg_tokens"] = "field 'tokens_seen'"
d = "c/step_name/step-0000007"; lmspec.build_step_dir(d, V, step=8)  # a run directory, its step renamed
expect["step_name"] = "step 8 in a directory named step-0000007"
edit_state("vocab_id", lambda s: s.update(vocab_id=s["vocab_id"].upper())); expect["vocab_id"] = "field 'vocab_id'"
edit_state("vocab_other", lambda s: s.update(vocab_id="%016x" % (int(s["vocab_id"], 16) ^ 1)))
expect["vocab_other"] = "is not the identity of tok.bpe"
edit_state("eot", lambda s: s.update(eot_id=3)); expect["eot"] = "eot_id 3 is not tok.bpe's end-of-text id"
edit_state("no_tok", lambda s: s["files"].pop("tok.bpe")); expect["no_tok"] = "files lists no tok.bpe"
edit_state("listed", lambda s: s["files"].update({"x.bin": "0" * 16})); expect["listed"] = "x.bin: missing"
edit_state("up", lambda s: s["files"].update({"../x.bin": "0" * 16})); expect["up"] = "bad file name '../x.bin'"
edit_state("v1_sub", lambda s: s.update(version=1) or s["files"].update({"optimizer/x": "0" * 16}))
expect["v1_sub"] = "bad file name 'optimizer/x'"
edit_state("model_hash", lambda s: s["files"].update({"model.safetensors": "0" * 16}))
expect["model_hash"] = "model.safetensors: checksum mismatch"
edit_state("config_hash", lambda s: s["files"].update({"config.json": "0" * 16}))
expect["config_hash"] = "config.json: checksum mismatch"
# config.json
edit_config("cfg_vocab", lambda c: c.update(vocab_size=301)); expect["cfg_vocab"] = "vocab_size 301"
edit_config("cfg_head_dim", lambda c: c.update(head_dim=8)); expect["cfg_head_dim"] = "head_dim 8"
edit_config("cfg_act", lambda c: c.update(hidden_act="gelu")); expect["cfg_act"] = "hidden_act"
edit_config("cfg_rope", lambda c: c.update(rope_scaling={"type": "linear", "factor": 2.0}))
expect["cfg_rope"] = "rope_scaling"
edit_config("cfg_ctx", lambda c: c.pop("max_position_embeddings")); expect["cfg_ctx"] = "max_position_embeddings"
edit_config("cfg_untied", lambda c: c.pop("tie_word_embeddings")); expect["cfg_untied"] = "'lm_head.weight' missing"
# model.safetensors
def drop(hd, data):
    del hd["model.norm.weight"]; return hd, data[:-256]
model("missing", drop); expect["missing"] = "'model.norm.weight' missing"
def extra(hd, data):
    hd["extra"] = {"dtype": "F32", "shape": [1], "data_offsets": [len(data), len(data) + 4]}
    return hd, data + b"\0" * 4
model("extra", extra); expect["extra"] = "unexpected tensor 'extra'"
def shape(hd, data):
    hd["model.norm.weight"]["shape"] = [8, 8]; return hd, data
model("shape", shape); expect["shape"] = "'model.norm.weight' does not have the shape"
def dtype(hd, data):
    t = hd["model.norm.weight"]; t["dtype"] = "I32"; return hd, data
model("dtype", dtype); expect["dtype"] = "dtype I32"
def nan(hd, data):
    b, e = hd["model.norm.weight"]["data_offsets"]
    return hd, data[:b] + struct.pack("<f", float("nan")) + data[b + 4:]
model("nan", nan); expect["nan"] = "NaN"
model("trailing", lambda hd, data: (hd, data + b"\0" * 4)); expect["trailing"] = "file holds"
model("truncated", lambda hd, data: (hd, data[:-4])); expect["truncated"] = "run past the data"
def big(hd, data):
    return struct.pack("<Q", 100000008) + b"{}"
model("header_len", big); expect["header_len"] = "header length 100000008"
def nulpad(hd, data):
    js = json.dumps(hd).encode(); js += b"\0" * (8 - len(js) % 8)
    return struct.pack("<Q", len(js)) + js + data
model("header_nul", nulpad); expect["header_nul"] = "NUL"
def dup(hd, data):
    js = json.dumps(hd)[:-1] + ', "model.norm.weight": ' + json.dumps(hd["model.norm.weight"]) + "}"
    js = js.encode(); js += b" " * (-len(js) % 8)
    return struct.pack("<Q", len(js)) + js + data
model("duplicate", dup); expect["duplicate"] = "appears twice"
def meta(hd, data):
    hd["__metadata__"] = {"format": "pt", "n": 1}; return hd, data
model("metadata", meta); expect["metadata"] = "__metadata__"
for k in expect:
    try:
        lmspec.check_step_dir("c/" + k + ("/step-0000007" if k == "step_name" else ""), V)
        raise SystemExit("the spec's reader accepts " + k)
    except (lmspec.SpecError, KeyError, ValueError) as e:
        pass
json.dump(expect, open("expect.json", "w"))
# allowed by the spec although lm never writes them: BF16/F64 tensors, any
# order, no metadata, no padding, no checksum, white space after it
def bf16(hd, data):
    out, off = bytearray(), 0
    for n, t in sorted(((n, t) for n, t in hd.items() if n != "__metadata__"), key=lambda x: x[1]["data_offsets"][0]):
        b, e = t["data_offsets"]
        half = b"".join(data[i + 2:i + 4] for i in range(b, e, 4))
        t["dtype"] = "BF16"; t["data_offsets"] = [len(out), len(out) + len(half)]; out += half
    return hd, bytes(out)
model("ok_bf16", bf16)
def f64_reversed_bare(hd, data):
    out = bytearray(); new = {}
    for n, t in sorted(((n, t) for n, t in hd.items() if n != "__metadata__"), key=lambda x: -x[1]["data_offsets"][0]):
        b, e = t["data_offsets"]
        vals = struct.unpack("<%df" % ((e - b) // 4), data[b:e])
        blob = struct.pack("<%dd" % len(vals), *vals)
        new[n] = {"dtype": "F64", "shape": t["shape"], "data_offsets": [len(out), len(out) + len(blob)]}
        out += blob
    js = json.dumps(new).encode()
    js += b"" if len(js) % 8 else b" "  # not a multiple of 8
    return struct.pack("<Q", len(js)) + js + bytes(out)
model("ok_f64", f64_reversed_bare)
case("ok_no_checksum", with_checksum=False)
d = case("ok_white"); open(d + "/trainer-state.json", "ab").write(b" \r\n\t\n")
for k in ("ok_bf16", "ok_f64", "ok_no_checksum", "ok_white"):
    lmspec.check_step_dir("c/" + k, V)
PY
  for k in $(python3 -c 'import json; print(" ".join(json.load(open("expect.json"))))'); do
    want=$(python3 -c 'import json, sys; print(json.load(open("expect.json"))[sys.argv[1]])' $k)
    run lm-sample --ckpt c/$k --device cpu --prompt a -n 1 -q
    refused c/$k "$want" || { echo "case $k"; return 1; }
  done
  for k in ok_bf16 ok_f64 ok_no_checksum ok_white; do
    lm-sample --ckpt c/$k --device cpu --prompt a -n 2 -q >/dev/null
  done
  run lm-eval --ckpt c/checksum --device cpu --text "$F/corpus.txt" -q
  refused c/checksum "checksum mismatch"
}

@test "checkpoint-spec: JSON nested 200,000 deep is refused, not a stack overflow" {
  # lm-sample died of SIGSEGV on such a config.json: nlohmann's dump(), which
  # the model_type error message called, recurses once per level.
  python3 - "$F/v.bpe" <<'PY'
import json, sys, lmspec
n = 200000
for name in ("deep_config", "deep_state"):
    d = "deep/" + name
    lmspec.build_step_dir(d, sys.argv[1])
    st = json.load(open(d + "/trainer-state.json"))
    st.pop("checksum")
    if name == "deep_config":
        cfg = open(d + "/config.json").read().replace('"model_type": "llama"', '"model_type": ' + "[" * n + "]" * n)
        open(d + "/config.json", "w").write(cfg)
        st["files"]["config.json"] = "%016x" % lmspec.h(cfg.encode())
        open(d + "/trainer-state.json", "wb").write(lmspec.seal_state(st))
    else:  # sealed by hand: json.dumps cannot nest that deep
        body = json.dumps(st, indent=2).replace('{', '{"x": ' + "[" * n + "]" * n + ",", 1)
        head = (body[:-2] + ',\n  "checksum": "').encode()
        open(d + "/trainer-state.json", "wb").write(head + b"%016x" % lmspec.h(head) + b'"\n}\n')
PY
  run lm-sample --ckpt deep/deep_config --device cpu --prompt a -n 1 -q
  refused deep/deep_config/config.json "not valid JSON for lm (nested deeper than 512 levels at offset"
  run lm-eval --ckpt deep/deep_state --device cpu --text "$F/corpus.txt" -q
  refused deep/deep_state/trainer-state.json "nested deeper than 512 levels"
}
