# evalsample_helpers.bash: fixtures shared by the lm-eval and lm-sample Bats
# tests: a small corpus, its vocabulary, a packed dataset with a val split, and
# a tiny model trained for a few steps with a checkpoint every 50 steps.

# make_corpus FILE: 80 short documents separated by "\n%\n", with some
# multi-byte UTF-8 (é, €, 日本) so that byte counts differ from characters.
make_corpus() {
  awk 'BEGIN {
    split("the quick brown fox jumps over a lazy dog while cats sleep near warm stones", w, " ");
    n = length(w);
    for (d = 0; d < 80; d++) {
      if (d > 0) printf "\n%%\n";
      printf "Story %d: ", d;
      for (i = 0; i < 40; i++) {
        printf "%s ", w[(d * 7 + i * i + i * 3) % n + 1];
        if (i % 13 == 5) printf "café €%d ", i;
        if (i % 17 == 9) printf "日本 ";
      }
      printf "the end.";
    }
  }' >"$1"
}

# make_fixture DIR: DIR/corpus.txt, DIR/tok.bpe, DIR/shards (with val), DIR/val.tok
# (the val documents as a token stream), DIR/run (steps 50, 100, 150).
make_fixture() {
  local d=$1
  mkdir -p "$d"
  make_corpus "$d/corpus.txt"
  lm-tokenize train --vocab-size 320 -o "$d/tok.bpe" "$d/corpus.txt" 2>/dev/null
  lm-tokenize encode --vocab "$d/tok.bpe" --doc-delim '\n%\n' "$d/corpus.txt" >"$d/all.tok"
  lm-pack -q -o "$d/shards" --val-fraction 0.25 --seed 1 "$d/all.tok"
  lm-train --data "$d/shards" --vocab "$d/tok.bpe" --out "$d/run" --preset tiny --context 64 \
    --steps 150 --ckpt-every 50 --keep 0 --micro-batch 4 --val-tokens 0 --seed 1 --device cpu \
    --threads 1 --log-every 1000 >/dev/null 2>"$d/train.log"
}

# The fixture for this Bats file, built once in setup_file.
fixture_setup() {
  FIX="$BATS_FILE_TMPDIR/fix"
  export FIX
  make_fixture "$FIX" || {
    cat "$FIX/train.log" >&2
    return 1
  }
}

# json_get FIELD: the field of the one JSON object on stdin.
json_get() {
  python3 -c 'import json,sys; v=json.loads(sys.stdin.readline())[sys.argv[1]]; print("null" if v is None else v)' "$1"
}

# numpy_python: a python3 that has numpy (Debian's, when the PATH's lacks it), or nothing.
numpy_python() {
  local p
  for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null && "$p" -c 'import numpy' 2>/dev/null; then
      echo "$p"
      return
    fi
  done
}

# np_eval_ref PYTHON STEP_DIR TOKENS T S LIMIT: an independent numpy transcription
# of the model (transformers' Llama: RMSNorm, RoPE rotate-half, causal
# attention, SwiGLU, tied head) and of the windows (Hugging Face's strided
# loop, max_length = T + 1); prints "MEAN_LOSS TARGETS".
np_eval_ref() {
  "$1" - "$2" "$3" "$4" "$5" "$6" <<'PYEOF'
import json, struct, sys
import numpy as np
ck, tokpath, T, S, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
cfg = json.load(open(ck + "/config.json"))
raw = open(ck + "/model.safetensors", "rb").read()
n = struct.unpack_from("<Q", raw, 0)[0]
hdr = json.loads(raw[8:8 + n])
W = {}
for k, v in hdr.items():
    if k == "__metadata__":
        continue
    assert v["dtype"] == "F32"
    a, b = v["data_offsets"]
    W[k] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<f4").reshape(v["shape"]).astype(np.float64)
data = open(tokpath, "rb").read()
pos, toks = 0, []
while pos < len(data):
    width = data[pos + 6]
    pos += 32
    while True:
        cnt = struct.unpack_from("<I", data, pos)[0]
        pos += 4
        if cnt == 0:
            pos += 16
            break
        toks += list(np.frombuffer(data, dtype="<u2" if width == 2 else "<u4", count=cnt, offset=pos))
        pos += cnt * width + 8
toks = np.array(toks[:limit], dtype=np.int64)
H, D, L = cfg["num_attention_heads"], cfg["hidden_size"], cfg["num_hidden_layers"]
KV = cfg["num_key_value_heads"]
hd, eps = D // H, cfg["rms_norm_eps"]
inv = 1.0 / cfg["rope_theta"] ** (np.arange(0, hd, 2) / hd)
def norm(x, w):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w
def rope(x):  # x (heads, t, hd)
    t = x.shape[1]
    f = np.outer(np.arange(t), inv)
    cos, sin = np.cos(np.concatenate([f, f], -1)), np.sin(np.concatenate([f, f], -1))
    h = hd // 2
    rot = np.concatenate([-x[..., h:], x[..., :h]], -1)
    return x * cos + rot * sin
def logits(ids):
    x = W["model.embed_tokens.weight"][ids]
    t = len(ids)
    mask = np.triu(np.full((t, t), -np.inf), 1)
    for i in range(L):
        p = "model.layers.%d." % i
        h = norm(x, W[p + "input_layernorm.weight"])
        q = (h @ W[p + "self_attn.q_proj.weight"].T).reshape(t, H, hd).transpose(1, 0, 2)
        k = (h @ W[p + "self_attn.k_proj.weight"].T).reshape(t, KV, hd).transpose(1, 0, 2)
        v = (h @ W[p + "self_attn.v_proj.weight"].T).reshape(t, KV, hd).transpose(1, 0, 2)
        q, k = rope(q), rope(k)
        k, v = np.repeat(k, H // KV, 0), np.repeat(v, H // KV, 0)
        a = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + mask
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        y = (a @ v).transpose(1, 0, 2).reshape(t, D)
        x = x + y @ W[p + "self_attn.o_proj.weight"].T
        h = norm(x, W[p + "post_attention_layernorm.weight"])
        g, u = h @ W[p + "mlp.gate_proj.weight"].T, h @ W[p + "mlp.up_proj.weight"].T
        x = x + (g / (1 + np.exp(-g)) * u) @ W[p + "mlp.down_proj.weight"].T
    x = norm(x, W["model.norm.weight"])
    return x @ W.get("lm_head.weight", W["model.embed_tokens.weight"]).T
total, count, prev_end, N = 0.0, 0, 0, len(toks)
for begin in range(0, N, S):
    end = min(begin + T + 1, N)
    trg = end - max(prev_end, 1)  # the first token is never a target
    seg = toks[begin:end]
    lg = logits(seg[:-1])
    lg = lg - lg.max(-1, keepdims=True)
    lp = lg - np.log(np.exp(lg).sum(-1, keepdims=True))
    nll = -lp[np.arange(len(seg) - 1), seg[1:]]
    total += nll[len(nll) - trg:].sum()
    count += trg
    prev_end = end
    if end == N:
        break
print("%.10f %d" % (total / count, count))
PYEOF
}
