#!/usr/bin/env bats
# tokenize-basic.bats: lm-tokenize as users run it: train, encode, decode,
# documents, ids, threads, stats, help.

load tokenize_helpers

setup() { setup_vocab; }

@test "help reads like a man page, for the tool and every command" {
  run lm-tokenize --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"Usage: lm-tokenize"* ]]
  [[ "$output" == *"EXIT STATUS"* ]]
  for c in encode decode train import export stats; do
    run lm-tokenize "$c" --help
    [ "$status" -eq 0 ]
    [[ "$output" == *"Usage: lm-tokenize"* ]]
    [[ "$output" == *"DESCRIPTION"* ]]
    [[ "$output" == *"EXAMPLES"* ]]
    # Options name their value (FILE, N, STR), as the other tools' do, not "arg".
    if grep -nE ' arg( |$)' <<<"$output"; then false; fi
  done
  run lm-tokenize --version
  [ "$status" -eq 0 ]
  [[ "$output" == "lm-tokenize "* ]]
}

@test "train writes a vocabulary of the asked size with <|endoftext|> last" {
  run lm-tokenize train --vocab-size 300 -o "$T/s.bpe" "$T/train.txt"
  [ "$status" -eq 0 ]
  [[ "$output" == *"300 ids (43 merges, 1 special)"* ]]
  echo -n '<|endoftext|>' | lm-tokenize --vocab "$T/s.bpe" --ids --allow-special --no-eot >"$T/ids"
  [ "$(cat "$T/ids")" = "299" ]
}

@test "encode then decode gives back the exact bytes, invalid UTF-8 included" {
  printf 'caf\xc3\xa9 \xff\xfe broken \xe2\x82 end\n\n  spaces   \x00 nul' >"$T/in.bin"
  cat "$T/train.txt" >>"$T/in.bin"
  lm-tokenize --vocab "$T/v.bpe" "$T/in.bin" >"$T/out.tok"
  lm-tokenize decode --vocab "$T/v.bpe" "$T/out.tok" >"$T/back.bin"
  cmp "$T/in.bin" "$T/back.bin"
}

@test "the bare command, encode, and stdin all give the same stream" {
  lm-tokenize --vocab "$T/v.bpe" "$T/train.txt" >"$T/a.tok"
  lm-tokenize encode --vocab "$T/v.bpe" "$T/train.txt" >"$T/b.tok"
  lm-tokenize encode --vocab "$T/v.bpe" <"$T/train.txt" >"$T/c.tok"
  cmp "$T/a.tok" "$T/b.tok"
  cmp "$T/a.tok" "$T/c.tok"
  [ "$(head -c 4 "$T/a.tok")" = "LMTS" ]
}

@test "--ids writes one line per document, <|endoftext|> last unless --no-eot" {
  printf 'the world\nof men\n' >"$T/two.txt"
  run lm-tokenize --vocab "$T/v.bpe" --ids --lines "$T/two.txt"
  [ "$status" -eq 0 ]
  [ "${#lines[@]}" -eq 2 ]
  [[ "${lines[0]}" == *" 599" ]]
  [[ "${lines[1]}" == *" 599" ]]
  run lm-tokenize --vocab "$T/v.bpe" --ids --lines --no-eot "$T/two.txt"
  [[ "${lines[0]}" != *"599"* ]]
  echo "${lines[0]} ${lines[1]}" | lm-tokenize decode --vocab "$T/v.bpe" --ids >"$T/back"
  [ "$(cat "$T/back")" = "the worldof men" ]
}

@test "--doc-delim cuts documents and decode --doc-delim restores them" {
  printf 'first quote\n%%\nsecond\none\n%%\nthird\n' >"$T/f.txt"
  run lm-tokenize --vocab "$T/v.bpe" --ids --doc-delim '\n%\n' "$T/f.txt"
  [ "$status" -eq 0 ]
  [ "${#lines[@]}" -eq 3 ]
  lm-tokenize --vocab "$T/v.bpe" --doc-delim '\n%\n' "$T/f.txt" |
    lm-tokenize decode --vocab "$T/v.bpe" --doc-delim '\n%\n' >"$T/back"
  printf 'first quote\n%%\nsecond\none\n%%\nthird\n\n%%\n' >"$T/want"
  cmp "$T/want" "$T/back"
}

@test "--paragraphs splits at blank lines, white space only ones included, in any line ending" {
  printf '\n  \npara one\nline two\n\npara two\r\n\r\n \t \r\npara three\r\rfour\n\n\n  five\n \n' >"$T/p.txt"
  lm-tokenize --vocab "$T/v.bpe" --paragraphs "$T/p.txt" |
    lm-tokenize decode --vocab "$T/v.bpe" --doc-delim '|' >"$T/back"
  printf 'para one\nline two|para two|para three|four|  five|' | cmp - "$T/back"
  run lm-tokenize --vocab "$T/v.bpe" --paragraphs --lines "$T/p.txt"
  [ "$status" -eq 2 ]
}

@test "--paragraphs: CRLF, CR and LF copies of a text give the same documents" {
  # 2000 paragraphs of 1 to 6 lines (some indented), 1 to 3 blank lines
  # between them, some of spaces and tabs; read through a pipe, whose short
  # reads cut it anywhere.
  awk 'BEGIN { srand(11); split("the of and a to in is was he that it for with as his on", w, " ");
    for (p = 0; p < 2000; p++) { nl = 1 + int(rand() * 6);
      for (l = 0; l < nl; l++) { n = 3 + int(rand() * 15); s = "";
        for (i = 0; i < n; i++) s = s (i ? " " : "") w[1 + int(rand() * 16)];
        print (rand() < 0.1 ? "  " : "") s }
      nb = 1 + int(rand() * 3); for (b = 0; b < nb; b++) print (rand() < 0.3 ? " \t " : "") } }' >"$T/lf.txt"
  sed 's/$/\r/' "$T/lf.txt" >"$T/crlf.txt"
  tr '\n' '\r' <"$T/lf.txt" >"$T/cr.txt"
  for f in lf cr; do
    cat "$T/$f.txt" | lm-tokenize --vocab "$T/v.bpe" --paragraphs -j 2 |
      lm-tokenize decode --vocab "$T/v.bpe" --doc-delim '\n@@\n' | tr '\r' '\n' >"$T/$f.out"
  done
  [ "$(grep -c "^@@$" "$T/lf.out")" -eq 2000 ]
  cmp "$T/lf.out" "$T/cr.out"
  # CRLF: the same paragraphs, each line ending "\r\n" where LF has "\n".
  tr -d '\r' <"$T/crlf.txt" | cmp - "$T/lf.txt"
  cat "$T/crlf.txt" | lm-tokenize --vocab "$T/v.bpe" --paragraphs |
    lm-tokenize decode --vocab "$T/v.bpe" --doc-delim '\n@@\n' | tr -d '\r' | cmp - "$T/lf.out"
  # A slow writer whose pauses fall right after a "\r", inside blank lines and
  # inside the indentation of a line: the reader must wait to see what follows.
  python3 - "$T/crlf.txt" <<'EOF' | lm-tokenize --vocab "$T/v.bpe" --paragraphs |
import re, sys, time
data = open(sys.argv[1], "rb").read()
cuts = [i + 1 for i in range(len(data)) if data[i:i + 3] in (b"\r\n\r", b"\r\n ")][::25]
cuts += [m.end() - 1 for m in re.finditer(rb"\n  [a-z]", data)][::5]
cuts = sorted(set(cuts))
last = 0
for c in cuts + [len(data)]:
    sys.stdout.buffer.write(data[last:c])
    sys.stdout.flush()
    time.sleep(0.01)
    last = c
EOF
    lm-tokenize decode --vocab "$T/v.bpe" --doc-delim '\n@@\n' | tr -d '\r' | cmp - "$T/lf.out"
  # --doc-delim '\n\n' does not split CRLF text at all: one document.
  run lm-tokenize stats --vocab "$T/v.bpe" --doc-delim '\n\n' "$T/crlf.txt"
  [ "${lines[0]}" = "documents 1" ]
}

@test "--jsonl FIELD takes the document from each line's string field" {
  printf '{"text": "the world", "id": 1}\n\n{"id": 2, "text": "of \\u00e9 men"}\n' >"$T/d.jsonl"
  run lm-tokenize --vocab "$T/v.bpe" --ids --no-eot --jsonl text "$T/d.jsonl"
  [ "$status" -eq 0 ]
  [ "${#lines[@]}" -eq 2 ]
  echo "${lines[1]}" | lm-tokenize decode --vocab "$T/v.bpe" --ids >"$T/back"
  [ "$(cat "$T/back")" = "of é men" ]
}

@test "special-token text is ordinary text unless --allow-special" {
  run lm-tokenize --vocab "$T/v.bpe" --ids --no-eot <<<"a<|endoftext|>b"
  [[ " $output " != *" 599 "* ]]
  run lm-tokenize --vocab "$T/v.bpe" --ids --no-eot --allow-special <<<"a<|endoftext|>b"
  [[ " $output " == *" 599 "* ]]
}

@test "one thread or many: the same stream, on documents long enough to split" {
  for i in $(seq 64); do cat "$T/train.txt"; done >"$T/big.txt"  # several batches at -j 1
  printf 'tail without newline' >>"$T/big.txt"
  lm-tokenize --vocab "$T/v.bpe" -j 1 "$T/big.txt" "$T/train.txt" "$T/big.txt" >"$T/j1.tok"
  lm-tokenize --vocab "$T/v.bpe" -j 3 "$T/big.txt" "$T/train.txt" "$T/big.txt" >"$T/j3.tok"
  cmp "$T/j1.tok" "$T/j3.tok"
  lm-tokenize decode --vocab "$T/v.bpe" "$T/j3.tok" >"$T/back.txt"
  cat "$T/big.txt" "$T/train.txt" "$T/big.txt" | cmp - "$T/back.txt"
  lm-tokenize --vocab "$T/v.bpe" --ids --no-eot "$T/big.txt" >"$T/ids"
  [ "$(wc -l <"$T/ids")" -eq 1 ]
}

@test "training gives the same vocabulary for any thread count" {
  for i in 1 2 3 4; do cat "$T/train.txt"; done >"$T/big.txt"
  lm-tokenize train -q -j 1 --vocab-size 800 -o "$T/a.bpe" "$T/big.txt" "$T/train.txt"
  lm-tokenize train -q -j 3 --vocab-size 800 -o "$T/b.bpe" "$T/big.txt" "$T/train.txt"
  cmp "$T/a.bpe" "$T/b.bpe"
}

@test "train options: pattern, specials, min-frequency, stdin" {
  lm-tokenize train -q --vocab-size 400 --pattern cl100k --special '<|pad|>' -o "$T/c.bpe" <"$T/train.txt"
  run lm-tokenize --vocab "$T/c.bpe" --ids --no-eot --allow-special <<<"<|pad|>"
  [ "$output" = "399 10" ]
  run lm-tokenize train --vocab-size 100000 --min-frequency 1000 -o "$T/m.bpe" "$T/train.txt"
  [ "$status" -eq 0 ]
  [[ "$output" == *"ran out of pairs"* ]]
  lm-tokenize train -q --vocab-size 400 --pattern '[a-z]+|[^a-z]' -o "$T/r.bpe" "$T/train.txt"
  lm-tokenize --vocab "$T/r.bpe" "$T/train.txt" | lm-tokenize decode --vocab "$T/r.bpe" | cmp - "$T/train.txt"
}

@test "concatenated streams decode to the concatenated texts" {
  printf 'one' >"$T/1.txt"
  printf 'two' >"$T/2.txt"
  lm-tokenize --vocab "$T/v.bpe" "$T/1.txt" >"$T/1.tok"
  lm-tokenize --vocab "$T/v.bpe" "$T/2.txt" >"$T/2.tok"
  cat "$T/1.tok" "$T/2.tok" | lm-tokenize decode --vocab "$T/v.bpe" --lines >"$T/back"
  [ "$(cat "$T/back")" = "$(printf 'one\ntwo')" ]
}

@test "stats counts documents, bytes and tokens" {
  printf 'the world\nof men\n' >"$T/two.txt"
  run lm-tokenize stats --vocab "$T/v.bpe" --lines "$T/two.txt"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "documents 2" ]
  [ "${lines[1]}" = "bytes 15" ]
  n=$(lm-tokenize --vocab "$T/v.bpe" --ids --no-eot --lines "$T/two.txt" | wc -w)
  [ "${lines[2]}" = "tokens $n" ]
  [[ "${lines[3]}" == "bytes_per_token "* ]]
}

@test "--allow-special finds a special token that holds a newline anywhere in a long document" {
  # Documents over 1 MiB are encoded in pieces cut after newlines; a cut must
  # not fall inside a special token's text.
  lm-tokenize train -q --vocab-size 400 --special $'<|x\ny|>' -o "$T/nl.bpe" "$T/train.txt"
  sp=$(echo -n $'<|x\ny|>' | lm-tokenize --vocab "$T/nl.bpe" --ids --no-eot --allow-special)
  [ "$(echo "$sp" | wc -w)" -eq 1 ]
  for k in 17 174779 174780; do
    awk -v k=$k 'BEGIN { for (i = 0; i < k; i++) printf "hello "; printf "<|x\ny|> world\n" }' |
      lm-tokenize --vocab "$T/nl.bpe" --ids --no-eot --allow-special >"$T/ids"
    [ "$(tr ' ' '\n' <"$T/ids" | grep -c "^$sp\$")" -eq 1 ]
  done
}

@test "import a tiktoken rank file: ids kept, gaps unused, specials placed" {
  # 256 byte tokens at ranks 0..255 in reverse byte order, then "ab" = 256,
  # "abc" = 258 (257 unused); <|endoftext|> at 300.
  python3 - "$T/tiny.tiktoken" <<'PY'
import base64, sys
with open(sys.argv[1], "w") as f:
    for r in range(256):
        f.write("%s %d\n" % (base64.b64encode(bytes([255 - r])).decode(), r))
    f.write("%s 256\n%s 258\n" % (base64.b64encode(b"ab").decode(), base64.b64encode(b"abc").decode()))
PY
  run lm-tokenize import --tiktoken "$T/tiny.tiktoken" --pattern gpt2 --special '<|endoftext|>=300' -o "$T/tiny.bpe"
  [ "$status" -eq 0 ]
  [[ "$output" == *"301 ids (2 merges, 1 special)"* ]]
  run lm-tokenize --vocab "$T/tiny.bpe" --ids <<<"abcab"
  [ "$output" = "258 256 245 300" ]
  run lm-tokenize decode --vocab "$T/tiny.bpe" --ids <<<"257"
  [ "$status" -eq 1 ]
  [[ "$output" == *"257 is unused"* ]]
  run lm-tokenize import --tiktoken "$T/tiny.tiktoken" -o "$T/x.bpe"
  [ "$status" -eq 2 ]
}

@test "import refuses rank files whose ids are mostly unused, quickly" {
  # 19 bytes asking for rank 10280374: a table of 10 M ids if built.
  printf '//442/4/4= 10280374' >"$T/sparse.tiktoken"
  run timeout 10 lm-tokenize import --tiktoken "$T/sparse.tiktoken" --pattern gpt2 -o "$T/s.bpe"
  [ "$status" -eq 1 ]
  [[ "$output" == *"sparse.tiktoken:1: rank 10280374 in a file of 1 lines: more unused ids than tokens"* ]]
  [ ! -e "$T/s.bpe" ]
  printf '{"a": 0, "b": 1, "ab": 9000000}' >"$T/sparse.json"
  printf 'a b\n' >"$T/sparse.merges"
  run timeout 10 lm-tokenize import --gpt2 "$T/sparse.json" "$T/sparse.merges" --pattern gpt2 -o "$T/s.bpe"
  [ "$status" -eq 1 ]
  [[ "$output" == *"sparse.json: id 9000000 among 3 tokens: more unused ids than tokens"* ]]
  # Below the bound (257 tokens with ids up to 300), gaps stay legal.
  python3 - "$T/holes.tiktoken" <<'PY'
import base64, sys
with open(sys.argv[1], "w") as f:
    for r in range(256):
        f.write("%s %d\n" % (base64.b64encode(bytes([r])).decode(), r))
    f.write("%s 300\n" % base64.b64encode(b"ab").decode())
PY
  run lm-tokenize import -q --tiktoken "$T/holes.tiktoken" --pattern gpt2 -o "$T/h.bpe"
  [ "$status" -eq 0 ]
}

@test "export --hf writes a byte-level BPE tokenizer.json" {
  lm-tokenize export --hf "$T/tokenizer.json" --vocab "$T/v.bpe"
  python3 - "$T/tokenizer.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
m = j["model"]
assert m["type"] == "BPE" and m["ignore_merges"] is True, m["type"]
assert len(m["vocab"]) == 600, len(m["vocab"])  # 599 tokens and <|endoftext|>
assert m["vocab"]["<|endoftext|>"] == 599
assert len(m["merges"]) >= 343, len(m["merges"])
assert [t["content"] for t in j["added_tokens"]] == ["<|endoftext|>"]
assert j["added_tokens"][0]["id"] == 599
assert j["pre_tokenizer"]["pretokenizers"][0]["type"] == "Split"
PY
}

@test "export --hf keeps the ids of special tokens placed after unused ids" {
  # tokenizers ignores an added token's "id": it takes the model's id for that
  # text, else the next id after the model's vocabulary (here 259, not 300).
  python3 - "$T/gap.tiktoken" <<'PY'
import base64, sys
with open(sys.argv[1], "w") as f:
    for r in range(256):
        f.write("%s %d\n" % (base64.b64encode(bytes([r])).decode(), r))
    f.write("%s 256\n%s 258\n" % (base64.b64encode(b"ab").decode(), base64.b64encode(b"abc").decode()))
PY
  lm-tokenize import -q --tiktoken "$T/gap.tiktoken" --pattern gpt2 --special '<|endoftext|>=300' \
    --special '<|x y|>=305' -o "$T/gap.bpe"
  lm-tokenize export --hf "$T/gap.json" --vocab "$T/gap.bpe"
  python3 - "$T/gap.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))["model"]["vocab"]
assert v["<|endoftext|>"] == 300 and v["<|x y|>"] == 305, v
PY
  python3 -c 'import tokenizers' 2>/dev/null || skip "python tokenizers absent"
  python3 - "$T/gap.json" <<'PY'
import sys
from tokenizers import Tokenizer
t = Tokenizer.from_file(sys.argv[1])
assert t.token_to_id("<|endoftext|>") == 300 and t.token_to_id("<|x y|>") == 305
assert t.encode("abc<|endoftext|><|x y|>").ids == [258, 300, 305], t.encode("abc<|endoftext|>").ids
assert t.decode([300, 305], skip_special_tokens=False) == "<|endoftext|><|x y|>"
PY
}

@test "export --hf refuses a special token tokenizer.json cannot represent, naming the file" {
  python3 - "$T/b.tiktoken" <<'PY'
import base64, sys
with open(sys.argv[1], "w") as f:
    for r in range(256):
        f.write("%s %d\n" % (base64.b64encode(bytes([r])).decode(), r))
PY
  lm-tokenize import -q --tiktoken "$T/b.tiktoken" --pattern gpt2 --special $'<|\xff|>=256' -o "$T/bad8.bpe"
  run lm-tokenize export --hf "$T/bad8.json" --vocab "$T/bad8.bpe"
  [ "$status" -eq 1 ]
  [[ "$output" == *"bad8.bpe: special token 256 is not valid UTF-8"* ]]
  [[ "$output" != *"unexpected"* ]]
  [ ! -e "$T/bad8.json" ]
  # A special spelled like a byte-level token would get that token's id.
  lm-tokenize import -q --tiktoken "$T/b.tiktoken" --pattern gpt2 --special 'a=256' -o "$T/a.bpe"
  run lm-tokenize export --hf "$T/a.json" --vocab "$T/a.bpe"
  [ "$status" -eq 1 ]
  [[ "$output" == *"a.bpe: special token 256 'a' is spelled like token 97"* ]]
}

@test "-o writes the same bytes as stdout, for encode and decode" {
  lm-tokenize --vocab "$T/v.bpe" "$T/train.txt" >"$T/a.tok"
  lm-tokenize --vocab "$T/v.bpe" -o "$T/b.tok" "$T/train.txt"
  cmp "$T/a.tok" "$T/b.tok"
  lm-tokenize decode --vocab "$T/v.bpe" -o "$T/back.txt" "$T/b.tok"
  cmp "$T/train.txt" "$T/back.txt"
  lm-tokenize --vocab "$T/v.bpe" --ids -o "$T/ids.txt" "$T/train.txt"
  [ "$(wc -l <"$T/ids.txt")" -eq 1 ]
}

@test "small files are read as one batch: one chunk in the stream, not one per file" {
  # A regular file's last read is short; that is its end, not a pause of the
  # input. Treated as a pause, every file ended a batch (one thread busy, the
  # others idle: lm-tokenize train -j 2 on 300 speeches took 3x -j 1) and
  # flushed a chunk.
  for i in 1 2 3 4 5; do head -c 2000 "$T/train.txt" >"$T/f$i.txt"; done
  lm-tokenize --vocab "$T/v.bpe" "$T"/f?.txt >"$T/s.tok"
  n=$(lm-tokenize --vocab "$T/v.bpe" --ids "$T"/f?.txt | wc -w)
  # header 32 + one chunk (4 + 2n + 8) + end frame 20
  [ "$(stat -c %s "$T/s.tok")" -eq $((32 + 12 + 2 * n + 20)) ]
}
