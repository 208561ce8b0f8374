#!/usr/bin/env bats
# lm-train: a short run produces a complete checkpoint, metrics and progress.

bats_require_minimum_version 1.5.0
load train_helpers

setup_file() { train_setup_file; }

@test "train: --help is a manual" {
  run lm-train --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"Usage: lm-train"* ]]
  [[ "$output" == *"--budget"* ]]
  [[ "$output" == *"DESCRIPTION"* ]]
  [[ "$output" == *"EXAMPLES"* ]]
  [[ "$output" == *"EXIT STATUS"* ]]
}

@test "train: a short run writes a complete step directory, latest and metrics" {
  run --separate-stderr train "$BATS_TEST_TMPDIR/run" --steps 6 --val-every 3
  [ "$status" -eq 0 ]
  r="$BATS_TEST_TMPDIR/run"
  for f in model.safetensors optimizer/optimizer.safetensors config.json generation_config.json \
    tokenizer.json tokenizer_config.json trainer-state.json tok.bpe; do
    [ -s "$r/step-0000006/$f" ]
  done
  [ "$(readlink "$r/latest")" = step-0000006 ]
  cmp "$r/step-0000006/tok.bpe" "$D/tok.bpe"
  # Progress lines carry every field; the CPU's peak is unknown.
  [[ "$stderr" == *"step 1/6 | epoch "*" | loss "*" | lr "*" | grad norm "*" tok/s | MFU unknown | "*" elapsed, "*" left"* ]]
  [[ "$stderr" == *"saved $r/step-0000006"* ]]
  [[ "$stderr" == *"val loss"* ]]
  # metrics.jsonl: one record per step, validation at 3 and at the end.
  [ "$(grep -c '"loss"' "$r/metrics.jsonl")" -eq 6 ]
  [ "$(grep -c '"val_loss"' "$r/metrics.jsonl")" -eq 2 ]
  python3 - "$r" <<'PY'
import json, sys
run = sys.argv[1]
recs = [json.loads(l) for l in open(run + "/metrics.jsonl")]
steps = [r["step"] for r in recs if "loss" in r]
assert steps == [1, 2, 3, 4, 5, 6], steps
for r in recs:
    if "loss" in r:
        assert r["loss"] > 0 and r["lr"] >= 0 and r["grad_norm"] > 0 and r["tokens_per_s"] > 0 and not r["skipped"]
assert recs[-1]["val_loss"] > 0 and recs[-1]["val_bpb"] > 0
st = json.load(open(run + "/step-0000006/trainer-state.json"))
assert st["format"] == "lm-trainer-state" and st["version"] == 2
assert st["step"] == 6 and st["tokens_seen"] == 6 * 4 * 32
assert st["elapsed_seconds"] > 0
assert set(st["files"]) == {"model.safetensors", "optimizer/optimizer.safetensors", "config.json",
                            "generation_config.json", "tokenizer.json", "tokenizer_config.json", "tok.bpe"}
assert "index" in st["loader"] and "state" in st["rng"] and "--steps" in st["command_line"]
cfg = json.load(open(run + "/step-0000006/config.json"))
assert cfg["architectures"] == ["LlamaForCausalLM"] and cfg["model_type"] == "llama"
assert cfg["vocab_size"] == 300 and cfg["hidden_size"] == 64 and cfg["max_position_embeddings"] == 32
PY
}

@test "train: the checkpoint's tensors are the HF Llama ones, fp32, real vocabulary rows" {
  train "$BATS_TEST_TMPDIR/run" --steps 1 2>/dev/null
  python3 - "$BATS_TEST_TMPDIR/run/latest" <<'PY'
import json, struct, sys
d = sys.argv[1]
raw = open(d + "/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
assert hdr.pop("__metadata__") == {"format": "pt"}
cfg = json.load(open(d + "/config.json"))
dim, ffn, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
want = {"model.embed_tokens.weight": [V, dim], "model.norm.weight": [dim]}
for i in range(cfg["num_hidden_layers"]):
    p = "model.layers.%d." % i
    want.update({p + "input_layernorm.weight": [dim], p + "post_attention_layernorm.weight": [dim],
                 p + "self_attn.q_proj.weight": [dim, dim], p + "self_attn.k_proj.weight": [dim, dim],
                 p + "self_attn.v_proj.weight": [dim, dim], p + "self_attn.o_proj.weight": [dim, dim],
                 p + "mlp.gate_proj.weight": [ffn, dim], p + "mlp.up_proj.weight": [ffn, dim],
                 p + "mlp.down_proj.weight": [dim, ffn]})
assert {k: v["shape"] for k, v in hdr.items()} == want, sorted(hdr)
assert all(v["dtype"] == "F32" for v in hdr.values())
end = max(v["data_offsets"][1] for v in hdr.values())
assert 8 + n + end == len(raw)
norm = hdr["model.norm.weight"]["data_offsets"]
w = struct.unpack("<%df" % dim, raw[8 + n + norm[0]:8 + n + norm[1]])
assert all(abs(x - 1) < 0.1 for x in w), w
PY
}

@test "train: --steps 0 saves the initial weights" {
  run train "$BATS_TEST_TMPDIR/run" --steps 0
  [ "$status" -eq 0 ]
  [ -s "$BATS_TEST_TMPDIR/run/step-0000000/model.safetensors" ]
  [ "$(readlink "$BATS_TEST_TMPDIR/run/latest")" = step-0000000 ]
}

@test "train: --ckpt-every and --keep keep only the newest step directories" {
  run train "$BATS_TEST_TMPDIR/run" --steps 6 --ckpt-every 2 --keep 2 --val-every 0
  [ "$status" -eq 0 ]
  [ "$(cd "$BATS_TEST_TMPDIR/run" && echo step-*)" = "step-0000004 step-0000006" ]
  [ -z "$(cd "$BATS_TEST_TMPDIR/run" && ls -A | grep -E '^\.(tmp|old|latest)')" ]
}

# pin DIR: makes DIR impossible to delete: a mount point inside it for root
# (EBUSY), no write permission otherwise. unpin undoes it wherever DIR went.
pin() {
  mkdir "$1/pin"
  if [ "$(id -u)" -eq 0 ]; then
    mount -t tmpfs "lm-pin-$$" "$1/pin" || skip "cannot mount a tmpfs"
  else
    touch "$1/pin/x" && chmod a-w "$1/pin"
  fi
}
unpin() {
  if [ "$(id -u)" -eq 0 ]; then
    awk -v s="lm-pin-$$" '$1 == s { print $2 }' /proc/mounts | xargs -r -n1 umount
  else
    find "$BATS_TEST_TMPDIR" -name pin -exec chmod u+w {} +
  fi
}
teardown() { unpin; }

@test "train: an old step directory that cannot be deleted is a warning; training goes on" {
  r="$BATS_TEST_TMPDIR/run"
  train "$r" --steps 4 --stop-at 1 --val-every 0 2>/dev/null
  pin "$r/step-0000001"
  run --separate-stderr train "$r" --steps 4 --ckpt-every 1 --keep 1 --val-every 0
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"warning: --keep 1: removing $r/step-0000001: "*"(training goes on"* ]]
  [ "$(readlink "$r/latest")" = step-0000004 ]
  # What is left of it is a temporary, never a half-deleted step directory.
  [ "$(cd "$r" && echo step-*)" = step-0000004 ]
  unpin
  train "$r" --steps 5 --val-every 0 2>/dev/null
  [ -z "$(cd "$r" && ls -A | grep -E '^\.old')" ]
}

@test "train: the same seed gives the same weights; another seed does not" {
  train "$BATS_TEST_TMPDIR/a" --steps 2 --seed 5 2>/dev/null
  train "$BATS_TEST_TMPDIR/b" --steps 2 --seed 5 2>/dev/null
  train "$BATS_TEST_TMPDIR/c" --steps 2 --seed 6 2>/dev/null
  [ "$(sha "$BATS_TEST_TMPDIR/a/latest/model.safetensors")" = "$(sha "$BATS_TEST_TMPDIR/b/latest/model.safetensors")" ]
  [ "$(sha "$BATS_TEST_TMPDIR/a/latest/model.safetensors")" != "$(sha "$BATS_TEST_TMPDIR/c/latest/model.safetensors")" ]
}

@test "train: gradient accumulation reaches --batch-tokens" {
  run --separate-stderr train "$BATS_TEST_TMPDIR/run" --steps 2 --batch-tokens 512
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"4 x 32 tokens x 4 micro-steps = 512 tokens per step"* ]]
  grep -q '"tokens_seen": 1024' "$BATS_TEST_TMPDIR/run/latest/trainer-state.json"
}

@test "train: --budget stops at the deadline with the learning rate decayed" {
  run train "$BATS_TEST_TMPDIR/run" --budget 4s --val-every 0 --warmup 0
  [ "$status" -eq 0 ]
  python3 - "$BATS_TEST_TMPDIR/run" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl") if '"loss"' in l]
st = json.load(open(sys.argv[1] + "/latest/trainer-state.json"))
assert len(recs) >= 2, len(recs)
assert 3.0 <= st["elapsed_seconds"] <= 8.0, st["elapsed_seconds"]
peak = recs[0]["lr"]
assert recs[-1]["lr"] < 0.35 * peak, (recs[-1]["lr"], peak)   # in the last 20%: decaying
assert all(b["lr"] <= a["lr"] + 1e-12 for a, b in zip(recs, recs[1:]))
PY
}

@test "plot-metrics: draws a run's metrics to a PNG" {
  r="$BATS_TEST_TMPDIR/run"
  train "$r" --steps 4 --val-every 2 2>/dev/null
  run "$BATS_TEST_DIRNAME/../../scripts/plot-metrics" "$r"
  [ "$status" -eq 0 ]
  [ "$(head -c 8 "$r/loss.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]
  run "$BATS_TEST_DIRNAME/../../scripts/plot-metrics" "$BATS_TEST_TMPDIR/none"
  [ "$status" -eq 1 ]
  [[ "$output" == *"metrics.jsonl: missing or empty"* ]]
}

@test "train: val loss and bits/byte equal lm-eval's on the same tokens (<|endoftext|> out of bits/byte)" {
  # A val split shorter than the context: lm-train's one val window is exactly
  # lm-eval's. Bits/byte left the <|endoftext|> targets' bytes out but counted
  # their loss, so it read higher than lm-eval's.
  T="$BATS_TEST_TMPDIR"
  lm-tokenize encode --vocab "$D/tok.bpe" --doc-delim '\n\n' "$D/corpus.txt" |
    lm-pack -q -o "$T/shards" --val-docs 3
  train "$T/run" --data "$T/shards" --context 256 --micro-batch 1 --steps 2 2>/dev/null
  lm-eval --ckpt "$T/run" --data "$T/shards" --json -q -j 1 >"$T/eval.json"
  python3 - "$T/run/metrics.jsonl" "$T/eval.json" <<'PY'
import json, sys
tr = [json.loads(l) for l in open(sys.argv[1]) if '"val_loss"' in l][-1]
ev = json.load(open(sys.argv[2]))
assert ev["text_targets"] < ev["targets"], ev  # there are <|endoftext|> targets
assert abs(tr["val_loss"] - ev["loss"]) < 1e-5, (tr["val_loss"], ev["loss"])
assert abs(tr["val_bpb"] - ev["bpb"]) < 1e-5, (tr["val_bpb"], ev["bpb"])
PY
}

@test "train: val windows are the ones docs/formats/checkpoint.md describes (each one lm-eval's)" {
  # W = min((n-1)/T, ceil(val_tokens/T)) windows of T targets, window w from
  # token w*floor((n-1)/W): each window evaluated alone by lm-eval --tokens,
  # the sums must give val_loss and val_bpb.
  T="$BATS_TEST_TMPDIR"
  train "$T/run" --val-tokens 320 --steps 2 2>/dev/null
  lm-pack cat "$D/shards" --split val -o "$T/val.tok"
  python3 - "$T" "$BATS_TEST_DIRNAME/../python" <<'PY'
import json, math, subprocess, sys
sys.path.insert(0, sys.argv[2])
import lmspec
d = sys.argv[1]
(hd, ids), = lmspec.read_streams(open(d + "/val.tok", "rb").read())
n, T, val_tokens = len(ids), 32, 320
W = max(1, min((n - 1) // T, -(-val_tokens // T)))
stride = (n - 1) // W
assert W == 10 and stride > T, (n, W, stride)  # spread, not back to back
loss = text = 0.0
count = nbytes = 0
for w in range(W):
    win = list(ids[w * stride:w * stride + T + 1])
    assert len(win) == T + 1
    open(d + "/w.tok", "wb").write(lmspec.stream_bytes(win, hd["vocab_size"], hd["eot_id"], hd["identity"]))
    ev = json.loads(subprocess.check_output(["lm-eval", "--ckpt", d + "/run", "--tokens", d + "/w.tok",
                                             "--json", "-q", "-j", "1", "--device", "cpu"]))
    assert ev["targets"] == T, ev
    loss += ev["loss"] * T
    count += T
    if ev["bytes"]:
        text += ev["bpb"] * math.log(2) * ev["bytes"]
        nbytes += ev["bytes"]
tr = [json.loads(l) for l in open(d + "/run/metrics.jsonl") if '"val_loss"' in l][-1]
assert abs(tr["val_loss"] - loss / count) < 1e-5, (tr["val_loss"], loss / count)
assert abs(tr["val_bpb"] - text / math.log(2) / nbytes) < 1e-5, (tr["val_bpb"], text / math.log(2) / nbytes)
PY
}
