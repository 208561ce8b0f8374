// manual.cpp: lm-eval's synopsis and manual (--help).
#include "manual.h"

namespace lm {

const char* const kEvalSynopsis =
    "lm-eval --ckpt RUN|RUN/step-N (--data DIR [--split val|train] | --text FILE... |\n"
    "               --tokens FILE...) [--context T] [--stride S] [--batch B]\n"
    "               [--limit-tokens N] [--json] [--new-only] [--device cpu|cuda|auto]";

const char* const kEvalManual = R"(DESCRIPTION
  Measures how well a checkpoint predicts held-out tokens: the mean loss in
  nats per target token, its standard error, the perplexity exp(loss), and
  bits per byte (the total loss in bits over the UTF-8 bytes the scored
  targets decode to; targets that are special tokens such as <|endoftext|>
  are left out of both sums, so that bits per byte compares models with
  different vocabularies).

  The data is a split of a packed dataset (--data, lm-pack's output), text
  files (--text: each file is one document, tokenized with the checkpoint's
  own vocabulary and ended with <|endoftext|>, after one <|endoftext|> that
  starts the data, so that every byte of text is scored), or token streams
  (--tokens: lm-tokenize encode's output, in the checkpoint's vocabulary).
  The tokens must be of the checkpoint's vocabulary; another vocabulary is an
  error.

METHOD
  The token sequence x[0..N) is cut into consecutive windows of T targets
  (T = --context, by default the model's context). Each target is predicted
  from the tokens before it in its own window. The first token of the data is
  never a target; every other token is a target exactly once. With --stride
  S < T the windows start every S tokens and overlap; each window after the
  first scores only its last S targets, so every target after the first
  window has at least T - S + 1 tokens of context (Hugging Face's strided
  perplexity). Windows are
  independent, so --batch changes only the speed, never the result. The
  standard error treats the per-token losses as independent samples.

OUTPUT
  One line per checkpoint. With --json, one JSON object per line with the
  fields ckpt, step, tokens_seen, data, split, data_id, context, stride,
  limit_tokens, loss, ppl, bpb, stderr, targets, text_targets, bytes,
  tokens_per_second, seconds, device, date, version (docs/eval.md defines
  each), a line that can be appended to a log forever.

CRON (--new-only)
  With --new-only, --ckpt names a run directory: every complete checkpoint
  of RUN that has not yet been evaluated on this data with these options is
  evaluated, oldest first, and recorded in RUN/eval-record.jsonl; checkpoints
  that appear meanwhile are evaluated too. A lock (RUN/eval-record.lock)
  makes overlapping runs wait for each other, so no checkpoint is evaluated
  twice and no lines interleave. Nothing new: no output, exit 0. A checkpoint
  still being written is invisible (lm-train renames each into place).

EXAMPLES
  lm-eval --ckpt run/ --data shards/
  lm-eval --ckpt run/step-0001000 --text held-out/*.txt --json
  lm-eval --ckpt run/ --data shards/ --context 512 --stride 256
  # crontab: evaluate each new checkpoint once, appending to a log
  */10 * * * * lm-eval --ckpt run/ --data shards/ --json --new-only >> eval.jsonl

EXIT STATUS
  0  success (with --new-only also when nothing was new)
  1  bad input or runtime error: a missing, truncated, corrupt or foreign
     checkpoint, data of another vocabulary, an empty split, an I/O error;
     with --new-only, when any checkpoint failed (the others are still done)
  2  usage error)";

}  // namespace lm
