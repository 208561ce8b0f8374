// inference.cpp: loading a checkpoint for inference (inference.h).
#include "engine/inference.h"

#include <algorithm>

#include "engine/make_backend.h"

namespace lm {

Status LoadInferenceModel(const std::string& path, const InferenceOptions& opt,
                          InferenceModel* out) {
  LM_RETURN_IF_ERROR(ResolveCheckpoint(path, &out->step_dir));
  Checkpoint& ck = out->checkpoint;
  LM_RETURN_IF_ERROR(LoadCheckpoint(out->step_dir, true, &ck));
  LM_RETURN_IF_ERROR(Vocab::Load(ck.vocab_path, &out->vocab));
  if ((int)out->vocab.size() != ck.config.vocab_size)
    return Status::Invalid(ck.vocab_path + ": " + std::to_string(out->vocab.size()) +
                           " tokens, but the model has " + std::to_string(ck.config.vocab_size));
  LM_RETURN_IF_ERROR(MakeBackend(opt.device, &out->backend));
  BackendOptions bo;
  bo.threads = opt.threads;
  bo.max_batch = std::max(1, opt.max_batch);
  bo.max_seq = opt.max_seq > 0 ? std::min(opt.max_seq, ck.config.context) : ck.config.context;
  bo.training = false;
  LM_RETURN_IF_ERROR(out->backend->Init(ck.config, bo));
  LM_RETURN_IF_ERROR(out->backend->SetParams(ck.params.data()));
  ck.params.clear();
  ck.params.shrink_to_fit();
  return Status::OK();
}

}  // namespace lm
