#!/usr/bin/env bats
# tokenize-conformance.bats: imported GPT-2, cl100k_base and o200k_base
# vocabularies encode to the reference ids: GPT-2's published test vectors and
# known answers taken from tiktoken. Needs ../shared/corpora (skips without).
# The broad random comparison with tiktoken itself is the dev script
# tests/python/tokenize_tiktoken_check.py.

load tokenize_helpers

setup() {
  T="$BATS_TEST_TMPDIR"
}

import_gpt2() {
  lm-tokenize import -q --gpt2 "$CORPORA/gpt2-tokenizer/encoder.json" "$CORPORA/gpt2-tokenizer/vocab.bpe" -o "$T/gpt2.bpe"
}

import_tiktoken() {  # NAME PATTERN -> $T/NAME.bpe, specials from NAME.json
  local specials
  specials=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["special_tokens"]; print(" ".join("--special=%s=%d" % kv for kv in d.items()))' "$CORPORA/tokenizers/$1.json")
  # shellcheck disable=SC2086
  lm-tokenize import -q --tiktoken "$CORPORA/tokenizers/$1.tiktoken" --pattern "$2" $specials -o "$T/$1.bpe"
}

# check VOCAB TEXT IDS: encode --ids --no-eot of TEXT (printf format) equals IDS.
check() {
  printf "$2" >"$T/in.txt"
  run lm-tokenize --vocab "$1" --ids --no-eot "$T/in.txt"
  [ "$status" -eq 0 ]
  if [ "$output" != "$3" ]; then
    echo "text: $2"; echo "want: $3"; echo "got:  $output"; return 1
  fi
}

@test "GPT-2 test vectors (encoder.json + vocab.bpe)" {
  need_corpora
  import_gpt2
  python3 - "$CORPORA/gpt2-tokenizer/test_vectors.json" "$T" <<'PY'
import json, sys
vs = [v for v in json.load(open(sys.argv[1])) if v["text"]]
open(sys.argv[2] + "/vec.txt", "wb").write(b"\0".join(v["text"].encode() for v in vs))
open(sys.argv[2] + "/want.txt", "w").write("".join(" ".join(map(str, v["ids"])) + "\n" for v in vs))
PY
  lm-tokenize --vocab "$T/gpt2.bpe" --ids --no-eot --allow-special --doc-delim '\0' "$T/vec.txt" >"$T/got.txt"
  diff "$T/want.txt" "$T/got.txt"
  [ "$(wc -l <"$T/want.txt")" -ge 8 ]
}

@test "GPT-2 from tiktoken's file and from encoder.json is the same vocabulary" {
  need_corpora
  import_gpt2
  mv "$T/gpt2.bpe" "$T/from-json.bpe"
  import_tiktoken gpt2 gpt2
  cmp "$T/from-json.bpe" "$T/gpt2.bpe"
}

@test "cl100k_base known answers (from tiktoken)" {
  need_corpora
  import_tiktoken cl100k_base cl100k
  check "$T/cl100k_base.bpe" 'hello world' '15339 1917'
  check "$T/cl100k_base.bpe" "Don't stop   believin'\n\n  123456 \xc5\xbf'\xc5\xbf '\xc5\xbf" \
    '8161 956 3009 256 2888 9799 3961 220 220 4513 10961 27006 123 6 129 123 364 129 123'
  check "$T/cl100k_base.bpe" '\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88 \xf0\x9f\x8c\x8d na\xc3\xafve caf\xc3\xa9' \
    '9080 22656 45918 252 16144 57933 62903 71634 11410 234 235 95980 588 53050'
  check "$T/cl100k_base.bpe" '    def f(x):\n        return x**2\n' '262 711 282 2120 997 286 471 865 334 17 198'
  run lm-tokenize --vocab "$T/cl100k_base.bpe" --ids --no-eot --allow-special <<<'<|fim_prefix|><|endofprompt|>'
  [ "$output" = "100258 100276 198" ]
}

@test "o200k_base known answers (from tiktoken)" {
  need_corpora
  import_tiktoken o200k_base o200k
  check "$T/o200k_base.bpe" 'hello world' '24912 2375'
  check "$T/o200k_base.bpe" "Don't stop   believin'\n\n  123456 \xc5\xbf'\xc5\xbf '\xc5\xbf" \
    '31559 5666 256 17964 10685 7497 220 220 7633 19354 20757 123 6 70067 461 70067'
  check "$T/o200k_base.bpe" '\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88 \xf0\x9f\x8c\x8d na\xc3\xafve caf\xc3\xa9' \
    '9048 40909 3385 16056 18368 38236 130321 235 153475 737 30469'
  check "$T/o200k_base.bpe" '    def f(x):\n        return x**2\n' '271 1056 285 4061 1883 309 622 1215 410 17 198'
}

@test "long runs of one character round-trip (pre-tokenizer and merges stay linear)" {
  need_corpora
  import_gpt2
  for c in 97 32 49 10; do
    python3 -c 'import sys; sys.stdout.write(chr(int(sys.argv[1])) * 2000000)' "$c" >"$T/run.txt"
    lm-tokenize --vocab "$T/gpt2.bpe" "$T/run.txt" | lm-tokenize decode --vocab "$T/gpt2.bpe" | cmp - "$T/run.txt"
  done
}

@test "real corpora round-trip through the GPT-2 vocabulary" {
  need_corpora
  import_gpt2
  for f in "$CORPORA/wikitext-2/wiki.test.raw.hf-crlf" "$CORPORA/tinyshakespeare/input.txt"; do
    [ -f "$f" ] || continue
    lm-tokenize --vocab "$T/gpt2.bpe" -j 2 "$f" | lm-tokenize decode --vocab "$T/gpt2.bpe" | cmp - "$f"
  done
}

@test "importing tiktoken's files without --special gets tiktoken's special tokens" {
  need_corpora
  import_tiktoken cl100k_base cl100k
  lm-tokenize import -q --tiktoken "$CORPORA/tokenizers/cl100k_base.tiktoken" --pattern cl100k -o "$T/auto.bpe"
  cmp "$T/cl100k_base.bpe" "$T/auto.bpe"
  run lm-tokenize --vocab "$T/auto.bpe" --ids <<<'x'
  [ "$output" = "87 198 100257" ]
}
