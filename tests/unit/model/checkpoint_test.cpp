// checkpoint_test.cpp: writing and reading run directories: round trip,
// RUN/latest, --keep pruning, and refusal of corrupted or inconsistent ones.
#include "model/checkpoint.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "../test.h"
#include "format/safetensors.h"
#include "format/vocab.h"
#include "util/file.h"
#include "util/hash.h"

using namespace lm;

namespace {

struct Fixture {
  std::string root;
  ModelConfig cfg;
  ParamLayout layout;
  std::vector<float> p, m, v;
  std::string vocab_path;
  uint64_t vocab_id = 0;

  explicit Fixture(const char* name, bool tied = true) {
    root = std::string("/tmp/lm-ckpt-test-") + std::to_string(getpid()) + "-" + name;
    RemoveAll(root);
    MakeDirs(root);
    CHECK_OK(PresetConfig("tiny", 300, &cfg));
    cfg.tied_embeddings = tied;
    cfg.Pad();
    layout = MakeParamLayout(cfg);
    std::mt19937 g(7);
    std::normal_distribution<float> n(0, 1);
    p.resize(layout.total);
    m.resize(layout.total);
    v.resize(layout.total);
    for (size_t i = 0; i < layout.total; i++) p[i] = n(g), m[i] = n(g), v[i] = std::fabs(n(g));
    // Padding rows are zero, as the backends keep them.
    for (const TensorInfo& t : layout.tensors)
      if (t.vocab_rows)
        for (size_t i = (size_t)cfg.vocab_size * cfg.dim; i < t.numel; i++)
          p[t.offset + i] = m[t.offset + i] = v[t.offset + i] = 0;
    // 300 ids: the bytes, unused ids, <|endoftext|> = 299.
    VocabFile vf;
    vf.pattern = PatternRegex(vf.pattern_kind);
    vf.tokens.resize(300);
    for (int b = 0; b < 256; b++) {
      vf.tokens[b].kind = TokenKind::kByte;
      vf.tokens[b].bytes.assign(1, (char)b);
    }
    vf.tokens[299].kind = TokenKind::kSpecial;
    vf.tokens[299].bytes = "<|endoftext|>";
    vf.eot_id = 299;
    vocab_path = root + "/src.bpe";
    CHECK_OK(WriteVocabFile(vocab_path, vf, &vocab_id));
  }
  ~Fixture() { RemoveAll(root); }

  CheckpointContents Contents(int64_t step) {
    CheckpointContents c;
    c.config = cfg;
    c.eot_id = 299;
    c.step = step;
    c.tokens_seen = 1000 * (uint64_t)step;
    c.elapsed_seconds = 1.25 * step;
    c.vocab_id = vocab_id;
    c.vocab_path = vocab_path;
    c.params = p.data();
    c.adam_m = m.data();
    c.adam_v = v.data();
    c.adam_step = step;
    c.extra_json = "{\"loader\":{\"seed\":1,\"epoch\":0,\"index\":5}}";
    return c;
  }
  std::string Run() const { return root + "/run"; }
};

void FlipByte(const std::string& path, size_t off) {
  std::string d;
  CHECK_OK(ReadFile(path, &d));
  d[off] ^= 0x40;
  CHECK_OK(WriteFileAtomic(path, d));
}

}  // namespace

TEST(round_trip) {
  Fixture f("rt");
  std::string dir;
  CHECK_OK(SaveCheckpoint(f.Run(), f.Contents(12), 3, &dir));
  CHECK_EQ(dir, f.Run() + "/step-0000012");
  Checkpoint c;
  CHECK_OK(LoadCheckpoint(dir, true, &c));
  CHECK_EQ(c.step, 12);
  CHECK_EQ(c.tokens_seen, 12000u);
  CHECK_EQ(c.elapsed_seconds, 15.0);
  CHECK_EQ(c.eot_id, 299);
  CHECK_EQ(c.vocab_id, f.vocab_id);
  CHECK_EQ(c.config.dim, f.cfg.dim);
  CHECK_EQ(c.config.vocab_size, 300);
  CHECK_EQ(c.config.padded_vocab, f.cfg.padded_vocab);
  CHECK(c.params == f.p);  // bit for bit, padding rows zero
  CHECK_EQ(c.vocab_path, dir + "/tok.bpe");
  std::string copied, src;
  CHECK_OK(ReadFile(c.vocab_path, &copied));
  CHECK_OK(ReadFile(f.vocab_path, &src));
  CHECK(copied == src);
  CHECK(c.state_json.find("\"loader\"") != std::string::npos);

  std::vector<float> m, v;
  int64_t s = 0;
  CHECK_OK(LoadOptimizerState(dir, c.config, &m, &v, &s));
  CHECK_EQ(s, 12);
  CHECK(m == f.m);
  CHECK(v == f.v);

  // Metadata only.
  Checkpoint meta;
  CHECK_OK(LoadCheckpoint(dir, false, &meta));
  CHECK(meta.params.empty());
  CHECK_EQ(meta.step, 12);
}

TEST(model_file_is_plain_hf_llama) {
  Fixture f("hf");
  std::string dir;
  CHECK_OK(SaveCheckpoint(f.Run(), f.Contents(1), 0, &dir));
  SafetensorsReader r;
  CHECK_OK(r.Open(dir + "/model.safetensors"));
  CHECK_EQ(r.metadata().at("format"), std::string("pt"));
  const StTensor* e = r.Find("model.embed_tokens.weight");
  CHECK(e != nullptr);
  if (e) {
    CHECK_EQ(e->shape.size(), 2u);
    CHECK_EQ(e->shape[0], 300);  // real rows only
    CHECK_EQ(e->shape[1], f.cfg.dim);
    CHECK(e->dtype == StDtype::kF32);
  }
  CHECK(r.Find("lm_head.weight") == nullptr);  // tied
  CHECK(r.Find("model.layers.1.mlp.down_proj.weight") != nullptr);
  CHECK(r.Find("model.norm.weight") != nullptr);
  CHECK_EQ(r.tensors().size(), f.layout.tensors.size());
  std::string cfg;
  CHECK_OK(ReadFile(dir + "/config.json", &cfg));
  auto j = nlohmann::json::parse(cfg);
  CHECK_EQ(j["architectures"][0].get<std::string>(), std::string("LlamaForCausalLM"));
  CHECK_EQ(j["vocab_size"].get<int>(), 300);
}

TEST(untied_head_round_trip) {
  Fixture f("untied", /*tied=*/false);
  std::string dir;
  CHECK_OK(SaveCheckpoint(f.Run(), f.Contents(3), 0, &dir));
  Checkpoint c;
  CHECK_OK(LoadCheckpoint(dir, true, &c));
  CHECK(!c.config.tied_embeddings);
  CHECK(c.params == f.p);
  SafetensorsReader r;
  CHECK_OK(r.Open(dir + "/model.safetensors"));
  CHECK(r.Find("lm_head.weight") != nullptr);
}

TEST(latest_and_keep) {
  Fixture f("keep");
  for (int s : {10, 20, 30, 40}) CHECK_OK(SaveCheckpoint(f.Run(), f.Contents(s), 2, nullptr));
  std::vector<std::string> dirs;
  CHECK_OK(ListCheckpoints(f.Run(), &dirs));
  CHECK_EQ(dirs.size(), 2u);
  if (dirs.size() == 2) {
    CHECK_EQ(dirs[0], f.Run() + "/step-0000030");
    CHECK_EQ(dirs[1], f.Run() + "/step-0000040");
  }
  char buf[256];
  ssize_t n = readlink((f.Run() + "/latest").c_str(), buf, sizeof buf);
  CHECK(n > 0);
  CHECK_EQ(std::string(buf, n > 0 ? (size_t)n : 0), std::string("step-0000040"));
  std::string d;
  CHECK_OK(ResolveCheckpoint(f.Run(), &d));
  CHECK_EQ(d, f.Run() + "/step-0000040");
  CHECK_OK(ResolveCheckpoint(f.Run() + "/step-0000030", &d));
  CHECK_EQ(d, f.Run() + "/step-0000030");
  // No temporaries are left behind.
  std::string ls;
  for (const char* junk : {"/.tmp-step-0000040", "/.latest"})
    CHECK(!PathExists(f.Run() + junk + std::string("-") + std::to_string(getpid())));
  // A second save at the same step replaces the directory.
  f.p[0] = 42.0f;
  CHECK_OK(SaveCheckpoint(f.Run(), f.Contents(40), 2, nullptr));
  Checkpoint c;
  CHECK_OK(LoadCheckpoint(f.Run() + "/step-0000040", true, &c));
  CHECK_EQ(c.params[0], 42.0f);
  // latest as a plain file naming the directory is read too.
  RemoveAll(f.Run() + "/latest");
  CHECK_OK(WriteFileAtomic(f.Run() + "/latest", "step-0000030\n"));
  CHECK_OK(ResolveCheckpoint(f.Run(), &d));
  CHECK_EQ(d, f.Run() + "/step-0000030");
}

TEST(resolve_errors) {
  Fixture f("resolve");
  std::string d;
  CHECK_EQ(ResolveCheckpoint(f.root + "/nope", &d).code(), Status::kNotFound);
  MakeDirs(f.root + "/empty");
  CHECK_EQ(ResolveCheckpoint(f.root + "/empty", &d).code(), Status::kNotFound);
  // A run directory without latest falls back to its newest step.
  CHECK_OK(SaveCheckpoint(f.Run(), f.Contents(5), 0, nullptr));
  CHECK_OK(SaveCheckpoint(f.Run(), f.Contents(7), 0, nullptr));
  RemoveAll(f.Run() + "/latest");
  CHECK_OK(ResolveCheckpoint(f.Run(), &d));
  CHECK_EQ(d, f.Run() + "/step-0000007");
  // latest naming a missing directory is corruption, not a silent fallback.
  symlink("step-0000099", (f.Run() + "/latest").c_str());
  CHECK_EQ(ResolveCheckpoint(f.Run(), &d).code(), Status::kCorruption);
}

TEST(rejects_corruption) {
  Fixture f("corrupt");
  std::string dir;
  CHECK_OK(SaveCheckpoint(f.Run(), f.Contents(2), 0, &dir));
  Checkpoint c;
  // A flipped byte deep in the weights: caught by the checksum.
  FlipByte(dir + "/model.safetensors", 5000);
  CHECK_EQ(LoadCheckpoint(dir, true, &c).code(), Status::kCorruption);
  CHECK_OK(SaveCheckpoint(f.Run(), f.Contents(2), 0, &dir));
  FlipByte(dir + "/optimizer/optimizer.safetensors", 9000);
  std::vector<float> m, v;
  int64_t s;
  CHECK_EQ(LoadOptimizerState(dir, f.cfg, &m, &v, &s).code(), Status::kCorruption);
  CHECK_OK(SaveCheckpoint(f.Run(), f.Contents(2), 0, &dir));
  FlipByte(dir + "/config.json", 10);
  CHECK(!LoadCheckpoint(dir, false, &c).ok());
  CHECK_OK(SaveCheckpoint(f.Run(), f.Contents(2), 0, &dir));
  RemoveAll(dir + "/tok.bpe");
  CHECK_EQ(LoadCheckpoint(dir, false, &c).code(), Status::kCorruption);
  CHECK_OK(SaveCheckpoint(f.Run(), f.Contents(2), 0, &dir));
  CHECK_OK(WriteFileAtomic(dir + "/trainer-state.json", "{\"format\":\"lm-trainer-state\""));
  CHECK_EQ(LoadCheckpoint(dir, false, &c).code(), Status::kCorruption);
  CHECK_OK(WriteFileAtomic(dir + "/trainer-state.json", "{\"format\":\"something-else\"}"));
  CHECK_EQ(LoadCheckpoint(dir, false, &c).code(), Status::kInvalid);
}

// Weights or moments holding NaN or Inf (a diverged run) are never written.
TEST(refuses_to_save_non_finite_values) {
  Fixture f("nonfinite");
  f.p[17] = NAN;
  Status s = SaveCheckpoint(f.Run(), f.Contents(4), 0, nullptr);
  CHECK(!s.ok());
  CHECK(s.ToString().find("diverged") != std::string::npos);
  f.p[17] = 0.5f;
  f.v[3] = INFINITY;
  CHECK(!SaveCheckpoint(f.Run(), f.Contents(4), 0, nullptr).ok());
  std::vector<std::string> dirs;
  CHECK(!ListCheckpoints(f.Run(), &dirs).ok() || dirs.empty());
  f.v[3] = 0.5f;
  CHECK_OK(SaveCheckpoint(f.Run(), f.Contents(4), 0, nullptr));
}

TEST(config_must_match_tensors) {
  Fixture f("mismatch");
  std::string dir;
  CHECK_OK(SaveCheckpoint(f.Run(), f.Contents(2), 0, &dir));
  // config.json claims a wider model than the tensors hold; its hash is
  // updated so that only the consistency check can catch it.
  ModelConfig wide = f.cfg;
  wide.ffn_dim += 64;
  std::string cfg = ConfigToHfJson(wide, 299);
  CHECK_OK(WriteFileAtomic(dir + "/config.json", cfg));
  std::string st;
  CHECK_OK(ReadFile(dir + "/trainer-state.json", &st));
  auto j = nlohmann::json::parse(st);
  j["files"]["config.json"] = HashHex(Hash64(cfg));
  j.erase("checksum");  // as written before the state had one
  CHECK_OK(WriteFileAtomic(dir + "/trainer-state.json", j.dump()));
  Checkpoint c;
  CHECK_EQ(LoadCheckpoint(dir, false, &c).code(), Status::kInvalid);
}

// trainer-state.json checks itself: its last member is XXH3-64 of every byte
// before its value.
TEST(state_checksum) {
  Fixture f("statesum");
  std::string dir, st;
  CHECK_OK(SaveCheckpoint(f.Run(), f.Contents(3), 0, &dir));
  const std::string path = dir + "/trainer-state.json";
  CHECK_OK(ReadFile(path, &st));
  const std::string key = "\"checksum\": \"";
  size_t end = st.rfind(key) + key.size();
  CHECK(end != std::string::npos + key.size());
  CHECK_EQ(st.substr(end, 16), HashHex(Hash64(st.data(), end)));
  CHECK_EQ(st.substr(end + 16), std::string("\"\n}\n"));
  Checkpoint c;
  CHECK_OK(LoadCheckpoint(dir, false, &c));
  // Any changed byte before the value: a corruption naming the file.
  for (size_t at : {size_t(5), st.find("\"eot_id\"") + 10, end - 3}) {
    std::string bad = st;
    bad[at] = bad[at] == '1' ? '2' : '1';
    if (bad == st) continue;
    CHECK_OK(WriteFileAtomic(path, bad));
    Status s = LoadCheckpoint(dir, false, &c);
    CHECK(!s.ok());
    CHECK(s.ToString().find(path) != std::string::npos);
  }
  // A wrong value, or one that is not the last member.
  std::string bad = st;
  bad[end] = bad[end] == 'a' ? 'b' : 'a';
  CHECK_OK(WriteFileAtomic(path, bad));
  CHECK_EQ(LoadCheckpoint(dir, false, &c).code(), Status::kCorruption);
  auto j = nlohmann::json::parse(st);
  CHECK_OK(WriteFileAtomic(path, j.dump(2)));  // sorted: checksum is not last
  CHECK_EQ(LoadCheckpoint(dir, false, &c).code(), Status::kCorruption);
  // Members after the checksum: not covered by it, so refused; white space is not.
  std::string tail = st.substr(0, end + 16) + "\",\n  \"step\": 4\n}\n";
  CHECK_OK(WriteFileAtomic(path, tail));
  CHECK_EQ(LoadCheckpoint(dir, false, &c).code(), Status::kCorruption);
  CHECK_OK(WriteFileAtomic(path, st.substr(0, end + 16) + "\" }\r\n \n"));
  CHECK_OK(LoadCheckpoint(dir, false, &c));
  CHECK_OK(WriteFileAtomic(path, st + "x"));
  CHECK(!LoadCheckpoint(dir, false, &c).ok());
  // A state without one (written before it existed) still loads.
  j.erase("checksum");
  CHECK_OK(WriteFileAtomic(path, j.dump(2)));
  CHECK_OK(LoadCheckpoint(dir, false, &c));
  CHECK_EQ(c.step, 3);
}

// The state's vocab_id and eot_id, and config.json's vocab_size, must be those
// of the tok.bpe beside them.
TEST(state_must_match_the_vocabulary) {
  Fixture f("vocabmatch");
  std::string dir;
  CheckpointContents cc = f.Contents(2);
  cc.vocab_id ^= 1;
  CHECK_OK(SaveCheckpoint(f.Run(), cc, 0, &dir));
  Checkpoint c;
  Status s = LoadCheckpoint(dir, false, &c);
  CHECK_EQ(s.code(), Status::kCorruption);
  CHECK(s.ToString().find("vocab_id") != std::string::npos);
  cc = f.Contents(3);
  cc.eot_id = 5;
  CHECK_OK(SaveCheckpoint(f.Run(), cc, 0, &dir));
  s = LoadCheckpoint(dir, false, &c);
  CHECK_EQ(s.code(), Status::kCorruption);
  CHECK(s.ToString().find("eot_id 5") != std::string::npos);
  CHECK_OK(SaveCheckpoint(f.Run(), f.Contents(4), 0, &dir));
  CHECK_OK(LoadCheckpoint(dir, true, &c));
}

TEST(extra_json_cannot_override_reserved_fields) {
  Fixture f("extra");
  CheckpointContents c = f.Contents(1);
  c.extra_json = "{\"step\": 99}";
  CHECK_EQ(SaveCheckpoint(f.Run(), c, 0, nullptr).code(), Status::kInvalid);
  c.extra_json = "[1]";
  CHECK_EQ(SaveCheckpoint(f.Run(), c, 0, nullptr).code(), Status::kInvalid);
  std::vector<std::string> dirs;
  CHECK_OK(ListCheckpoints(f.Run(), &dirs));
  CHECK(dirs.empty());
}

// Version 2: a Hugging Face model directory with the optimizer state in a
// subdirectory, the caller's extra files listed with the others.
TEST(layout_is_a_hf_directory) {
  Fixture f("layout");
  CheckpointContents cc = f.Contents(4);
  cc.extra_files = {{"tokenizer.json", "{}\n"}, {"tokenizer_config.json", "{\"a\": 1}\n"}};
  std::string dir;
  CHECK_OK(SaveCheckpoint(f.Run(), cc, 0, &dir));
  CHECK(PathExists(dir + "/optimizer/optimizer.safetensors"));
  CHECK(!PathExists(dir + "/optimizer.safetensors"));
  std::string st, gen, tok;
  CHECK_OK(ReadFile(dir + "/trainer-state.json", &st));
  auto j = nlohmann::json::parse(st);
  CHECK_EQ(j["version"].get<int>(), 2);
  for (const char* n :
       {"model.safetensors", "config.json", "generation_config.json", "tok.bpe", "tokenizer.json",
        "tokenizer_config.json", "optimizer/optimizer.safetensors"})
    CHECK(j["files"].contains(n));
  CHECK_EQ(j["files"].size(), 7u);
  CHECK_OK(ReadFile(dir + "/tokenizer_config.json", &tok));
  CHECK_EQ(tok, std::string("{\"a\": 1}\n"));
  CHECK_EQ(j["files"]["tokenizer_config.json"].get<std::string>(), HashHex(Hash64(tok)));
  // generation_config.json: stops at <|endoftext|>, never draws an unused id.
  CHECK_OK(ReadFile(dir + "/generation_config.json", &gen));
  auto g = nlohmann::json::parse(gen);
  CHECK_EQ(g["eos_token_id"].get<int>(), 299);
  CHECK_EQ(g["bos_token_id"].get<int>(), 299);
  CHECK_EQ(g["suppress_tokens"].size(), 43u);  // ids 256..298
  CHECK_EQ(g["suppress_tokens"][0].get<int>(), 256);
  CHECK_EQ(g["top_k"].get<int>(), 0);
  // An edited extra file is caught like any other.
  CHECK_OK(WriteFileAtomic(dir + "/tokenizer.json", "{ }\n"));
  Checkpoint c;
  CHECK_EQ(LoadCheckpoint(dir, false, &c).code(), Status::kCorruption);
  // Names that are not plain, or are the writer's own, are refused.
  for (const char* bad : {"config.json", "optimizer", "a/b", ".hidden", ""}) {
    cc.extra_files = {{bad, "x"}};
    CHECK_EQ(SaveCheckpoint(f.Run(), cc, 0, nullptr).code(), Status::kInvalid);
  }
}

// A version 1 step directory (optimizer.safetensors beside the weights, no
// Hugging Face files but config.json) still loads and resumes.
TEST(reads_version_1) {
  Fixture f("v1");
  std::string dir;
  CHECK_OK(SaveCheckpoint(f.Run(), f.Contents(5), 0, &dir));
  CHECK_EQ(rename((dir + "/optimizer/optimizer.safetensors").c_str(),
                  (dir + "/optimizer.safetensors").c_str()),
           0);
  RemoveAll(dir + "/optimizer");
  RemoveAll(dir + "/generation_config.json");
  std::string st;
  CHECK_OK(ReadFile(dir + "/trainer-state.json", &st));
  auto j = nlohmann::json::parse(st);
  j["version"] = 1;
  j["files"]["optimizer.safetensors"] = j["files"]["optimizer/optimizer.safetensors"];
  j["files"].erase("optimizer/optimizer.safetensors");
  j["files"].erase("generation_config.json");
  j.erase("checksum");
  CHECK_OK(WriteFileAtomic(dir + "/trainer-state.json", j.dump(2)));
  Checkpoint c;
  CHECK_OK(LoadCheckpoint(dir, true, &c));
  CHECK(c.params == f.p);
  std::vector<float> m, v;
  int64_t s = 0;
  CHECK_OK(LoadOptimizerState(dir, c.config, &m, &v, &s));
  CHECK_EQ(s, 5);
  CHECK(m == f.m);
  CHECK(v == f.v);
  // Version 1 names no subdirectory; version 2 none outside the directory.
  j["files"]["sub/x"] = j["files"]["tok.bpe"];
  CHECK_OK(WriteFileAtomic(dir + "/trainer-state.json", j.dump(2)));
  CHECK_EQ(LoadCheckpoint(dir, false, &c).code(), Status::kCorruption);
  j["version"] = 2;
  j["files"].erase("sub/x");
  for (const char* bad : {"../step-0000005/tok.bpe", "optimizer//x", "./tok.bpe", "/etc/passwd"}) {
    j["files"][bad] = j["files"]["tok.bpe"];
    CHECK_OK(WriteFileAtomic(dir + "/trainer-state.json", j.dump(2)));
    CHECK_EQ(LoadCheckpoint(dir, false, &c).code(), Status::kCorruption);
    j["files"].erase(bad);
  }
  j["version"] = 3;
  CHECK_OK(WriteFileAtomic(dir + "/trainer-state.json", j.dump(2)));
  CHECK_EQ(LoadCheckpoint(dir, false, &c).code(), Status::kInvalid);
}

TEST(dir_names_sort_by_step) {
  CHECK_EQ(CheckpointDirName(0), std::string("step-0000000"));
  CHECK_EQ(CheckpointDirName(1234567), std::string("step-1234567"));
  CHECK_EQ(CheckpointDirName(12345678), std::string("step-12345678"));
  Fixture f("names");
  CHECK_OK(SaveCheckpoint(f.Run(), f.Contents(9999999), 0, nullptr));
  CHECK_OK(SaveCheckpoint(f.Run(), f.Contents(10000000), 0, nullptr));
  std::vector<std::string> dirs;
  CHECK_OK(ListCheckpoints(f.Run(), &dirs));
  CHECK_EQ(dirs.size(), 2u);
  if (dirs.size() == 2) CHECK_EQ(dirs[1], f.Run() + "/step-10000000");
}

TEST_MAIN()
