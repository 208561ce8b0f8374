// inference.h: a checkpoint made ready to evaluate or to generate from (lm-eval,
// lm-sample): the step directory resolved, its files verified, its vocabulary
// loaded and checked against the model, and the weights on a backend.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.h"
#include "model/checkpoint.h"
#include "text/vocab.h"
#include "util/status.h"

namespace lm {

struct InferenceOptions {
  std::string device = "auto";  // as MakeBackend takes it
  int threads = 0;              // CPU threads (0: every core)
  int max_batch = 1;            // largest B of ForwardLoss/ForwardLogits calls
  int max_seq = 0;              // largest T; 0 or more than the model's: its context
};

struct InferenceModel {
  std::string step_dir;
  Checkpoint checkpoint;  // metadata; the weights live on the backend only
  Vocab vocab;
  std::unique_ptr<Backend> backend;
};

// `path` is a run directory (its latest checkpoint) or a step directory.
Status LoadInferenceModel(const std::string& path, const InferenceOptions& opt,
                          InferenceModel* out);

}  // namespace lm
