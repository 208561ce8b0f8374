// manual.cpp (lm-pack): the synopsis and manual of each command (--help).
#include "manual.h"

namespace lm {

const char* const kPackSynopsis =
    "lm-pack -o DIR [--append] [--shard-tokens N] [--block-tokens N] [--level L]\n"
    "               [--val-fraction F | --val-docs N] [--seed S] [--label TEXT]\n"
    "               [-j THREADS] [STREAM...]\n"
    "       lm-pack verify DIR\n"
    "       lm-pack inspect DIR [--json | --labels]\n"
    "       lm-pack cat DIR [--split train|val] [--shard N] [-o FILE]\n"
    "       lm-pack clean DIR [-n] [-q]";

const char* const kPackManual = R"(DESCRIPTION
  Reads token streams (the output of lm-tokenize encode; files, or stdin when
  none is named or a name is -) and writes them into DIR as shards plus a
  manifest, DIR/manifest.json. Streams must share one vocabulary; several may be
  concatenated. Memory stays bounded whatever the input size: shards are
  written out as they fill, and the part of a long document held back until
  its end (the tail, F of its tokens) goes past 16 MiB to an unnamed
  temporary file in DIR.

  Documents end with the vocabulary's end-of-text token. With --val-fraction
  F the val split holds F of the tokens. A document of at most 1024 tokens
  goes whole to val when a hash of (seed, its number in the input, its first
  64 tokens) falls below F, else to train. A longer one is cut at a token:
  its last F of the tokens (rounded) go to val, a document of their own that
  starts after the val split's previous end-of-text, the rest to train; a
  corpus that is one long document thus holds out its tail, the last F of it,
  as nanoGPT's scripts do. Only the short documents leave the share to
  chance: for an input of N tokens, the val share of the tokens is F within
  4 standard deviations of the hash's choice, 4 sqrt(F (1 - F) S) / N, with S
  the sum of the squared lengths of the documents of at most 1024 tokens
  (S <= 1024 N; at F = 0.05 that is +-0.9 points over 10M tokens at worst).
  The summary gives the shares of the tokens and of the documents in each
  split, and warns when the val share is off by more than a fifth of F. With
  --val-docs N the first N documents go to val, whole. Each document's split
  depends only on the seed, its number and its tokens: the split is a
  property of the seed and the input, whatever -j, and --append writers
  running in parallel each hold out F of their own tokens.

  Shards hold blocks of --block-tokens tokens, each compressed alone with zstd
  at --level (0 stores raw tokens that readers map and use in place), each with
  an XXH3-64 checksum. The output does not depend on -j. The -j threads
  compress; reading the input, the checksums and the writes run beside them.

  The block size trades packing against random access: on GPT-2 tokens,
  65536-token blocks compress 2% smaller with about 10% less zstd time than
  the default 8192, but a training loader whose reads miss its cache then
  decompresses 8 times more per window.

  With --append, shards are added to the dataset in DIR (created if missing):
  any number of lm-pack --append may run at once; each writes its own shard
  files, then adds them to the manifest under a lock on DIR/.lock (one that
  has to wait for it says so on stderr, unless -q). Without
  --append, DIR must not hold a dataset yet. A dataset holds one vocabulary.
  --label names the run's input in the manifest, added by the same manifest
  rename that adds the run's shards to the dataset: a script resuming after a
  crash asks lm-pack inspect DIR --labels what is already in
  (scripts/recipe-24h.sh does).

  On any failure (bad input, disk full, a signal) the dataset is left as it
  was: shard files not yet in the manifest are removed. A writer killed with
  SIGKILL cannot remove them; lm-pack clean does, safely at any time.

SUBCOMMANDS
  lm-pack verify DIR        check every checksum and count; names the first bad
                            shard and block
  lm-pack inspect DIR       the manifest, counts and compression ratio
  lm-pack cat DIR           write the tokens back as a token stream
  lm-pack clean DIR         remove the files of writers killed before their
                            commit (SIGKILL, power loss)
  (see lm-pack SUBCOMMAND --help)

EXAMPLES
  lm-tokenize --vocab tok.bpe corpus.txt | lm-pack -o shards/ --val-fraction 0.01
  ls parts/*.txt | xargs -P8 -I{} sh -c \
      'lm-tokenize --vocab tok.bpe {} | lm-pack -o shards/ --append --val-fraction 0.01 -j1'
  lm-pack verify shards/ && lm-pack inspect shards/
  lm-pack cat shards/ --split val | lm-tokenize decode --vocab tok.bpe

EXIT STATUS
  0 success; 1 bad input (not a token stream, truncated, empty, other
  vocabulary, DIR already a dataset) or a runtime error (disk full);
  2 usage error.
)";

const char* const kVerifySynopsis = "lm-pack verify DIR";

const char* const kVerifyManual = R"(DESCRIPTION
  Checks the dataset in DIR: every shard the manifest names exists with its
  size; each shard's header and index checksums, every block's checksum and
  size, every token inside the vocabulary, the document table against the
  end-of-text tokens, and the whole file's XXH3-64 against the manifest.
  Stops at the first problem and names the shard file and block. Prints a
  one-line summary on stdout when all is well, and warns on stderr about
  shard or temporary files in DIR that the manifest does not list (left by a
  writer killed with SIGKILL, or being written by a running one; they are not
  part of the dataset, and lm-pack clean removes those of writers that are
  gone).

EXIT STATUS
  0 the dataset is intact; 1 it is not (or cannot be read); 2 usage error.
)";

const char* const kInspectSynopsis = "lm-pack inspect DIR [--json | --labels]";

const char* const kInspectManual = R"(DESCRIPTION
  Prints what the dataset in DIR holds: the vocabulary, the token and document
  counts of each split, the size on disk and the compression ratio against raw
  tokens, then one line per shard (index, split, tokens, documents, blocks,
  bytes, level, ratio, file). Reads only the manifest; lm-pack verify checks
  the shards. --json prints the manifest itself; --labels the --label of each
  run that gave one, a line each, in the order the runs were committed.

EXIT STATUS
  0 success; 1 no readable manifest; 2 usage error.
)";

const char* const kCatSynopsis = "lm-pack cat DIR [--split train|val] [--shard N] [-o FILE]";

const char* const kCatManual = R"(DESCRIPTION
  Writes the tokens of the dataset in DIR as one token stream (the format
  lm-tokenize encode writes), on stdout or to -o FILE. Without --split or
  --shard, each lm-pack run's documents come out in the order of its input
  (train and val merged back by document number), runs in the order they were
  added: `lm-pack cat DIR | lm-tokenize decode` gives back the text packed.
  --split writes one split, in manifest order; --shard N writes shard N alone
  (its index in lm-pack inspect's list). Every block's checksum is verified
  before its tokens are written. -o may not name a file of the dataset (its
  manifest or a shard, by any path or link): that is refused before any work.

EXAMPLES
  lm-pack cat shards/ | lm-tokenize decode --vocab tok.bpe
  lm-pack cat shards/ --split val | lm-tokenize decode --vocab tok.bpe

EXIT STATUS
  0 success; 1 a missing or corrupt shard, or a write error; 2 usage error.
)";

const char* const kCleanSynopsis = "lm-pack clean DIR [-n] [-q]";

const char* const kCleanManual = R"(DESCRIPTION
  Removes from the dataset directory DIR the files that lm-pack writers which
  are gone left behind: a writer killed with SIGKILL, or by a power loss,
  cannot remove its shard files, and lm-pack verify warns about them. They are
  never part of the dataset (only the manifest says what is), but they take
  disk space.

  Removed: shard files of lm-pack's form (SPLIT-ID-NNNNNN.lms, and their
  .SPLIT-ID-NNNNNN.lms.tmp temporaries) that the manifest does not list, of
  writers that are no longer running, with their .writer-ID.lock files; and
  temporaries of manifest.json. A running writer holds the lock of its
  .writer-ID.lock from its start to its end, so its files are left alone:
  clean is safe to run at any time, even while lm-pack --append runs. It
  holds DIR/.lock meanwhile, so no writer commits during the clean.

  Never removed: anything the manifest lists, files lm-pack does not name so
  (other *.lms files are counted in the summary), and the manifest itself. A
  manifest that cannot be read is an error, and nothing is removed.

  Prints the name of each file removed on stdout, one per line, and a summary
  on stderr (unless -q).

OPTIONS
  -n, --dry-run    print what would be removed, remove nothing
  -q, --quiet      no summary on stderr

EXIT STATUS
  0 success (also when there was nothing to remove); 1 DIR or its manifest
  cannot be read, or a file cannot be removed; 2 usage error.

EXAMPLES
  lm-pack clean -n shards/
  lm-pack verify shards/ && lm-pack clean shards/
)";

}  // namespace lm
