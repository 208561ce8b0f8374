// check_forward_test.cpp: the CPU backend's logits against an independent
// implementation of transformers' LlamaForCausalLM (tests/python/check_forward.py,
// NumPy, float64), through a real checkpoint's files: model.safetensors with
// Hugging Face names and config.json. Skips, saying so, when python3 with NumPy
// is missing (scripts/install-deps.sh installs python3-numpy).
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "../test.h"
#include "cpu/backend_cpu.h"
#include "format/safetensors.h"
#include "model/config.h"
#include "model/params.h"
#include "util/file.h"

using namespace lm;

namespace {

const char* kScript = "tests/python/check_forward.py";

std::string FindPython() {
  for (const char* p : {"python3", "/usr/bin/python3"}) {
    std::string cmd = std::string(p) + " -c 'import numpy' >/dev/null 2>&1";
    if (system(cmd.c_str()) == 0) return p;
  }
  return "";
}

// Runs a command, echoing its output as TAP comments; returns its exit status.
int Run(const std::string& cmd) {
  FILE* f = popen((cmd + " 2>&1").c_str(), "r");
  if (!f) return -1;
  char line[4096];
  while (fgets(line, sizeof line, f)) printf("# %s", line);
  int rc = pclose(f);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

struct Case {
  const char* name;
  int vocab, dim, layers, heads, kv_heads, ffn, ctx, T, B;
  float theta, eps;
  bool tied;
};

// Writes DIR/{model.safetensors, config.json, ids.i32, logits.f32} from our
// forward pass and runs the checker; with `corrupt`, one logit is nudged first
// and the checker must object.
void CheckCase(const std::string& python, const Case& k, bool corrupt) {
  ModelConfig c;
  c.vocab_size = k.vocab;
  c.dim = k.dim;
  c.n_layers = k.layers;
  c.n_heads = k.heads;
  c.n_kv_heads = k.kv_heads;
  c.ffn_dim = k.ffn;
  c.context = k.ctx;
  c.rope_theta = k.theta;
  c.norm_eps = k.eps;
  c.tied_embeddings = k.tied;
  c.Pad();
  CHECK_OK(c.Validate());
  const ParamLayout L = MakeParamLayout(c);
  // Weights well away from the small init, so that every part of the model moves the logits.
  std::vector<float> p(L.total, 0.0f);
  std::mt19937 g(1234 + k.dim);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (const TensorInfo& t : L.tensors) {
    if (t.shape.size() == 1) {
      for (size_t i = 0; i < t.numel; i++) p[t.offset + i] = 1.0f + 0.2f * nd(g);
      continue;
    }
    const int64_t rows = t.vocab_rows ? c.vocab_size : t.shape[0];
    const float sd = t.vocab_rows ? 1.0f : 1.0f / std::sqrt((float)t.shape[1]);
    for (int64_t i = 0; i < rows * t.shape[1]; i++) p[t.offset + i] = sd * nd(g);
  }
  std::vector<int32_t> ids((size_t)k.B * k.T);
  for (int32_t& x : ids) x = (int32_t)(g() % (uint32_t)c.vocab_size);

  std::unique_ptr<Backend> b = NewCpuBackend();
  BackendOptions o;
  o.max_batch = k.B;
  o.max_seq = k.T;
  o.training = false;
  CHECK_OK(b->Init(c, o));
  CHECK_OK(b->SetParams(p.data()));
  std::vector<float> logits((size_t)k.B * k.T * c.vocab_size);
  CHECK_OK(b->ForwardLogits(ids.data(), k.B, k.T, logits.data()));
  if (corrupt) logits[logits.size() / 2] += 0.05f;

  char tmpl[] = "/tmp/lm-check-forward-XXXXXX";
  if (!mkdtemp(tmpl)) {
    CHECK(false);
    return;
  }
  const std::string dir = tmpl;
  SafetensorsWriter w;
  w.SetMetadata("format", "pt");  // transformers' from_pretrained requires it
  for (const TensorInfo& t : L.tensors) {
    std::vector<int64_t> shape = t.shape;
    if (t.vocab_rows) shape[0] = c.vocab_size;  // padding rows are never written
    CHECK_OK(w.Add(t.name, StDtype::kF32, shape, p.data() + t.offset));
  }
  CHECK_OK(w.WriteFile(dir + "/model.safetensors", nullptr));
  CHECK_OK(WriteFileAtomic(dir + "/config.json", ConfigToHfJson(c, 0)));
  CHECK_OK(WriteFileAtomic(dir + "/ids.i32",
                           std::string((const char*)ids.data(), ids.size() * sizeof(int32_t))));
  CHECK_OK(WriteFileAtomic(dir + "/logits.f32",
                           std::string((const char*)logits.data(), logits.size() * sizeof(float))));
  const std::string cmd = python + " " + kScript + " " + dir + " --tokens " + dir +
                          "/ids.i32 --batch " + std::to_string(k.B) + " --logits " + dir +
                          "/logits.f32 --tol 1e-4";
  int rc = Run(cmd);
  if (corrupt)
    CHECK_EQ(rc, 1);
  else
    CHECK_EQ(rc, 0);
  // LM_KEEP_CHECK_DIR=1 keeps the files, e.g. to load them with transformers by hand.
  if (getenv("LM_KEEP_CHECK_DIR"))
    printf("# kept %s\n", dir.c_str());
  else
    CHECK_OK(RemoveAll(dir));
}

const Case kCases[] = {
    // name, vocab, dim, layers, heads, kv, ffn, ctx, T, B, theta, eps, tied
    {"grouped_query_tied_padded_vocab", 300, 48, 3, 6, 2, 80, 96, 70, 2, 10000.0f, 1e-5f, true},
    {"multi_head_untied", 131, 32, 2, 4, 4, 64, 40, 40, 1, 10000.0f, 1e-5f, false},
    {"one_kv_head_theta_500000_eps_1e-6", 256, 64, 2, 4, 1, 96, 128, 33, 2, 500000.0f, 1e-6f,
     false},
};

}  // namespace

int main() {
  const int n = (int)(sizeof kCases / sizeof kCases[0]) + 1;
  printf("1..%d\n", n);
  std::string python = FindPython();
  const char* why = nullptr;
  if (python.empty())
    why = "python3 with NumPy not found (scripts/install-deps.sh installs python3-numpy)";
  else if (access(kScript, R_OK) != 0)
    why = "tests/python/check_forward.py not found: run from the repository root";
  if (why) {
    // A missing script outside the repository root is a usage error, not a pass.
    bool fail = !python.empty();
    for (int i = 0; i < n; i++)
      printf(fail ? "not ok %d check_forward # %s\n" : "ok %d check_forward # SKIP %s\n", i + 1,
             why);
    return fail ? 1 : 0;
  }
  int failed = 0, id = 0;
  for (const Case& k : kCases) {
    int before = lm_test::Failures();
    CheckCase(python, k, false);
    bool ok = lm_test::Failures() == before;
    failed += !ok;
    printf("%s %d matches_numpy_llama_%s\n", ok ? "ok" : "not ok", ++id, k.name);
    fflush(stdout);
  }
  int before = lm_test::Failures();
  CheckCase(python, kCases[0], true);
  bool ok = lm_test::Failures() == before;
  failed += !ok;
  printf("%s %d checker_rejects_a_wrong_logit\n", ok ? "ok" : "not ok", ++id);
  return failed ? 1 : 0;
}
