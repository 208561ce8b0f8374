#!/usr/bin/env bats
# lm-pack --val-fraction holds out a share of the tokens (issue 20): within
# the tolerance lm-pack --help and docs/formats/manifest.md state, on
# heavy-tailed document sizes, for several seeds, with one writer and with
# parallel --append writers; a corpus of one document gives its tail.

load pack_helpers

setup_file() {
  pack_fixture
  command -v lm-tokenize >/dev/null || return 0
  # 2,000 documents of 500 bytes and 20 of 100 KB (two thirds of the bytes),
  # one a line, the long ones at seeded places.
  H=$BATS_FILE_TMPDIR/heavy
  mkdir -p "$H"
  awk 'BEGIN { srand(5); split("the quick brown fox jumps over a lazy dog while cats sleep near warm stones and rivers", w, " ");
    for (i = 0; i < 2020; i++) long[i] = 0;
    for (k = 0; k < 20; ) { i = int(rand() * 2020); if (!long[i]) { long[i] = 1; k++ } }
    for (i = 0; i < 2020; i++) { size = long[i] ? 100000 : 500; s = "Document " i ":";
      while (length(s) < size) s = s " " w[1 + int(rand() * 16)];
      print substr(s, 1, size) } }' >"$H/heavy.txt"
  lm-tokenize --vocab "$FIX/tok.bpe" --lines "$H/heavy.txt" >"$H/heavy.tok"
  lm-tokenize --vocab "$FIX/tok.bpe" --lines --ids "$H/heavy.txt" | awk '{ print NF }' >"$H/sizes"
  split -n l/4 -d "$H/heavy.txt" "$H/part"
  for p in 0 1 2 3; do lm-tokenize --vocab "$FIX/tok.bpe" --lines "$H/part0$p" >"$H/part$p.tok"; done
}

setup() {
  need_tokenize
  cd "$BATS_TEST_TMPDIR"
  H=$BATS_FILE_TMPDIR/heavy
}

# val_share DIR: the val split's share of the tokens, from lm-pack inspect.
val_share() {
  lm-pack inspect "$1" | awk '$1 == "train:" { t = $2 } $1 == "val:" { v = $2 } END { printf "%.6f\n", v / (t + v) }'
}

# tolerance F: manifest.md's 4 sqrt(F (1 - F) S) / N + K / (2N) for the
# heavy-tailed input, S the sum of n^2 over its documents of at most 1024
# tokens, K the number of longer ones.
tolerance() {
  awk -v f="$1" '{ n += $1; if ($1 <= 1024) s += $1 * $1; else k++ }
    END { printf "%.6f\n", 4 * sqrt(f * (1 - f) * s) / n + k / (2 * n) }' "$H/sizes"
}

within() {  # within SHARE F TOL
  awk -v x="$1" -v f="$2" -v t="$3" 'BEGIN { d = x - f; if (d < 0) d = -d; exit !(d <= t) }'
}

@test "split: the heavy-tailed input is as the test means it" {
  # 20 documents over 1024 tokens hold most of the tokens; the rest are short.
  run awk '$1 > 1024 { k++; big += $1 } { n += $1 } END { printf "%d %.2f\n", k, big / n }' "$H/sizes"
  [ "${lines[0]%% *}" -eq 20 ]
  awk -v x="${lines[0]#* }" 'BEGIN { exit !(x > 0.6) }'
  [ "$(wc -l <"$H/sizes")" -eq 2020 ]
}

@test "split: --val-fraction 0.05 holds out 5% of the tokens within the tolerance, one writer" {
  tol=$(tolerance 0.05)
  # The tolerance is tight: one of the long documents alone is 3% of the tokens.
  awk -v t="$tol" 'BEGIN { exit !(t < 0.01) }'
  for seed in 1 2 3 4; do
    run --separate-stderr lm-pack -o "ds$seed" --val-fraction 0.05 --seed "$seed" "$H/heavy.tok"
    [ "$status" -eq 0 ]
    share=$(val_share "ds$seed")
    echo "seed $seed: val share $share, tolerance $tol"
    within "$share" 0.05 "$tol"
    [[ "$stderr" == *"val: "*" tokens (5."*"20 of them the tails of documents longer than 1024 tokens)"* ]] ||
      [[ "$stderr" == *"val: "*" tokens (4."*"20 of them the tails of documents longer than 1024 tokens)"* ]]
    [[ "$stderr" != *"warning"* ]]
    lm-pack verify "ds$seed" >/dev/null
  done
}

@test "split: the same with 4 parallel --append writers" {
  tol=$(tolerance 0.05)
  for seed in 1 2 3 4; do
    for p in 0 1 2 3; do
      lm-pack -o "ds$seed" --append --val-fraction 0.05 --seed "$seed" -j 1 -q "$H/part$p.tok" &
    done
    wait
    [ "$(lm-pack inspect "ds$seed" | awk '$1 == "writers:" { print $2 }')" -eq 4 ]
    share=$(val_share "ds$seed")
    echo "seed $seed: val share $share, tolerance $tol"
    within "$share" 0.05 "$tol"
    lm-pack verify "ds$seed" >/dev/null
  done
  # Together the writers packed the whole input: cat gives back every document.
  lm-pack cat ds1 | lm-tokenize decode --vocab "$FIX/tok.bpe" --lines | sort | cmp - <(sort "$H/heavy.txt")
}

@test "split: a corpus of one document gives its last F of the tokens to val" {
  lm-tokenize --vocab "$FIX/tok.bpe" "$FIX/corpus.txt" >one.tok
  lm-tokenize --vocab "$FIX/tok.bpe" --no-eot "$FIX/corpus.txt" >noeot.tok
  for f in one noeot; do
    run --separate-stderr lm-pack -o "$f" --val-fraction 0.1 "$f.tok"
    [ "$status" -eq 0 ]
    [[ "$stderr" != *"warning"* ]]
    n=$(lm-pack inspect "$f" | awk '$1 == "total:" { print $2 }')
    val=$(lm-pack inspect "$f" | awk '$1 == "val:" { print $2 }')
    [ "$val" -eq "$(awk -v n="$n" 'BEGIN { print int(0.1 * n + 0.5) }')" ]
    # The val split is the end of the text, the train split its beginning.
    lm-pack cat "$f" --split train | lm-tokenize decode --vocab "$FIX/tok.bpe" >train.txt
    lm-pack cat "$f" --split val | lm-tokenize decode --vocab "$FIX/tok.bpe" >val.txt
    cat train.txt val.txt | cmp - "$FIX/corpus.txt"
    [ "$(tail -n1 val.txt)" = "$(tail -n1 "$FIX/corpus.txt")" ]
    [ "$(head -n1 train.txt)" = "$(head -n1 "$FIX/corpus.txt")" ]
    lm-pack verify "$f" >/dev/null
  done
}

@test "split: a far share is warned about; --val-docs still holds out whole documents" {
  # Three short documents cannot make 5% of the tokens.
  printf 'a b c\nd e f\ng h i\n' >three.txt
  lm-tokenize --vocab "$FIX/tok.bpe" --lines three.txt >three.tok
  run --separate-stderr lm-pack -o far --val-fraction 0.05 --seed 1 three.tok
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"warning: "* ]]
  run --separate-stderr lm-pack -o docs --val-docs 1 "$FIX/corpus.tok"
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"val: "*" 1 documents (12.50%)"* ]]
  lm-pack cat docs --split val | lm-tokenize decode --vocab "$FIX/tok.bpe" | cmp - "$FIX/doc0.txt"
}
