// source.cpp: the checkpoint and vocabulary lm-export reads (export.h).
#include "export.h"

namespace lm {

Status LoadSource(const std::string& path, ExportSource* out) {
  LM_RETURN_IF_ERROR(ResolveCheckpoint(path, &out->step_dir));
  LM_RETURN_IF_ERROR(LoadCheckpoint(out->step_dir, true, &out->ck));
  return Vocab::Load(out->ck.vocab_path, &out->vocab);
}

}  // namespace lm
