// export.cpp (lm-tokenize export): tok.bpe as a Hugging Face tokenizer.json.
#include <string>

#include "commands.h"
#include "manual.h"
#include "text/import.h"
#include "text/vocab.h"
#include "util/cli.h"
#include "util/file.h"

namespace lm {

Status CmdExport(int argc, char** argv) {
  cli::Command c;
  c.synopsis = kExportSynopsis;
  c.manual = kExportManual;
  std::string hf, vocab_path;
  cli::Options add(&c);
  add("hf", &hf, "FILE", "write a Hugging Face tokenizer.json, required");
  add("vocab,v", &vocab_path, "FILE", "the vocabulary (tok.bpe), required");
  bool exit_now;
  LM_RETURN_IF_ERROR(cli::Parse(&c, argc, argv, &exit_now));
  if (exit_now) return Status::OK();
  if (!c.vm.count("vocab") || !c.vm.count("hf"))
    return Status::Usage("--vocab and --hf are required");
  Vocab v;
  LM_RETURN_IF_ERROR(Vocab::Load(vocab_path, &v));
  std::string json;
  LM_RETURN_IF_ERROR(ExportHf(v, &json).With(vocab_path));
  return WriteFileAtomic(hf, json);
}

}  // namespace lm
