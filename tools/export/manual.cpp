// manual.cpp: lm-export's synopsis and manual (--help).
#include "manual.h"

namespace lm {

const char* const kExportSynopsis =
    "lm-export --ckpt RUN|RUN/step-N (--gguf FILE | --hf DIR | both)\n"
    "                 [--type f32|f16|bf16|q8_0]";

const char* const kExportManual = R"(DESCRIPTION
  Writes a checkpoint in the files other tools load. The checkpoint is read
  and verified as lm-eval and lm-sample verify it (every checksum, the
  config against the tensors, no NaN): a damaged or partial checkpoint is
  an error, and nothing is written.

  --gguf FILE writes a GGUF (version 3) file of llama.cpp's llama
  architecture: llama.cpp's tensor names, the q and k projections' rows
  reordered for its rotary embedding (as its convert_hf_to_gguf.py does),
  and the vocabulary as a gpt2 BPE tokenizer: every token, its type, the
  merges that make tokens, and the pre-tokenizer of the vocabulary's
  pattern (gpt2: gpt-2, cl100k: llama-bpe, o200k: gpt-4o). A vocabulary
  with no pattern, or a custom regex that is none of these, is refused:
  llama.cpp would cut text another way. <|endoftext|> is bos and eos and is
  added before a prompt, as lm-sample does. With --type, the matrices are
  f32, f16, bf16 or q8_0 (norm weights stay f32; a q8_0 matrix whose rows
  are not a multiple of 32 is f16, as in llama.cpp's converter).

  --hf DIR writes an inference-only Hugging Face model directory, safe to
  upload: model.safetensors (--type f32 or bf16), config.json,
  generation_config.json, tokenizer.json, tokenizer_config.json and a
  README.md model card with the training figures (trainer-state.json, and
  metrics.jsonl of the run when the step directory is in one). No
  optimizer state, no trainer state, no paths or command lines.

  Outputs appear whole or not at all: the GGUF file through a temporary
  beside it, the directory assembled as .DIR.tmp.PID.RANDOM beside DIR and
  renamed into place. An existing DIR is replaced only when it is empty or
  holds nothing but files lm-export writes (an earlier export).

  docs/export.md has the details and the agreement measured with llama.cpp
  and transformers.

EXAMPLES
  lm-export --ckpt run/ --gguf model.gguf --type q8_0
  llama-cli -m model.gguf -p "Once upon a time"
  lm-export --ckpt run/step-0005000 --hf model/ --type bf16

EXIT STATUS
  0 success, 1 bad input or runtime error (a missing, damaged or partial
  checkpoint, a vocabulary llama.cpp cannot take, an I/O error), 2 usage
  error.
)";

}  // namespace lm
