#!/usr/bin/env bats
# lm-export --hf: an inference-only Hugging Face directory, safe to upload:
# the files it holds (and those it does not), the weights as F32 or BF16,
# the model card's figures, and how an existing directory is treated.

bats_require_minimum_version 1.5.0
load export_helpers

setup_file() {
  export_setup_file
}

setup() {
  spec_setup
}

@test "export-hf: the model's files only, weights and tokenizer as the step directory's" {
  run --separate-stderr lm-export --ckpt "$R1" --hf out
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"wrote out: weights F32"* ]]
  [ "$(ls out | tr '\n' ' ')" = "README.md config.json generation_config.json model.safetensors tokenizer.json tokenizer_config.json " ]
  s="$R1/latest"
  for f in model.safetensors config.json generation_config.json tokenizer.json tokenizer_config.json; do
    cmp "$s/$f" "out/$f"
  done
  ! grep -q "$BATS_FILE_TMPDIR" out/*.json out/README.md
  [ "$(ls -a | grep -c tmp)" -eq 0 ]
}

@test "export-hf: --type bf16 rounds each weight to nearest even, config says bfloat16" {
  lm-export --ckpt "$R2" --hf out --type bf16 -q
  python3 - "$R2/latest" out <<'PY'
import json, struct, sys, lmspec
src, out = sys.argv[1:]
_, a, _ = lmspec.read_safetensors(src + "/model.safetensors")
meta, b, _ = lmspec.read_safetensors(out + "/model.safetensors")
assert meta == {"format": "pt"} and [t[0] for t in a] == [t[0] for t in b]
for (n, _, shape, raw), (m, dt, shape2, half) in zip(a, b):
    assert dt == "BF16" and shape == shape2, (n, dt)
    for (x,), (y,) in zip(struct.iter_unpack("<I", raw), struct.iter_unpack("<H", half)):
        assert y == (x + 0x7FFF + ((x >> 16) & 1)) >> 16, n
cfg = json.load(open(out + "/config.json"))
assert cfg["torch_dtype"] == "bfloat16" and cfg["tie_word_embeddings"] is False
assert cfg["num_key_value_heads"] == 2 and cfg["hidden_size"] == 48
PY
}

@test "export-hf: the model card has the training figures and no path" {
  lm-export --ckpt "$R1" --hf out -q
  card=out/README.md
  head -1 $card | grep -qx -- ---
  grep -q '^pipeline_tag: text-generation$' $card
  grep -q '^| steps | 300 |$' $card
  grep -q '^| tokens | 38.4k |$' $card
  grep -q '^| layers x width | 2 x 64, FFN 192 (SwiGLU) |$' $card
  grep -q '^| vocabulary | 300 tokens, byte-level BPE, gpt2 pre-tokenizer |$' $card
  grep -q '^| train loss (mean of the last 50 steps) | [0-9.]* nats/token |$' $card
  want=$(python3 -c '
import json, sys
v = [json.loads(l) for l in open(sys.argv[1]) if "val_loss" in l][-1]
print("| validation loss at step %d | %.4f nats/token" % (v["step"], v["val_loss"]))' "$R1/metrics.jsonl")
  grep -qF "$want" $card
  ! grep -q "$BATS_FILE_TMPDIR\|lm-train --\|command_line" $card
}

@test "export-hf: a previous export is replaced, someone else's directory is not" {
  lm-export --ckpt "$R1" --hf out -q
  lm-export --ckpt "$R2" --hf out -q
  grep -q '"hidden_size": 48' out/config.json
  mkdir mine && echo notes >mine/notes.txt
  run lm-export --ckpt "$R1" --hf mine
  refused mine "holds notes.txt, which lm-export does not write"
  [ "$(ls mine)" = notes.txt ]
  echo x >file
  run lm-export --ckpt "$R1" --hf file
  refused file "not a directory"
  mkdir empty
  lm-export --ckpt "$R1" --hf empty -q
  [ -s empty/model.safetensors ]
  [ "$(ls -a | grep -c tmp)" -eq 0 ]
}

@test "export-hf: a failure leaves neither the directory nor its temporary" {
  # A special token that is not UTF-8 fails the tokenizer files, after the
  # weights are written into the temporary directory.
  python3 -c '
import base64
with open("b.tiktoken", "w") as f:
    for r in range(256):
        f.write("%s %d\n" % (base64.b64encode(bytes([r])).decode(), r))'
  lm-tokenize import -q --tiktoken b.tiktoken --pattern gpt2 --special $'<|\xff|>=256' -o bad.bpe
  python3 -c 'import lmspec; lmspec.build_step_dir("ck", "bad.bpe", step=2)'
  run lm-export --ckpt ck --hf out
  refused ck/tok.bpe "special token 256 is not valid UTF-8"
  [ ! -e out ]
  [ "$(ls -a | grep -c tmp)" -eq 0 ]
}
