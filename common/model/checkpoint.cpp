// checkpoint.cpp: writing and reading run directories (docs/formats/checkpoint.md).
#include "model/checkpoint.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "format/safetensors.h"
#include "format/vocab.h"
#include "util/file.h"
#include "util/hash.h"
#include "util/json.h"

namespace lm {

namespace {

using json = nlohmann::json;

constexpr const char* kStateFormat = "lm-trainer-state";
// Version 2 moved the optimizer state into a subdirectory and added the
// Hugging Face files; readers take both.
constexpr int kStateVersion = 2;
constexpr int kOldestStateVersion = 1;
constexpr const char* kModelFile = "model.safetensors";
// In a subdirectory, where no loader that takes every *.safetensors of the
// directory as weights (vLLM without an index, ...) finds it.
constexpr const char* kOptimizerDir = "optimizer";
constexpr const char* kOptimizerFile = "optimizer/optimizer.safetensors";
constexpr const char* kOptimizerFileV1 = "optimizer.safetensors";
constexpr const char* kConfigFile = "config.json";
constexpr const char* kGenerationFile = "generation_config.json";
constexpr const char* kVocabFile = "tok.bpe";
constexpr const char* kStateFile = "trainer-state.json";
constexpr const char* kLatest = "latest";
constexpr const char* kBest = "best";
const char* const kReservedKeys[] = {"format",          "version",  "step",   "tokens_seen",
                                     "elapsed_seconds", "vocab_id", "eot_id", "files",
                                     "adam_step",       "checksum"};
// optimizer.safetensors: "format" metadata, and the prefix of Muon's momentum
// buffers (the hidden matrices' state under Muon, instead of exp_avg and
// exp_avg_sq).
constexpr const char* kAdamWFormat = "lm-adamw";
constexpr const char* kMuonFormat = "lm-muon";
const std::string kMuonMomentum = "momentum_buffer.";
bool MuonTensor(const TensorInfo& t) {
  return t.group == ParamGroup::kMatrix;
}
// The state's own checksum is its last member: XXH3-64 of every byte before
// its value, so that a reader in any language checks it without re-encoding
// JSON (docs/formats/checkpoint.md).
constexpr const char* kChecksumKey = "\"checksum\": \"";

// Adds the checksum member to `dumped` (a JSON object as json::dump(2) ends
// it, in "\n}").
std::string SealState(const std::string& dumped) {
  std::string body = dumped.substr(0, dumped.size() - 2) + ",\n  " + kChecksumKey;
  return body + HashHex(Hash64(body)) + "\"\n}\n";
}

// Checks the checksum member of trainer-state.json's bytes, when it has one
// (files written before it existed have none).
Status CheckStateChecksum(const std::string& path, const std::string& text, const json& j) {
  if (!j.contains("checksum")) return Status::OK();
  uint64_t want;
  if (!j["checksum"].is_string() || !ParseHashHex(j["checksum"].get<std::string>(), &want))
    return Status::Corruption(path + ": field 'checksum' is not 16 hex digits");
  size_t at = text.rfind(kChecksumKey);
  if (at == std::string::npos)
    return Status::Corruption(path + ": the checksum is not written as lm writes it");
  size_t end = at + strlen(kChecksumKey);
  uint64_t got = Hash64(text.data(), end);
  // The member must end the object (only its closing quote, JSON white space
  // and the object's '}' follow): bytes after it would not be covered.
  size_t q = end + 16;
  auto skip_ws = [&](size_t i) {
    while (i < text.size() &&
           (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t'))
      i++;
    return i;
  };
  bool last = text.compare(end, 16, HashHex(want)) == 0 && q < text.size() && text[q] == '"';
  if (last) {
    q = skip_ws(q + 1);
    last = q < text.size() && text[q] == '}' && skip_ws(q + 1) == text.size();
  }
  if (!last) return Status::Corruption(path + ": the checksum is not the file's last member");
  if (got != want)
    return Status::Corruption(path + ": checksum mismatch (XXH3 " + HashHex(got) +
                              " of the file, " + HashHex(want) +
                              " written in it): the file was damaged or edited");
  return Status::OK();
}

// step-NNNNNNN -> N; false for anything else.
bool ParseStepDirName(const std::string& name, int64_t* step) {
  if (name.size() < 6 || name.compare(0, 5, "step-") != 0) return false;
  int64_t v = 0;
  for (size_t i = 5; i < name.size(); i++) {
    if (name[i] < '0' || name[i] > '9') return false;
    if (v > (INT64_MAX - 9) / 10) return false;
    v = v * 10 + (name[i] - '0');
  }
  *step = v;
  return true;
}

// A safetensors file written whole and fsynced; *hash gets its XXH3-64.
Status WriteSafetensorsSynced(const std::string& path, const SafetensorsWriter& w, uint64_t* hash) {
  return WriteFileSynced(path, [&](int fd) { return w.WriteTo(fd, path, hash, nullptr); });
}

Status HashFile(const std::string& path, uint64_t* h) {
  MappedFile f;
  LM_RETURN_IF_ERROR(f.Open(path));
  *h = Hash64(f.data(), f.size());
  return Status::OK();
}

// The shape a checkpoint stores: the real vocabulary rows only.
std::vector<int64_t> StoredShape(const TensorInfo& t, const ModelConfig& c) {
  std::vector<int64_t> s = t.shape;
  if (t.vocab_rows && !s.empty()) s[0] = c.vocab_size;
  return s;
}

Status ReadLatest(const std::string& run, std::string* name) {
  std::string link = JoinPath(run, kLatest);
  struct stat st;
  if (lstat(link.c_str(), &st) != 0) return Status::NotFound(link + ": missing");
  if (S_ISLNK(st.st_mode)) {
    char buf[4096];
    ssize_t n = readlink(link.c_str(), buf, sizeof buf - 1);
    if (n < 0) return Status::FromErrno(link, "readlink failed");
    name->assign(buf, (size_t)n);
  } else {
    LM_RETURN_IF_ERROR(ReadFile(link, name));
    while (!name->empty() && (name->back() == '\n' || name->back() == ' ' || name->back() == '\r'))
      name->pop_back();
  }
  if (name->empty()) return Status::Corruption(link + ": empty");
  return Status::OK();
}

}  // namespace

std::string CheckpointDirName(int64_t step) {
  char b[32];
  snprintf(b, sizeof b, "step-%07lld", (long long)step);
  return b;
}

// ---------------------------------------------------------------------------
// Reading

Status ListCheckpoints(const std::string& run, std::vector<std::string>* step_dirs) {
  step_dirs->clear();
  DIR* d = opendir(run.c_str());
  if (!d) {
    if (errno == ENOENT) return Status::OK();
    return Status::FromErrno(run, "cannot list");
  }
  std::vector<std::pair<int64_t, std::string>> found;
  while (struct dirent* e = readdir(d)) {
    int64_t step;
    std::string name = e->d_name;
    if (!ParseStepDirName(name, &step)) continue;
    std::string p = JoinPath(run, name);
    if (!IsDirectory(p) || !PathExists(JoinPath(p, kStateFile))) continue;
    found.push_back({step, p});
  }
  closedir(d);
  std::sort(found.begin(), found.end());
  for (auto& f : found) step_dirs->push_back(f.second);
  return Status::OK();
}

Status ResolveCheckpoint(const std::string& path, std::string* step_dir) {
  if (!PathExists(path)) return Status::NotFound(path + ": no such file or directory");
  if (!IsDirectory(path))
    return Status::Invalid(path +
                           ": not a checkpoint (expected a run directory or a step directory)");
  if (PathExists(JoinPath(path, kStateFile))) {
    *step_dir = path;
    return Status::OK();
  }
  std::string name;
  Status s = ReadLatest(path, &name);
  if (s.ok()) {
    std::string target = name[0] == '/' ? name : JoinPath(path, name);
    if (!PathExists(JoinPath(target, kStateFile)))
      return Status::Corruption(JoinPath(path, kLatest) + ": points at " + name +
                                ", which is not a complete checkpoint");
    *step_dir = target;
    return Status::OK();
  }
  if (s.code() != Status::kNotFound) return s;
  std::vector<std::string> dirs;
  LM_RETURN_IF_ERROR(ListCheckpoints(path, &dirs));
  if (dirs.empty())
    return Status::NotFound(path +
                            ": no checkpoint here (neither a step directory nor a run directory "
                            "with step-NNNNNNN directories)");
  *step_dir = dirs.back();
  return Status::OK();
}

namespace {

// The name of the first tensor of `layout` in `data` holding a NaN or an
// infinity ("" when none): a diverged run must not be saved, resumed or used.
std::string FirstNonFinite(const ParamLayout& layout, const float* data) {
  for (const TensorInfo& t : layout.tensors) {
    const float* p = data + t.offset;
    float acc = 0.f;  // x * 0 is NaN exactly when x is NaN or infinite
    for (size_t i = 0; i < (size_t)t.numel; i++) acc += p[i] * 0.f;
    if (acc != 0.f) return t.name;
  }
  return "";
}

// A name trainer-state.json's files may list: version 1, a file of the step
// directory; version 2, a relative path inside it ("optimizer/..."): no
// empty, "." or ".." component, so that nothing outside is named.
bool ListedNameOk(const std::string& name, int version) {
  if (version < 2 && name.find('/') != std::string::npos) return false;
  size_t begin = 0;
  while (true) {
    size_t end = name.find('/', begin);
    std::string part =
        name.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    if (part.empty() || part == "." || part == "..") return false;
    if (end == std::string::npos) return true;
    begin = end + 1;
  }
}

// Parses and checks trainer-state.json; verifies the hashes of the files it
// lists (all of them, or only the small ones when `verify_large` is false).
Status ReadState(const std::string& dir, bool verify_large, json* state) {
  std::string path = JoinPath(dir, kStateFile);
  std::string text;
  LM_RETURN_IF_ERROR(ReadFile(path, &text));
  json j;
  LM_RETURN_IF_ERROR(ParseTrainerState(text, path, &j));
  for (auto it = j["files"].begin(); it != j["files"].end(); ++it) {
    const std::string& name = it.key();
    uint64_t want;
    ParseHashHex(it.value().get<std::string>(), &want);
    std::string fp = JoinPath(dir, name);
    if (!PathExists(fp))
      return Status::Corruption(fp + ": missing (listed in " + std::string(kStateFile) + ")");
    bool large = name == kModelFile || name == kOptimizerFile || name == kOptimizerFileV1;
    if (large && !verify_large) continue;
    uint64_t got;
    LM_RETURN_IF_ERROR(HashFile(fp, &got));
    if (got != want)
      return Status::Corruption(fp + ": checksum mismatch (XXH3 " + HashHex(got) +
                                ", trainer-state.json says " + HashHex(want) + ")");
  }
  *state = std::move(j);
  return Status::OK();
}

}  // namespace

Status ParseTrainerState(const std::string& text, const std::string& path, json* state) {
  json j;
  Status parsed = ParseJsonText(text, &j);
  if (!parsed.ok()) return Status::Corruption(path + ": " + parsed.message());
  if (!j.is_object()) return Status::Corruption(path + ": not a JSON object");
  if (!j.contains("format") || j["format"] != kStateFormat)
    return Status::Invalid(path + ": not an lm trainer state (format is not \"" +
                           std::string(kStateFormat) + "\")");
  if (!j.contains("version") || !j["version"].is_number_integer() ||
      j["version"].get<int>() < kOldestStateVersion || j["version"].get<int>() > kStateVersion)
    return Status::Invalid(path + ": unsupported version (this build reads versions 1 and 2)");
  LM_RETURN_IF_ERROR(CheckStateChecksum(path, text, j));
  for (const char* k : {"step", "tokens_seen", "eot_id"})
    if (!j.contains(k) || !j[k].is_number_integer() || j[k].get<int64_t>() < 0)
      return Status::Corruption(path + ": field '" + k + "' missing or not a non-negative integer");
  if (!j.contains("elapsed_seconds") || !j["elapsed_seconds"].is_number())
    return Status::Corruption(path + ": field 'elapsed_seconds' missing");
  uint64_t h;
  if (!j.contains("vocab_id") || !j["vocab_id"].is_string() ||
      !ParseHashHex(j["vocab_id"].get<std::string>(), &h))
    return Status::Corruption(path + ": field 'vocab_id' missing or not 16 hex digits");
  if (!j.contains("files") || !j["files"].is_object())
    return Status::Corruption(path + ": field 'files' missing");
  for (const char* need : {kModelFile, kConfigFile, kVocabFile})
    if (!j["files"].contains(need))
      return Status::Corruption(path + ": files lists no " + std::string(need));
  for (auto it = j["files"].begin(); it != j["files"].end(); ++it) {
    const std::string& name = it.key();
    if (!ListedNameOk(name, j["version"].get<int>()))
      return Status::Corruption(path + ": bad file name '" + name + "'");
    if (!it.value().is_string() || !ParseHashHex(it.value().get<std::string>(), &h))
      return Status::Corruption(path + ": hash of " + name + " is not 16 hex digits");
  }
  *state = std::move(j);
  return Status::OK();
}

std::string SealTrainerState(const json& state) {
  return SealState(state.dump(2));
}

Status LoadCheckpoint(const std::string& step_dir, bool load_params, Checkpoint* out) {
  json st;
  LM_RETURN_IF_ERROR(ReadState(step_dir, load_params, &st));
  Checkpoint c;
  c.dir = step_dir;
  std::string cfg_path = JoinPath(step_dir, kConfigFile), cfg_text;
  LM_RETURN_IF_ERROR(ReadFile(cfg_path, &cfg_text));
  LM_RETURN_IF_ERROR(ConfigFromHfJson(cfg_text, &c.config).With(cfg_path));
  if (c.config.padded_vocab < c.config.vocab_size) c.config.Pad();
  LM_RETURN_IF_ERROR(c.config.Validate().With(cfg_path));
  c.eot_id = st["eot_id"].get<int>();
  c.step = st["step"].get<int64_t>();
  {
    // The checksum finds an edited file, but not one moved or copied from
    // another step directory (nor a file written before it had a checksum):
    // its step must be the one the directory is named after.
    const std::string base = BaseName(step_dir);
    int64_t named;
    if (ParseStepDirName(base, &named) && c.step != named)
      return Status::Corruption(JoinPath(step_dir, kStateFile) + ": step " +
                                std::to_string(c.step) + " in a directory named " + base);
  }
  c.tokens_seen = st["tokens_seen"].get<uint64_t>();
  c.elapsed_seconds = st["elapsed_seconds"].get<double>();
  ParseHashHex(st["vocab_id"].get<std::string>(), &c.vocab_id);
  c.vocab_path = JoinPath(step_dir, kVocabFile);
  c.state_json = st.dump(2);
  if (c.eot_id >= c.config.vocab_size)
    return Status::Corruption(step_dir + ": eot_id " + std::to_string(c.eot_id) + " (" +
                              kStateFile + ") is outside the vocabulary of " +
                              std::to_string(c.config.vocab_size) + " tokens (" + kConfigFile +
                              "); one of them was changed");

  {
    // tok.bpe (its bytes checked against files) must be the vocabulary the
    // state and config.json name: same identity, end-of-text id and size.
    VocabFile vf;
    uint64_t vid = 0;
    LM_RETURN_IF_ERROR(ReadVocabFile(c.vocab_path, &vf, &vid));
    if (vid != c.vocab_id)
      return Status::Corruption(JoinPath(step_dir, kStateFile) + ": vocab_id " +
                                HashHex(c.vocab_id) + " is not the identity of " + kVocabFile +
                                " (" + HashHex(vid) + ")");
    if ((int64_t)vf.eot_id != c.eot_id)
      return Status::Corruption(JoinPath(step_dir, kStateFile) + ": eot_id " +
                                std::to_string(c.eot_id) + " is not " + kVocabFile +
                                "'s end-of-text id " + std::to_string(vf.eot_id));
    if (vf.tokens.size() != (size_t)c.config.vocab_size)
      return Status::Corruption(cfg_path + ": vocab_size " + std::to_string(c.config.vocab_size) +
                                " is not the " + std::to_string(vf.tokens.size()) + " ids of " +
                                kVocabFile);
  }

  // The tensors must be exactly the ones the config implies.
  std::string model_path = JoinPath(step_dir, kModelFile);
  SafetensorsReader r;
  LM_RETURN_IF_ERROR(r.Open(model_path));
  ParamLayout layout = MakeParamLayout(c.config);
  for (const TensorInfo& t : layout.tensors) {
    const StTensor* s = r.Find(t.name);
    if (!s)
      return Status::Invalid(model_path + ": tensor '" + t.name +
                             "' missing (config.json implies it)");
    if (s->shape != StoredShape(t, c.config))
      return Status::Invalid(model_path + ": tensor '" + t.name +
                             "' does not have the shape config.json implies");
  }
  for (const StTensor& s : r.tensors())
    if (layout.Find(s.name) < 0)
      return Status::Invalid(model_path + ": unexpected tensor '" + s.name +
                             "' (not part of the model config.json describes)");
  if (load_params) {
    c.params.assign(layout.total, 0.0f);
    for (const TensorInfo& t : layout.tensors)
      LM_RETURN_IF_ERROR(r.ReadF32(t.name, StoredShape(t, c.config), c.params.data() + t.offset));
    std::string bad = FirstNonFinite(layout, c.params.data());
    if (!bad.empty())
      return Status::Invalid(model_path + ": tensor '" + bad + "' holds NaN or infinite values");
  }
  *out = std::move(c);
  return Status::OK();
}

Status LoadOptimizerState(const std::string& step_dir, const ModelConfig& config,
                          std::vector<float>* m, std::vector<float>* v, int64_t* adam_step,
                          std::string* optimizer) {
  json st;
  LM_RETURN_IF_ERROR(ReadState(step_dir, false, &st));
  // Version 1 kept it beside the weights.
  const char* name = st["files"].contains(kOptimizerFile) ? kOptimizerFile : kOptimizerFileV1;
  std::string path = JoinPath(step_dir, name);
  if (!st["files"].contains(name))
    return Status::NotFound(step_dir + ": this checkpoint holds no optimizer state");
  uint64_t want = 0, got = 0;
  ParseHashHex(st["files"][name].get<std::string>(), &want);
  LM_RETURN_IF_ERROR(HashFile(path, &got));
  if (got != want) return Status::Corruption(path + ": checksum mismatch");
  if (!st.contains("adam_step") || !st["adam_step"].is_number_integer() ||
      st["adam_step"].get<int64_t>() < 0)
    return Status::Corruption(JoinPath(step_dir, kStateFile) + ": field 'adam_step' missing");
  SafetensorsReader r;
  LM_RETURN_IF_ERROR(r.Open(path));
  auto fmt = r.metadata().find("format");
  const bool muon = fmt != r.metadata().end() && fmt->second == kMuonFormat;
  if (fmt != r.metadata().end() && !muon && fmt->second != kAdamWFormat)
    return Status::Invalid(path + ": unknown optimizer format '" + fmt->second + "'");
  ParamLayout layout = MakeParamLayout(config);
  m->assign(layout.total, 0.0f);
  v->assign(layout.total, 0.0f);
  size_t expected = 0;
  for (const TensorInfo& t : layout.tensors) {
    std::vector<int64_t> shape = StoredShape(t, config);
    if (muon && MuonTensor(t)) {
      LM_RETURN_IF_ERROR(r.ReadF32(kMuonMomentum + t.name, shape, m->data() + t.offset));
      expected += 1;
      continue;
    }
    LM_RETURN_IF_ERROR(r.ReadF32("exp_avg." + t.name, shape, m->data() + t.offset));
    LM_RETURN_IF_ERROR(r.ReadF32("exp_avg_sq." + t.name, shape, v->data() + t.offset));
    expected += 2;
  }
  if (r.tensors().size() != expected)
    return Status::Invalid(path + ": holds tensors the model does not have");
  if (optimizer) *optimizer = muon ? "muon" : "adamw";
  std::string bad = FirstNonFinite(layout, m->data());
  if (bad.empty()) bad = FirstNonFinite(layout, v->data());
  if (!bad.empty())
    return Status::Invalid(path + ": the moments of '" + bad + "' hold NaN or infinite values");
  *adam_step = st["adam_step"].get<int64_t>();
  return Status::OK();
}

// ---------------------------------------------------------------------------
// Writing

namespace {

// Refuses what must never become a checkpoint: no weights, diverged values,
// an extra_json that is no object or reuses a reserved key.
Status CheckContents(const CheckpointContents& c, json* extra) {
  if (!c.params) return Status::Invalid("WriteCheckpoint: no parameters");
  ParamLayout layout = MakeParamLayout(c.config);
  std::string bad = FirstNonFinite(layout, c.params);
  if (bad.empty() && c.adam_m && c.adam_v) {
    bad = FirstNonFinite(layout, c.adam_m);
    if (bad.empty()) bad = FirstNonFinite(layout, c.adam_v);
  }
  if (!bad.empty())
    return Status::Invalid("step " + std::to_string(c.step) + ": '" + bad +
                           "' holds NaN or infinite values: the training diverged, and "
                           "diverged weights are not saved");
  *extra = json::parse(c.extra_json, nullptr, false);
  if (extra->is_discarded() || !extra->is_object())
    return Status::Invalid("WriteCheckpoint: extra_json is not an object");
  for (const char* k : kReservedKeys)
    if (extra->contains(k))
      return Status::Invalid(std::string("WriteCheckpoint: extra_json reuses key '") + k + "'");
  for (const auto& f : c.extra_files) {
    const std::string& n = f.first;
    bool ours = false;
    for (const char* k : {kModelFile, kOptimizerDir, kConfigFile, kGenerationFile, kVocabFile,
                          kStateFile, kOptimizerFileV1})
      ours |= n == k;
    if (ours || n.empty() || n[0] == '.' || n.find('/') != std::string::npos)
      return Status::Invalid("WriteCheckpoint: extra file name '" + n + "'");
  }
  return Status::OK();
}

// model.safetensors and optimizer/optimizer.safetensors into dir; their hashes into *files.
Status WriteTensors(const std::string& dir, const CheckpointContents& c, json* files) {
  ParamLayout layout = MakeParamLayout(c.config);
  uint64_t h;
  SafetensorsWriter mw;
  mw.SetMetadata("format", "pt");  // transformers refuses files without it
  for (const TensorInfo& t : layout.tensors)
    LM_RETURN_IF_ERROR(
        mw.Add(t.name, StDtype::kF32, StoredShape(t, c.config), c.params + t.offset));
  LM_RETURN_IF_ERROR(WriteSafetensorsSynced(JoinPath(dir, kModelFile), mw, &h));
  (*files)[kModelFile] = HashHex(h);
  if (!c.adam_m || !c.adam_v) return Status::OK();
  SafetensorsWriter ow;
  ow.SetMetadata("format", c.muon ? kMuonFormat : kAdamWFormat);
  ow.SetMetadata("step", std::to_string(c.adam_step));
  // First moments (or Muon's momentum buffers), then second moments.
  for (const TensorInfo& t : layout.tensors) {
    const bool mu = c.muon && MuonTensor(t);
    LM_RETURN_IF_ERROR(ow.Add((mu ? kMuonMomentum : "exp_avg.") + t.name, StDtype::kF32,
                              StoredShape(t, c.config), c.adam_m + t.offset));
  }
  for (const TensorInfo& t : layout.tensors)
    if (!(c.muon && MuonTensor(t)))
      LM_RETURN_IF_ERROR(ow.Add("exp_avg_sq." + t.name, StDtype::kF32, StoredShape(t, c.config),
                                c.adam_v + t.offset));
  std::string sub = JoinPath(dir, kOptimizerDir);
  if (mkdir(sub.c_str(), 0755) != 0) return Status::FromErrno(sub, "cannot create directory");
  LM_RETURN_IF_ERROR(WriteSafetensorsSynced(JoinPath(dir, kOptimizerFile), ow, &h));
  (*files)[kOptimizerFile] = HashHex(h);
  return SyncDir(sub);
}

// Writes dir/name (fsynced) and lists its hash in *files.
Status WriteListed(const std::string& dir, const std::string& name, const std::string& bytes,
                   json* files) {
  LM_RETURN_IF_ERROR(WriteFileSynced(JoinPath(dir, name), bytes));
  (*files)[name] = HashHex(Hash64(bytes));
  return Status::OK();
}

// config.json, generation_config.json, tok.bpe and the caller's extra files.
Status WriteSmallFiles(const std::string& dir, const CheckpointContents& c, json* files) {
  LM_RETURN_IF_ERROR(WriteListed(dir, kConfigFile, ConfigToHfJson(c.config, c.eot_id), files));
  std::string vocab = c.vocab_bytes;
  if (vocab.empty()) LM_RETURN_IF_ERROR(ReadFile(c.vocab_path, &vocab));
  // The vocabulary's unused ids, which generation must never draw.
  VocabFile vf;
  uint64_t vid;
  LM_RETURN_IF_ERROR(DecodeVocabFile((const uint8_t*)vocab.data(), vocab.size(),
                                     c.vocab_path.empty() ? kVocabFile : c.vocab_path, &vf, &vid));
  std::vector<uint32_t> unused;
  for (size_t i = 0; i < vf.tokens.size(); i++)
    if (vf.tokens[i].kind == TokenKind::kUnused) unused.push_back((uint32_t)i);
  LM_RETURN_IF_ERROR(
      WriteListed(dir, kGenerationFile, GenerationConfigToHfJson(c.eot_id, unused), files));
  LM_RETURN_IF_ERROR(WriteListed(dir, kVocabFile, vocab, files));
  for (const auto& f : c.extra_files)
    LM_RETURN_IF_ERROR(WriteListed(dir, f.first, f.second, files));
  return Status::OK();
}

// Every file of a step directory into dir, each fsynced, trainer-state.json
// (which holds the others' hashes) last.
Status WriteStepFiles(const std::string& dir, const CheckpointContents& c, const json& extra) {
  json files = json::object();
  LM_RETURN_IF_ERROR(WriteTensors(dir, c, &files));
  LM_RETURN_IF_ERROR(WriteSmallFiles(dir, c, &files));

  json st = json::object();
  st["format"] = kStateFormat;
  st["version"] = kStateVersion;
  st["step"] = c.step;
  st["tokens_seen"] = c.tokens_seen;
  st["elapsed_seconds"] = c.elapsed_seconds;
  st["vocab_id"] = HashHex(c.vocab_id);
  st["eot_id"] = c.eot_id;
  if (c.adam_m && c.adam_v) st["adam_step"] = c.adam_step;
  st["files"] = files;
  for (auto it = extra.begin(); it != extra.end(); ++it) st[it.key()] = it.value();
  std::string text = SealTrainerState(st);
  LM_RETURN_IF_ERROR(WriteFileSynced(JoinPath(dir, kStateFile), text));
  return SyncDir(dir);
}

// Renames the finished tmp over final_dir; a directory of the same step (a
// second save at one step) is swapped out first.
Status MoveIntoPlace(const std::string& run, const std::string& tmp, const std::string& final_dir) {
  std::string old;
  if (PathExists(final_dir)) {
    old = JoinPath(run, ".old-" + BaseName(final_dir) + "-" + std::to_string(getpid()));
    LM_RETURN_IF_ERROR(RemoveAll(old));
    if (rename(final_dir.c_str(), old.c_str()) != 0)
      return Status::FromErrno(final_dir, "cannot move aside");
  }
  if (rename(tmp.c_str(), final_dir.c_str()) != 0)
    return Status::FromErrno(final_dir, "cannot rename into place");
  LM_RETURN_IF_ERROR(SyncDir(run));
  if (!old.empty()) LM_RETURN_IF_ERROR(RemoveAll(old));
  return Status::OK();
}

}  // namespace

Status WriteCheckpoint(const std::string& run, const CheckpointContents& c, std::string* step_dir) {
  json extra;
  LM_RETURN_IF_ERROR(CheckContents(c, &extra));
  LM_RETURN_IF_ERROR(MakeDirs(run));
  std::string name = CheckpointDirName(c.step);
  std::string final_dir = JoinPath(run, name);
  std::string tmp = JoinPath(run, ".tmp-" + name + "-" + std::to_string(getpid()));
  LM_RETURN_IF_ERROR(RemoveAll(tmp));
  if (mkdir(tmp.c_str(), 0755) != 0) return Status::FromErrno(tmp, "cannot create directory");
  Status s = WriteStepFiles(tmp, c, extra);
  if (s.ok()) s = MoveIntoPlace(run, tmp, final_dir);
  if (!s.ok()) {
    RemoveAll(tmp);
    return s;
  }
  if (step_dir) *step_dir = final_dir;
  return Status::OK();
}

namespace {

// RUN/name -> step_dir: a new symlink beside the old one, renamed over it
// (atomic), then RUN fsynced.
Status PointLink(const std::string& run, const std::string& name, const std::string& step_dir) {
  std::string link = JoinPath(run, name);
  std::string tmp_link = JoinPath(run, "." + name + "-" + std::to_string(getpid()));
  unlink(tmp_link.c_str());
  if (symlink(BaseName(step_dir).c_str(), tmp_link.c_str()) != 0)
    return Status::FromErrno(tmp_link, "cannot create symlink");
  if (rename(tmp_link.c_str(), link.c_str()) != 0) {
    Status e = Status::FromErrno(link, "cannot update");
    unlink(tmp_link.c_str());
    return e;
  }
  return SyncDir(run);
}

}  // namespace

Status PointLatest(const std::string& run, const std::string& step_dir) {
  return PointLink(run, kLatest, step_dir);
}

Status PointBest(const std::string& run, const std::string& step_dir) {
  return PointLink(run, kBest, step_dir);
}

Status PruneCheckpoints(const std::string& run, int keep, const std::string& spare) {
  if (keep <= 0) return Status::OK();
  std::vector<std::string> dirs;
  Status pruned = ListCheckpoints(run, &dirs);
  // The step directory RUN/best names is kept whatever its age.
  char best[4096];
  ssize_t n = readlink(JoinPath(run, kBest).c_str(), best, sizeof best - 1);
  const std::string best_name = n > 0 ? BaseName(std::string(best, (size_t)n)) : "";
  for (size_t i = 0; pruned.ok() && i + (size_t)keep < dirs.size(); i++) {
    if (dirs[i] == spare || BaseName(dirs[i]) == best_name) continue;
    std::string gone = JoinPath(run, ".old-" + BaseName(dirs[i]) + "-" + std::to_string(getpid()));
    pruned = RemoveAll(gone);
    if (pruned.ok() && rename(dirs[i].c_str(), gone.c_str()) != 0)
      pruned = Status::FromErrno(dirs[i], "cannot remove (renaming it aside)");
    if (pruned.ok()) pruned = RemoveAll(gone).With("removing " + dirs[i]);
  }
  return pruned;
}

Status SaveCheckpoint(const std::string& run, const CheckpointContents& c, int keep,
                      std::string* step_dir, Status* prune_error) {
  std::string dir;
  LM_RETURN_IF_ERROR(WriteCheckpoint(run, c, &dir));
  LM_RETURN_IF_ERROR(PointLatest(run, dir));
  if (step_dir) *step_dir = dir;
  Status pruned = PruneCheckpoints(run, keep, dir);
  if (!prune_error) return pruned;
  *prune_error = pruned;
  return Status::OK();
}

}  // namespace lm
