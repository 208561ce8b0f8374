// manifest.cpp: manifest.json reader and writer (docs/formats/manifest.md).
#include "format/manifest.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <set>

#include "format/shard.h"
#include "util/codec.h"
#include "util/file.h"
#include "util/hash.h"
#include "util/json.h"

namespace lm {

namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

// Typed field access that reports instead of throwing.
struct Fields {
  const json& obj;
  std::string where;
  Status status;

  const json* Find(const char* key, bool required) {
    auto it = obj.find(key);
    if (it == obj.end()) {
      if (required && status.ok()) status = Status::Invalid(where + ": missing \"" + key + "\"");
      return nullptr;
    }
    return &*it;
  }
  void Fail(const char* key, const char* want) {
    if (status.ok()) status = Status::Invalid(where + ": \"" + key + "\" must be " + want);
  }
  uint64_t U64(const char* key, bool required = true, uint64_t def = 0) {
    const json* v = Find(key, required);
    if (!v) return def;
    if (!v->is_number_unsigned()) {
      Fail(key, "a non-negative integer");
      return def;
    }
    return v->get<uint64_t>();
  }
  int64_t I64(const char* key, bool required, int64_t def) {
    const json* v = Find(key, required);
    if (!v) return def;
    if (!v->is_number_integer()) {
      Fail(key, "an integer");
      return def;
    }
    return v->get<int64_t>();
  }
  double Num(const char* key, bool required, double def) {
    const json* v = Find(key, required);
    if (!v) return def;
    if (!v->is_number()) {
      Fail(key, "a number");
      return def;
    }
    return v->get<double>();
  }
  std::string Str(const char* key, bool required = true) {
    const json* v = Find(key, required);
    if (!v) return "";
    if (!v->is_string()) {
      Fail(key, "a string");
      return "";
    }
    return v->get<std::string>();
  }
  uint64_t Hash(const char* key, bool required = true) {
    std::string s = Str(key, required);
    uint64_t h = 0;
    if (!s.empty() || required) {
      if (status.ok() && !ParseHashHex(s, &h)) Fail(key, "16 lowercase hex digits");
    }
    return h;
  }
};

bool IsHexId(const std::string& s) {
  uint64_t h;
  return ParseHashHex(s, &h);
}

Status ParseImpl(const std::string& text, const std::string& name, Manifest* m) {
  json j;
  Status parsed = ParseJsonText(text, &j);
  if (!parsed.ok()) return Status::Invalid(name + ": " + parsed.message());
  if (!j.is_object()) return Status::Invalid(name + ": not a JSON object");
  Fields top{j, name, Status::OK()};
  std::string format = top.Str("format");
  LM_RETURN_IF_ERROR(top.status);
  if (format != kManifestFormat)
    return Status::Invalid(name + ": not an lm dataset manifest (\"format\" is \"" + format +
                           "\")");
  uint64_t version = top.U64("version");
  LM_RETURN_IF_ERROR(top.status);
  if (version != (uint64_t)kManifestVersion)
    return Status::Invalid(name + ": unsupported manifest version " + std::to_string(version) +
                           " (this build reads version 1)");
  const json* vocab = top.Find("vocab", true);
  LM_RETURN_IF_ERROR(top.status);
  if (!vocab->is_object()) return Status::Invalid(name + ": \"vocab\" must be an object");
  Fields v{*vocab, name + ": vocab", Status::OK()};
  uint64_t size = v.U64("size");
  m->vocab_id = v.Hash("id");
  int64_t eot = v.I64("eot", true, -1);
  LM_RETURN_IF_ERROR(v.status);
  if (size == 0 || size > 0xffffffffULL) return Status::Invalid(name + ": bad vocabulary size");
  m->vocab_size = (uint32_t)size;
  if (eot < -1 || eot >= (int64_t)size)
    return Status::Invalid(name + ": end-of-text id outside the vocabulary");
  m->eot_id = eot < 0 ? 0xffffffffu : (uint32_t)eot;
  uint64_t width = top.U64("token_width");
  LM_RETURN_IF_ERROR(top.status);
  if (width != (m->vocab_size <= 65536 ? 2u : 4u))
    return Status::Invalid(name + ": token width " + std::to_string(width) +
                           " does not fit vocabulary size " + std::to_string(m->vocab_size));
  m->token_width = (int)width;

  const json* shards = top.Find("shards", true);
  LM_RETURN_IF_ERROR(top.status);
  if (!shards->is_array()) return Status::Invalid(name + ": \"shards\" must be an array");
  m->shards.clear();
  m->shards.reserve(shards->size());
  std::set<std::string> seen;
  uint64_t split_tokens[2] = {0, 0}, all_bytes = 0;
  for (size_t i = 0; i < shards->size(); i++) {
    const json& e = (*shards)[i];
    std::string where = name + ": shards[" + std::to_string(i) + "]";
    if (!e.is_object()) return Status::Invalid(where + ": not an object");
    Fields f{e, where, Status::OK()};
    ManifestShard s;
    s.file = f.Str("file");
    s.split = f.Str("split");
    s.bytes = f.U64("bytes");
    s.tokens = f.U64("tokens");
    s.documents = f.U64("documents");
    s.blocks = f.U64("blocks");
    s.hash = f.Hash("hash");
    uint64_t level = f.U64("level");
    s.writer = f.Str("writer", false);
    LM_RETURN_IF_ERROR(f.status);
    if (!IsPlainFileName(s.file))
      return Status::Invalid(where + ": bad file name \"" + s.file + "\"");
    if (!seen.insert(s.file).second)
      return Status::Invalid(where + ": \"" + s.file + "\" listed twice");
    if (s.split != "train" && s.split != "val")
      return Status::Invalid(where + ": split must be \"train\" or \"val\", not \"" + s.split +
                             "\"");
    if (s.tokens == 0) return Status::Invalid(where + ": a shard holds at least one token");
    if (level > 22) return Status::Invalid(where + ": bad compression level");
    s.level = (int)level;
    if (!s.writer.empty() && !IsHexId(s.writer)) return Status::Invalid(where + ": bad writer id");
    // The file name carries the writer id too: it stands in for an absent
    // "writer", and must not contradict a present one.
    std::string named = WriterFromFileName(s.file);
    if (s.writer.empty()) {
      s.writer = named;
    } else if (!named.empty() && named != s.writer) {
      return Status::Corruption(where + ": \"writer\" is " + s.writer + " but the file name \"" +
                                s.file + "\" says " + named);
    }
    // Counts no shard of this size can hold are a corrupt manifest: readers
    // size their work by them before any shard header is read. Every block has
    // a 24-byte seek entry and at most kShardMaxBlockTokens tokens, every
    // document 16 bytes of index (shard.md); divisions keep this overflow-free.
    uint64_t room = s.bytes > kShardHeaderSize + 8 ? s.bytes - kShardHeaderSize - 8 : 0;
    bool possible = s.blocks >= 1 && s.blocks <= s.tokens && s.documents <= s.tokens &&
                    s.blocks <= room / kShardSeekEntrySize &&
                    s.documents <= (room - s.blocks * kShardSeekEntrySize) / 16 &&
                    (s.tokens - 1) / s.blocks < kShardMaxBlockTokens;
    if (!possible)
      return Status::Corruption(name + ": " + s.file + ": " + std::to_string(s.tokens) +
                                " tokens, " + std::to_string(s.documents) + " documents in " +
                                std::to_string(s.blocks) + " blocks cannot fit in its " +
                                std::to_string(s.bytes) + " bytes");
    // Positions in a split are u64 (int64 to some callers) and sizes are
    // off_t: totals past 2^63 cannot be real data.
    int k = s.split == "val";
    if (s.tokens > (UINT64_MAX >> 1) - split_tokens[k])
      return Status::Corruption(name + ": the " + s.split +
                                " split's token counts add up to more than 2^63");
    if (s.bytes > (UINT64_MAX >> 1) - all_bytes)
      return Status::Corruption(name + ": the shards' sizes add up to more than 2^63 bytes");
    split_tokens[k] += s.tokens;
    all_bytes += s.bytes;
    m->shards.push_back(std::move(s));
  }

  m->writers.clear();
  const json* writers = top.Find("writers", false);
  if (writers) {
    if (!writers->is_array()) return Status::Invalid(name + ": \"writers\" must be an array");
    for (size_t i = 0; i < writers->size(); i++) {
      const json& e = (*writers)[i];
      std::string where = name + ": writers[" + std::to_string(i) + "]";
      if (!e.is_object()) return Status::Invalid(where + ": not an object");
      Fields f{e, where, Status::OK()};
      ManifestWriter w;
      w.id = f.Str("id");
      w.seed = f.U64("seed", false);
      w.val_fraction = f.Num("val_fraction", false, 0);
      w.val_docs = f.I64("val_docs", false, -1);
      w.val_cut = f.U64("val_cut", false);
      w.documents = f.U64("documents", false);
      w.documents_known = e.contains("documents");
      w.created = f.Str("created", false);
      w.label = f.Str("label", false);
      LM_RETURN_IF_ERROR(f.status);
      if (!IsHexId(w.id)) return Status::Invalid(where + ": bad writer id");
      m->writers.push_back(std::move(w));
    }
  }
  return Status::OK();
}

}  // namespace

std::string WriterFromFileName(const std::string& name) {
  size_t d1 = name.find('-');
  if (d1 == std::string::npos) return "";
  std::string split = name.substr(0, d1);
  if (split != "train" && split != "val") return "";
  std::string id = name.substr(d1 + 1, 16);
  size_t d2 = d1 + 17;
  if (!IsHexId(id) || name.size() <= d2 || name[d2] != '-') return "";
  const std::string ext = ".lms";
  if (name.size() < d2 + 1 + 6 + ext.size() ||
      name.compare(name.size() - ext.size(), ext.size(), ext) != 0)
    return "";
  for (size_t i = d2 + 1; i < name.size() - ext.size(); i++)
    if (name[i] < '0' || name[i] > '9') return "";
  return id;
}

bool IsPlainFileName(const std::string& n) {
  return !n.empty() && n[0] != '.' && n.find('/') == std::string::npos &&
         n.find('\0') == std::string::npos;
}

uint64_t Manifest::Identity() const {
  std::string b;
  for (const ManifestShard& s : shards) {
    b.push_back(s.split == "val" ? 1 : 0);
    PutU64(&b, s.hash);
  }
  return Hash64(b.data(), b.size());
}

Status ParseManifest(const std::string& text, const std::string& name, Manifest* m) {
  try {
    return ParseImpl(text, name, m);
  } catch (const std::exception& e) {
    return Status::Invalid(name + ": " + e.what());
  }
}

void Manifest::Totals(SplitTotals split[2], uint64_t* bytes) const {
  split[0] = split[1] = SplitTotals();
  *bytes = 0;
  for (const ManifestShard& s : shards) {
    SplitTotals& t = split[s.split == "val"];
    t.shards++;
    t.tokens += s.tokens;
    t.documents += s.documents;
    *bytes += s.bytes;
  }
}

std::string SerializeManifest(const Manifest& m) {
  ordered_json j;
  j["format"] = kManifestFormat;
  j["version"] = kManifestVersion;
  j["vocab"] = {{"size", m.vocab_size},
                {"id", HashHex(m.vocab_id)},
                {"eot", m.eot_id == 0xffffffffu ? (int64_t)-1 : (int64_t)m.eot_id}};
  j["token_width"] = m.token_width;
  SplitTotals t[2];
  uint64_t bytes;
  m.Totals(t, &bytes);
  // Totals are for people; readers recompute them from the shards.
  ordered_json totals;
  for (int k = 0; k < 2; k++)
    totals[k ? "val" : "train"] = {
        {"shards", t[k].shards}, {"tokens", t[k].tokens}, {"documents", t[k].documents}};
  totals["bytes"] = bytes;
  j["totals"] = totals;
  j["shards"] = ordered_json::array();
  for (const ManifestShard& s : m.shards) {
    ordered_json e;
    e["file"] = s.file;
    e["split"] = s.split;
    e["tokens"] = s.tokens;
    e["documents"] = s.documents;
    e["blocks"] = s.blocks;
    e["bytes"] = s.bytes;
    e["level"] = s.level;
    e["hash"] = HashHex(s.hash);
    if (!s.writer.empty()) e["writer"] = s.writer;
    j["shards"].push_back(std::move(e));
  }
  j["writers"] = ordered_json::array();
  for (const ManifestWriter& w : m.writers) {
    ordered_json e;
    e["id"] = w.id;
    e["seed"] = w.seed;
    if (w.val_docs >= 0)
      e["val_docs"] = w.val_docs;
    else
      e["val_fraction"] = w.val_fraction;
    if (w.val_docs < 0 && w.val_cut > 0) e["val_cut"] = w.val_cut;
    if (w.documents_known) e["documents"] = w.documents;
    if (!w.created.empty()) e["created"] = w.created;
    if (!w.label.empty()) e["label"] = w.label;
    j["writers"].push_back(std::move(e));
  }
  return j.dump(2) + "\n";
}

Status ReadManifest(const std::string& dir, Manifest* m) {
  std::string path = JoinPath(dir, kManifestName);
  if (PathExists(dir) && !IsDirectory(dir)) return Status::Invalid(dir + ": not a directory");
  if (!PathExists(path))
    return Status::NotFound(path + ": no such file (not a dataset made by lm-pack?)");
  // Reading a FIFO would wait for a writer forever; a device has no end.
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    return Status::Invalid(path + ": not a regular file");
  std::string text;
  LM_RETURN_IF_ERROR(ReadFile(path, &text));
  return ParseManifest(text, path, m);
}

Status WriteManifest(const std::string& dir, const Manifest& m) {
  return WriteFileAtomic(JoinPath(dir, kManifestName), SerializeManifest(m));
}

}  // namespace lm
