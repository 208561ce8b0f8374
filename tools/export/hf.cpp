// hf.cpp: a checkpoint as an inference-only Hugging Face model directory:
// the weights (F32 or BF16), config.json, generation_config.json, the
// tokenizer files and a model card; no optimizer state, no trainer state.
// The directory is assembled under a temporary name beside DIR and renamed
// into place, so that DIR is whole or absent, never half-written.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "export.h"
#include "format/safetensors.h"
#include "model/config.h"
#include "model/params.h"
#include "text/export.h"
#include "util/codec.h"
#include "util/file.h"
#include "util/signals.h"

namespace lm {

namespace {

const char* const kOutFiles[] = {"model.safetensors",      "config.json",
                                 "generation_config.json", "tokenizer.json",
                                 "tokenizer_config.json",  "README.md"};
constexpr int kNumOutFiles = sizeof kOutFiles / sizeof kOutFiles[0];

// What a signal handler removes: the files, then the temporary directory.
// Plain memory, filled before it is registered (async-signal-safe).
struct TempDirCleanup {
  char paths[kNumOutFiles + 1][4096];
};

void RemoveTempDir(const void* arg) {
  const auto* c = static_cast<const TempDirCleanup*>(arg);
  for (int i = 0; i < kNumOutFiles; i++) unlink(c->paths[i]);
  rmdir(c->paths[kNumOutFiles]);
}

// A `dir` that may be replaced: absent, empty, or holding only files that
// lm-export writes. Anything else is someone's directory.
Status CheckReplaceable(const std::string& dir, bool* exists) {
  struct stat st;
  *exists = lstat(dir.c_str(), &st) == 0;
  if (!*exists) return Status::OK();
  if (!S_ISDIR(st.st_mode)) return Status::Invalid(dir + ": exists and is not a directory");
  DIR* d = opendir(dir.c_str());
  if (!d) return Status::FromErrno(dir, "cannot list");
  std::string stranger;
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    bool ours = false;
    for (const char* f : kOutFiles) ours |= n == f;
    if (!ours && stranger.empty()) stranger = n;
  }
  closedir(d);
  if (!stranger.empty())
    return Status::Invalid(dir + ": exists and holds " + stranger +
                           ", which lm-export does not write; remove it or export elsewhere");
  return Status::OK();
}

// model.safetensors: the tensors in the checkpoint's order, real vocabulary
// rows only, as F32 or BF16, with transformers' {"format": "pt"}.
Status WriteWeights(const ExportSource& src, bool bf16, const std::string& path, HfReport* r) {
  const ModelConfig& c = src.ck.config;
  const ParamLayout layout = MakeParamLayout(c);
  std::vector<std::vector<uint16_t>> halves(layout.tensors.size());
  SafetensorsWriter w;
  w.SetMetadata("format", "pt");
  for (size_t k = 0; k < layout.tensors.size(); k++) {
    const TensorInfo& t = layout.tensors[k];
    std::vector<int64_t> shape = t.shape;
    if (t.vocab_rows) shape[0] = c.vocab_size;
    size_t n = 1;
    for (int64_t d : shape) n *= (size_t)d;
    const float* data = src.ck.params.data() + t.offset;
    if (!bf16) {
      LM_RETURN_IF_ERROR(w.Add(t.name, StDtype::kF32, shape, data));
      r->weight_bytes += 4 * n;
      continue;
    }
    halves[k].resize(n);
    for (size_t i = 0; i < n; i++) halves[k][i] = FloatToBf16(data[i]);
    LM_RETURN_IF_ERROR(w.Add(t.name, StDtype::kBF16, shape, halves[k].data()));
    r->weight_bytes += 2 * n;
  }
  return WriteFileSynced(path, [&](int fd) { return w.WriteTo(fd, path, nullptr, nullptr); });
}

Status WriteFiles(const ExportSource& src, bool bf16, const std::string& tmp, HfReport* r) {
  const Vocab& v = src.vocab;
  const ModelConfig& c = src.ck.config;
  LM_RETURN_IF_ERROR(WriteWeights(src, bf16, JoinPath(tmp, "model.safetensors"), r));
  std::vector<uint32_t> unused;
  for (uint32_t i = 0; i < v.size(); i++)
    if (v.is_unused(i)) unused.push_back(i);
  std::vector<std::pair<std::string, std::string>> files = {
      {"config.json", ConfigToHfJson(c, (int)v.eot_id(), bf16 ? "bfloat16" : "float32")},
      {"generation_config.json", GenerationConfigToHfJson((int)v.eot_id(), unused)},
      {"README.md", ModelCard(src, bf16)}};
  LM_RETURN_IF_ERROR(HfTokenizerFiles(v, c.context, &files).With(src.ck.vocab_path));
  for (const auto& f : files) LM_RETURN_IF_ERROR(WriteFileSynced(JoinPath(tmp, f.first), f.second));
  return SyncDir(tmp);
}

// Renames the finished tmp over dir; a previous export there is moved aside
// first and removed after (rename(2) replaces only an empty directory).
Status MoveIntoPlace(const std::string& tmp, const std::string& dir, bool exists) {
  std::string old;
  if (exists) {
    old = TempNameBeside(dir) + ".old";
    if (rename(dir.c_str(), old.c_str()) != 0)
      return Status::FromErrno(dir, "cannot move the previous export aside");
  }
  if (rename(tmp.c_str(), dir.c_str()) != 0) {
    Status s = Status::FromErrno(dir, "cannot rename into place");
    if (!old.empty()) rename(old.c_str(), dir.c_str());
    return s;
  }
  LM_RETURN_IF_ERROR(SyncDir(DirName(dir)));
  return old.empty() ? Status::OK() : RemoveAll(old);
}

}  // namespace

Status WriteHfDir(const ExportSource& src, bool bf16, const std::string& dir, HfReport* r) {
  *r = HfReport();
  bool exists;
  LM_RETURN_IF_ERROR(CheckReplaceable(dir, &exists));
  const std::string tmp = TempNameBeside(dir);
  if (mkdir(tmp.c_str(), 0755) != 0) return Status::FromErrno(tmp, "cannot create directory");
  auto cleanup = std::make_unique<TempDirCleanup>();
  for (int i = 0; i <= kNumOutFiles; i++) {
    std::string p = i < kNumOutFiles ? JoinPath(tmp, kOutFiles[i]) : tmp;
    snprintf(cleanup->paths[i], sizeof cleanup->paths[i], "%s", p.c_str());
  }
  const int slot = RegisterCleanup(RemoveTempDir, cleanup.get());
  Status s = WriteFiles(src, bf16, tmp, r);
  if (s.ok()) {
    SignalBlock block;  // the rename and forgetting the cleanup go together
    s = MoveIntoPlace(tmp, dir, exists);
    if (s.ok()) UnregisterCleanup(slot);
  }
  if (!s.ok()) {
    RemoveTempDir(cleanup.get());
    UnregisterCleanup(slot);
  }
  return s;
}

}  // namespace lm
