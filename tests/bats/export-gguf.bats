#!/usr/bin/env bats
# lm-export --gguf: files that tests/python/ggufspec.py, a GGUF reader written
# from ggml's docs/gguf.md, finds right key by key and byte by byte; and the
# tool's refusals (usage, damaged or partial checkpoints, vocabularies that
# llama.cpp cannot pre-tokenize alike).

bats_require_minimum_version 1.5.0
load export_helpers

GG="$BATS_TEST_DIRNAME/../python/ggufspec.py"

setup_file() {
  export_setup_file
}

setup() {
  spec_setup
}

@test "export: --help is a manual on stdout, exit 0" {
  run --separate-stderr lm-export --help
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
  [[ "$output" == *"lm-export --ckpt"* ]]
  for s in DESCRIPTION EXAMPLES "EXIT STATUS" --gguf --hf --type; do
    [[ "$output" == *"$s"* ]]
  done
}

@test "export: usage errors exit 2" {
  run lm-export --ckpt "$R1"
  [ "$status" -eq 2 ]
  [[ "$output" == *"give --gguf FILE, --hf DIR or both"* ]]
  run lm-export --ckpt "$R1" --gguf x.gguf --type q4_0
  [ "$status" -eq 2 ]
  [[ "$output" == *"--type q4_0"* ]]
  run lm-export --ckpt "$R1" --hf out --type f16
  [ "$status" -eq 2 ]
  [[ "$output" == *"--hf writes f32 or bf16"* ]]
  run lm-export --gguf x.gguf
  [ "$status" -eq 2 ]
  [ ! -e x.gguf ]
}

@test "export: --gguf of every --type follows the spec, q/k rows as llama.cpp's rope pairs them" {
  for t in f32 f16 bf16 q8_0; do
    run --separate-stderr lm-export --ckpt "$R1" --gguf m-$t.gguf --type $t
    [ "$status" -eq 0 ]
    [[ "$stderr" == *"wrote m-$t.gguf: 20 tensors"*"pre-tokenizer gpt-2"* ]]
    run python3 "$GG" check m-$t.gguf "$R1/latest" $t
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == "ok: "*" 20 tensors ($t), 300 tokens"* ]]
  done
  # The sizes: f32 twice f16 and bf16; q8_0 about 34/32 of a byte a weight.
  a=$(stat -c %s m-f32.gguf) b=$(stat -c %s m-f16.gguf) c=$(stat -c %s m-q8_0.gguf)
  [ "$b" -lt "$a" ] && [ "$c" -lt "$b" ]
  ls -a | grep -c '\.tmp\.' | grep -qx 0
}

@test "export: untied head, grouped-query heads, q8_0 rows of 48 fall back to f16" {
  run --separate-stderr lm-export --ckpt "$R2" --gguf m.gguf --type q8_0
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"rows that are no whole blocks of 32: F16"* ]]
  run python3 "$GG" check m.gguf "$R2/latest" q8_0
  echo "$output"
  [ "$status" -eq 0 ]
  lm-export --ckpt "$R2" --gguf f.gguf -q
  run python3 "$GG" check f.gguf "$R2/latest" f32
  echo "$output"
  [ "$status" -eq 0 ]
  python3 "$GG" dump f.gguf | grep -q '^tensor output.weight \[300, 48\] F32'
  python3 "$GG" dump f.gguf | grep -q '^llama.attention.head_count_kv 4 2$'
}

@test "export: the tokenizer has one merge per token a merge makes, as tokenizer.json" {
  lm-export --ckpt "$R1" --gguf m.gguf -q
  lm-tokenize export --hf tok.json --vocab "$R1/latest/tok.bpe"
  python3 - m.gguf tok.json <<'PY'
import json, sys, ggufspec
g = ggufspec.read_gguf(sys.argv[1])["kv"]
tj = json.load(open(sys.argv[2]))
assert g["tokenizer.ggml.merges"][1][1] == tj["model"]["merges"], "GGUF and tokenizer.json merges differ"
merged = sum(1 for t in g["tokenizer.ggml.tokens"][1][1] if len(t) > 1 and not t.startswith("<|"))
assert len(tj["model"]["merges"]) == merged, (len(tj["model"]["merges"]), merged)
PY
}

@test "export: a damaged or partial checkpoint is refused in one line, nothing written" {
  cp -r "$R1/latest/" bad
  printf '\x01' | dd of=bad/model.safetensors bs=1 seek=4000 conv=notrunc 2>/dev/null
  run lm-export --ckpt bad --gguf m.gguf
  refused bad/model.safetensors "checksum mismatch"
  [ ! -e m.gguf ]
  cp -r "$R1/latest/" partial
  rm partial/tok.bpe
  run lm-export --ckpt partial --hf out
  refused partial/tok.bpe "missing"
  [ ! -e out ]
  mkdir run && cp -r "$R1/latest/" run/.tmp-step-0000300-123
  run lm-export --ckpt run --gguf m.gguf
  refused run "no checkpoint here"
  [ "$(ls -A | grep -c tmp)" -eq 0 ]
}

@test "export: a vocabulary llama.cpp has no pre-tokenizer for is refused; --hf still works" {
  lm-tokenize train --vocab-size 280 --pattern '\p{L}+|\s+|.' -o custom.bpe "$D/corpus.txt" 2>/dev/null
  python3 -c 'import sys, lmspec; lmspec.build_step_dir("ck", "custom.bpe", step=3)'
  echo keep >m.gguf
  run lm-export --ckpt ck --gguf m.gguf
  refused ck/tok.bpe "custom regex"
  [[ "$output" == *"llama.cpp has no pre-tokenizer"* ]]
  [ "$(cat m.gguf)" = keep ]
  lm-export --ckpt ck --hf out -q
  [ -s out/tokenizer.json ]
}

@test "export: a version 1 checkpoint (optimizer beside the weights) exports as well" {
  cp -r "$R1/latest/" v1
  python3 - v1 <<'PY'
import json, os, sys, lmspec
d = sys.argv[1]
os.rename(d + "/optimizer/optimizer.safetensors", d + "/optimizer.safetensors")
os.rmdir(d + "/optimizer")
st = json.load(open(d + "/trainer-state.json"))
st.pop("checksum")
st["version"] = 1
st["files"]["optimizer.safetensors"] = st["files"].pop("optimizer/optimizer.safetensors")
for f in ("generation_config.json", "tokenizer.json", "tokenizer_config.json"):
    os.remove(os.path.join(d, f))
    st["files"].pop(f)
open(d + "/trainer-state.json", "wb").write(lmspec.seal_state(st))
PY
  lm-export --ckpt v1 --gguf m.gguf -q
  run python3 "$GG" check m.gguf v1 f32
  [ "$status" -eq 0 ]
}

@test "export: the gguf package reads the files alike, by its own llama tables (dev check)" {
  PY=$(py_with gguf numpy)
  [ -n "$PY" ] || skip "the gguf Python package is not installed (set LM_TEST_PYTHON to a python3 that has it)"
  for t in f32 f16 bf16 q8_0; do
    lm-export --ckpt "$R1" --gguf m-$t.gguf --type $t -q
    run "$PY" "$GG" gguf-package m-$t.gguf "$R1/latest"
    echo "$output"
    [ "$status" -eq 0 ]
    [[ "$output" == "ok: the gguf package reads"*"ok: gguf.Keys names every key"* ]]
  done
  lm-export --ckpt "$R2" --gguf r2.gguf --type q8_0 -q
  run "$PY" "$GG" gguf-package r2.gguf "$R2/latest"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" == *"ok: gguf.Keys names every key"*"F16"*"Q8_0"* ]]
}

@test "export: llama.cpp runs the files as lm runs the checkpoint (dev check)" {
  PY=$(py_with llama_cpp numpy)
  [ -n "$PY" ] || skip "llama-cpp-python is not installed (pip builds it from source; set LM_TEST_PYTHON)"
  # Held-out text with words and characters the training corpus lacks.
  spec_text held.txt
  run "$PY" "$BATS_TEST_DIRNAME/../python/export_llamacpp_check.py" --bin "$(dirname "$(command -v lm-export)")" \
    --ckpt "$R1" --text held.txt --work w -n 24 --threads 1
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" != *FAIL* ]]
  for t in f32 f16 bf16 q8_0; do
    [[ "$output" == *"| $t | "* ]]
  done
  run "$PY" "$BATS_TEST_DIRNAME/../python/export_llamacpp_check.py" --bin "$(dirname "$(command -v lm-export)")" \
    --ckpt "$R2" --text held.txt --work w2 -n 24 --threads 1 --types f32,q8_0
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" == *"| q8_0 | "* ]]
}
