# export_helpers.bash: shared setup for the lm-export Bats files: the lm-train
# data of train_helpers.bash, and two short runs: R1 the tiny preset (tied,
# every row a whole number of Q8_0 blocks), R2 untied with grouped-query
# attention and a width of 48 (rows that are not).

load train_helpers
load spec_helpers

export_setup_file() {
  train_setup_file
  R1="$BATS_FILE_TMPDIR/r1"
  R2="$BATS_FILE_TMPDIR/r2"
  export R1 R2
  train "$R1" --steps 300 --val-every 100 --lr 3e-3 2>/dev/null || return 1
  train "$R2" --steps 2 --val-every 0 --layers 2 --dim 48 --heads 4 --kv-heads 2 --ffn-dim 96 \
    --untied 2>/dev/null
}

# py_with MODULE...: a python3 that imports every MODULE ($LM_TEST_PYTHON
# first, then python3 on the PATH, then /usr/bin/python3), or nothing.
py_with() {
  local p mods
  mods=$(IFS=,; echo "$*")
  for p in ${LM_TEST_PYTHON:-} python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null && "$p" -c "import $mods" 2>/dev/null; then
      echo "$p"
      return
    fi
  done
}

# hf_python: a python3 with transformers and torch, or nothing.
hf_python() {
  py_with transformers torch
}
