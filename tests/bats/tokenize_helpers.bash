# tokenize_helpers.bash: shared setup for the lm-tokenize Bats tests.

CORPORA="$BATS_TEST_DIRNAME/../../../shared/corpora"

# Writes N lines of English-like text (deterministic) to a file.
make_text() {
  local out=$1 n=${2:-2000}
  awk -v n="$n" 'BEGIN {
    split("the of and a to in is was he that it for with as his on be at by I had not are but from or have an they which one you were her all she there would their we him been has when who will more no if out so said what up its about into than them can only other new some could time these two may then do first any my now such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three", w, " ")
    srand(7);
    for (i = 0; i < n; i++) {
      line = "";
      k = int(rand() * 12) + 3;
      for (j = 0; j < k; j++) line = line (j ? " " : "") w[int(rand() * length(w)) + 1];
      if (rand() < 0.2) line = toupper(substr(line, 1, 1)) substr(line, 2) ".";
      if (rand() < 0.1) line = line " " int(rand() * 100000);
      print line;
    }
  }' >"$out"
}

setup_vocab() {
  T="$BATS_TEST_TMPDIR"
  make_text "$T/train.txt" 3000
  lm-tokenize train -q --vocab-size 600 -o "$T/v.bpe" "$T/train.txt"
}

need_corpora() {
  [ -d "$CORPORA/tokenizers" ] || skip "../shared/corpora absent"
}
