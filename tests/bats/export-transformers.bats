#!/usr/bin/env bats
# A step directory, and lm-export --hf's directory, as transformers takes them:
# LlamaForCausalLM loads every weight (none missing or unexpected),
# AutoTokenizer's ids are lm-tokenize's (after the <|endoftext|> both put
# first), the log-probability of each target is lm-eval's, every logit is
# tests/python/check_forward.py's (the independent forward that
# tests/unit/cpu/check_forward_test.cpp holds lm's CPU backend to), the loss
# is lm-eval's, and pipeline("text-generation")'s greedy text is lm-sample's.
#
# Needs a python3 with transformers and torch: $LM_TEST_PYTHON, else python3
# on the PATH, else /usr/bin/python3. scripts/install-deps.sh does not
# install transformers; one way, over Debian's python3-torch (install-deps.sh
# --bench): python3 -m venv --system-site-packages V && V/bin/pip install
# transformers==4.40.2, then LM_TEST_PYTHON=V/bin/python. Each test is
# skipped, saying so, without one.

load export_helpers

FWD="$BATS_TEST_DIRNAME/../python/check_forward.py"

setup_file() {
  # No training when every test will skip.
  [ -n "$(hf_python)" ] || return 0
  export_setup_file
}

setup() {
  cd "$BATS_TEST_TMPDIR" || return 1
  PY=$(hf_python)
  [ -n "$PY" ] || skip "transformers and torch not installed (set LM_TEST_PYTHON to a python3 that has them)"
}

# hf_check DIR STEP NLL_TOL GREEDY: DIR (a model directory) in transformers
# against lm's tools on the step directory STEP. NLL_TOL: the largest
# difference allowed between a target's -log p in transformers and in
# lm-eval (nats); the loss gets the same. GREEDY: "same" (the texts must be
# identical) or "any" (printed only: a model whose weights were rounded may
# pick another token where two are close).
hf_check() {
  "$PY" - "$1" "$2" "$3" "$4" "$FWD" <<'PY'
import json, subprocess, sys, warnings
warnings.filterwarnings("ignore")
import torch, transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline
transformers.logging.set_verbosity_error()
d, step, tol, greedy, fwd = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5]
print("transformers %s, torch %s" % (transformers.__version__, torch.__version__))
cfg = json.load(open(d + "/config.json"))
T = cfg["max_position_embeddings"]


def lm(*cmd, stdin=None):
    return subprocess.run(list(cmd), input=stdin, capture_output=True, check=True).stdout


# The tokenizer: lm-tokenize's ids, <|endoftext|> first, and back to the text.
tok = AutoTokenizer.from_pretrained(d)
# tokenizer.json as it is (not the Llama tokenizer of model_type, whose <s>,
# </s> and <unk> are ids past the vocabulary).
assert isinstance(tok, transformers.PreTrainedTokenizerFast), type(tok).__name__
assert max(tok.get_vocab().values()) < cfg["vocab_size"], "ids past the vocabulary"
eot = tok.eos_token_id
assert tok.bos_token == tok.eos_token == "<|endoftext|>", (tok.bos_token, tok.eos_token)
assert eot == cfg["eos_token_id"] == cfg["bos_token_id"], (eot, cfg["eos_token_id"])
texts = ["the cat sat on the mat. then it was happy\n\nthe dog ran",
         "  red  blue\ttree house 42 don't é日本 x", "a", "it's I'll\n\n\n  \t."]
for t in texts:
    ids = [int(x) for x in lm("lm-tokenize", "--vocab", step + "/tok.bpe", "--ids", "--no-eot",
                              stdin=t.encode()).split()]
    assert tok(t, add_special_tokens=False)["input_ids"] == ids, (t, ids)
    assert tok(t)["input_ids"] == [eot] + ids, t
    assert tok.decode(ids) == t, t

# The weights: LlamaForCausalLM, every tensor of the file taken, none missing.
model, info = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32, output_loading_info=True)
assert type(model).__name__ == "LlamaForCausalLM", type(model).__name__
assert not any(info.values()), info
model.eval()

# One document as lm-eval --text reads it: [eot] text [eot], one window.
with open("t.txt", "w") as f:
    f.write(texts[0])
x = tok(texts[0])["input_ids"] + [eot]
n = len(x)
assert 3 <= n <= T + 1, (n, T)
with torch.no_grad():
    logits = model(torch.tensor([x[:-1]])).logits[0].double()
    loss = model(torch.tensor([x]), labels=torch.tensor([x])).loss.item()
nll_hf = torch.nn.functional.cross_entropy(logits, torch.tensor(x[1:]), reduction="none").tolist()

# lm's -log p of each target: lm-eval on the first k tokens scores k - 1
# targets, so k - 1 times its mean loss less k - 2 times the previous one is
# target k - 1's.
sums = [0.0]
for k in range(2, n + 1):
    ev = json.loads(lm("lm-eval", "--ckpt", step, "--text", "t.txt", "--limit-tokens", str(k), "--json", "-q",
                       "--device", "cpu", "-j", "1"))
    assert ev["targets"] == k - 1 and ev["context"] == T, ev
    sums.append(ev["loss"] * (k - 1))
nll_lm = [b - a for a, b in zip(sums, sums[1:])]
worst = max(range(n - 1), key=lambda p: abs(nll_hf[p] - nll_lm[p]))
print("-log p of %d targets: largest difference %.2e (target %d: transformers %.7f, lm-eval %.7f)" % (
    n - 1, abs(nll_hf[worst] - nll_lm[worst]), worst + 1, nll_hf[worst], nll_lm[worst]))
assert abs(nll_hf[worst] - nll_lm[worst]) <= tol, "a target's -log p differs by more than %g" % tol
print("loss transformers %.7f, lm-eval %.7f" % (loss, ev["loss"]))
assert abs(loss - ev["loss"]) <= tol, "loss differs by more than %g" % tol

# Every logit against check_forward.py's float64 forward of DIR's own weights.
open("ids.i32", "wb").write(torch.tensor(x[:-1], dtype=torch.int32).numpy().astype("<i4").tobytes())
open("logits.f32", "wb").write(logits.float().numpy().astype("<f4").tobytes())
r = subprocess.run([sys.executable, fwd, d, "--tokens", "ids.i32", "--batch", "1", "--logits", "logits.f32",
                    "--tol", "1e-4"], capture_output=True, text=True)
print(r.stdout + r.stderr, end="")
assert r.returncode == 0, "transformers' logits are not check_forward.py's"

# Greedy text: plain, and with a repeat penalty (the same CTRL rule; lm-sample's
# window of 64 tokens covers prompt and text here, as transformers' does).
# Within the context: past it lm-sample slides its window, transformers goes
# on past max_position_embeddings. The pipeline tokenizes the prompt with the
# tokenizer's defaults (<|endoftext|> first) from transformers 4.43; before,
# it passed add_special_tokens=False unless told otherwise.
from packaging.version import Version
kw = {} if Version(transformers.__version__) >= Version("4.43") else {"add_special_tokens": True}
gen = pipeline("text-generation", model=d, torch_dtype=torch.float32)
differ = 0
for p, rp in [("the cat", 1), ("then it was", 1), ("a dog", 1.3), ("red", 1.3), ("the", 1.5)]:
    m = T - len(tok(p)["input_ids"])
    hf = gen(p, do_sample=False, max_new_tokens=m, return_full_text=False,
             repetition_penalty=rp, **kw)[0]["generated_text"]
    # Bytes that are no UTF-8 (an untrained model's) as tokenizers shows them.
    ls = lm("lm-sample", "--ckpt", step, "--prompt", p, "-n", str(m), "--temperature", "0", "-q",
            "--repeat-penalty", str(rp), "--device", "cpu", "-j", "1").decode(errors="replace")
    print("greedy %r, penalty %g: %s" % (p, rp, "same" if hf == ls else "transformers %r, lm-sample %r" % (hf, ls)))
    differ += hf != ls
assert greedy == "any" or differ == 0, "%d greedy texts differ" % differ
print("ok")
PY
}

@test "transformers: a step directory is a model directory: ids, -log p, logits, greedy text are lm's" {
  run hf_check "$R1/latest" "$R1/latest" 1e-4 same
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[-1]}" = ok ]
}

@test "transformers: grouped-query attention and an untied head load alike" {
  run hf_check "$R2/latest" "$R2/latest" 1e-4 same
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[-1]}" = ok ]
}

@test "transformers: lm-export --hf's directory loads alike (f32 exactly, bf16 close)" {
  lm-export --ckpt "$R1" --hf f32 -q
  run hf_check f32 "$R1/latest" 1e-4 same
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[-1]}" = ok ]
  # BF16 weights: each -log p within 0.03 nats of lm's float32 model; the
  # logits are still check_forward.py's for the rounded weights.
  lm-export --ckpt "$R1" --hf bf16 --type bf16 -q
  run hf_check bf16 "$R1/latest" 0.03 any
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[-1]}" = ok ]
}
