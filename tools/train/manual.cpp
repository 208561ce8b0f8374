// manual.cpp: lm-train's synopsis and manual (--help).
#include "manual.h"

namespace lm {

const char* const kTrainSynopsis =
    "lm-train --data DIR --vocab tok.bpe --out RUN [--preset NAME | sizes]\n"
    "                (--steps N | --tokens N | --budget DURATION) [options]";

const char* const kTrainManual = R"(DESCRIPTION
  Trains a decoder-only transformer (exactly the architecture of Hugging Face
  transformers' LlamaForCausalLM) on a dataset packed by lm-pack, with
  gradient clipping and gradient accumulation up to --batch-tokens per
  optimizer step.

  The optimizer (--optimizer): adamw updates every tensor with AdamW
  (decoupled weight decay, none on norm weights); muon updates the 2-D
  weights inside the blocks (q/k/v/o, gate/up/down) with Muon, Nesterov
  momentum orthogonalised by --ns-steps Newton-Schulz iterations and scaled
  by the matrix's shape, at --muon-lr (decay --muon-wd), and the embedding,
  an untied head and the norm weights with AdamW. Each AdamW group may have
  its own peak rate (--embed-lr, --head-lr, --norm-lr; default --lr); every
  rate follows the schedule. --zero-init starts the attention output and MLP
  down projections at zero (each block starts as the identity).
  --batch-warmup F grows the batch from a quarter of --batch-tokens to all of
  it over the first fraction F of the run.

  Data: the progress line and metrics.jsonl count the epochs (passes over
  the train split). Past 4 epochs, beyond which repeated data helps little
  (Muennighoff et al. 2023), a warning says so once. --max-epochs E ends the
  run after E epochs (the schedule runs on whichever of the length and E
  comes first). At each validation that beats every earlier one, the step is
  checkpointed and RUN/best points at it; --keep never deletes it, and
  lm-eval and lm-sample take --ckpt RUN/best (--no-best turns this off).

  The length of the run is one of --steps, --tokens or --budget. Under
  --budget the learning rate follows the fraction of the budget elapsed:
  warmup, a stable phase, then a decay that reaches zero at the deadline,
  where training stops; the final validation and checkpoint come after it
  (budget a few minutes for them). Under --steps/--tokens the same schedule
  runs on steps.

  Checkpoints go to RUN/step-NNNNNNN/ (model.safetensors, config.json,
  generation_config.json, tokenizer.json, tokenizer_config.json, tok.bpe,
  trainer-state.json, and the optimizer state in optimizer/): a step
  directory is a Hugging Face model directory as it is (from_pretrained,
  pipeline); lm-export --hf makes one without the training state. RUN/latest points at the newest
  complete one and is updated last; older ones beyond --keep are then deleted.
  A checkpoint is written every --ckpt-every, on SIGUSR1, on SIGINT/SIGTERM/SIGHUP
  (after the current micro-step: a step that is not finished is dropped and
  redone on resume; the run then dies of that signal, so that a shell sees
  status 128+N (130 for SIGINT) and a script running it stops too; a second
  signal stops at once without saving, leaving the previous checkpoint) and
  at the end.
  docs/formats/checkpoint.md describes the files.

  Rerunning the same command on an existing RUN (or adding --resume) continues
  from RUN/latest: the data order, optimizer and schedule continue where they
  were, and on the CPU backend the result is bitwise identical to a run that
  was never interrupted. Under --budget, time already trained counts, including
  the work lost after the last checkpoint of a crashed run. Options left out
  when resuming take the run's values: the model, the length, the vocabulary
  (the checkpoint's copy), the batch geometry, the optimizer (--optimizer,
  --lr and the group rates, --beta1, --beta2, --weight-decay, --grad-clip,
  the --muon-* options) and the schedule (--schedule, --warmup, --decay,
  --batch-warmup, --max-epochs). One given with another value than the run's
  applies from then on, with a warning; --seed is always the run's, and
  --optimizer cannot change (its state would be misread: refused).

  The model is a --preset, explicit sizes (--layers, --dim, --heads and
  --context; --ffn-dim defaults to Llama's rule, 8/3 x dim rounded up to a
  multiple of 128, and --kv-heads to --heads), or --auto-size: a few seconds of
  throughput probes of a ladder of shapes on the device (--probe-seconds each),
  then the largest shape whose compute-optimal token count (20 tokens per
  parameter) fits the budget at the measured speed; when that shape would
  pass 4 epochs of the train split, the data is the limit, and the choice is
  the probed shape with the lowest loss by the data-constrained scaling law
  of Muennighoff et al. 2023. The table of candidates
  and the reason for the choice are printed before training and saved in
  RUN/auto-size.json. A new run with --budget and no model named is sized this
  way. --context sets the probed context (default 1024).

  MFU is 6 x parameters + 12 x layers x dim x context FLOPs per token over the
  device's peak dense bf16 rate, from a table of GPUs (H100/H200 SXM 989
  TFLOP/s, A100 312) or --peak-flops; for other devices it says unknown.
  --recompute trades a third more work for much less activation memory (CUDA).

  A step whose loss or gradient is NaN or Inf is skipped with a warning;
  --max-bad-steps of them in a row stop the run (exit 1), leaving the last good
  checkpoint.

  On stderr, a line every --log-every seconds: step, loss, learning rate,
  gradient norm, tokens/s, MFU (when the device's peak is known), elapsed and
  time left. Every step goes to RUN/metrics.jsonl, with the validation loss
  (nats/token and bits per byte) every --val-every; scripts/plot-metrics RUN
  draws it. A short greedy sample from a validation prompt is logged every
  --sample-every.

  Refused before any work: data packed with another vocabulary than --vocab, a
  context longer than the train split, a RUN holding a different model or
  lying inside --data, impossible shapes (heads not dividing dim, ...), and a
  model that does not fit in memory.

  A periodic or SIGUSR1 checkpoint that fails to write (a full disk) is
  warned about and retried at the next interval; the previous checkpoint
  stays complete. The final checkpoint and one on a stop signal must succeed
  (exit 1 otherwise). Rerunning a complete run in a directory that cannot be
  written (read-only storage) says it is complete and exits 0.

  Data-parallel: under mpirun or srun (or with RANK, WORLD_SIZE, LOCAL_RANK
  set, on GPUs), each rank trains on its share of every global batch; rank r
  takes GPU LOCAL_RANK. --batch-tokens is the global batch and must split
  into whole sequences over the ranks; the optimizer state is sharded over
  them; losses match one process up to the order of fp32 sums. Rank 0 alone
  logs and writes RUN; errors name their rank. A stop signal to any rank stops
  them all after one checkpoint; a rank that dies or hangs ends the others
  within --comm-timeout. A run resumes on any number of ranks.
  docs/distributed.md says more.

  Steps-or-duration options take a plain count for steps (500, 10k) or a
  duration with a unit (90s, 30m, 2h); 0 (or off) turns off the periodic
  event: --val-every 0 still validates at the end, --ckpt-every 0 still
  checkpoints at the end and on signals, and --sample-every follows
  --val-every unless given.

PRESETS
  tiny (CPU tests), small (CPU demo), gpt2-124m, gpt2-350m. Size options
  given with --preset override its fields.

EXAMPLES
  lm-train --data shards/ --vocab tok.bpe --out run/ --preset tiny --steps 200
  lm-train --data shards/ --vocab tok.bpe --out run/ --preset gpt2-124m \
      --budget 24h --batch-tokens 524288 --micro-batch 16 --device cuda
  lm-train --data shards/ --vocab tok.bpe --out run/ --budget 24h --auto-size
  lm-train --data shards/ --vocab tok.bpe --out run/ --preset small --budget 10m \
      --optimizer muon --muon-lr 0.02 --zero-init
  lm-eval --ckpt run/best --data shards/        # the weights of lowest val loss
  kill -USR1 $(pgrep lm-train)     # checkpoint now, keep training
  mpirun -np 8 lm-train --data shards/ --vocab tok.bpe --out run/ --budget 24h \
      --batch-tokens 524288 --micro-batch 16

EXIT STATUS
  0  trained to the end (or to --stop-at)
  1  bad input (data, vocabulary, run directory), out of memory, too many
     non-finite steps, an I/O error, or (several ranks) another rank that
     failed, died or gave no answer within --comm-timeout
  2  usage error
  stopped by SIGINT, SIGTERM or SIGHUP: it checkpoints, then dies of that
  signal (a shell shows 130, 143 or 129); rerun the same command to continue
)";

}  // namespace lm
