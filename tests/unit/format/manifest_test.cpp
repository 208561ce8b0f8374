// manifest_test.cpp: manifest.json (docs/formats/manifest.md): round trip,
// a manifest written by hand from the spec, and rejection of malformed ones.
#include <unistd.h>

#include "../test.h"
#include "format/manifest.h"
#include "util/file.h"
#include "util/hash.h"

using namespace lm;

static Manifest Sample() {
  Manifest m;
  m.vocab_size = 50257;
  m.vocab_id = 0xfedcba9876543210ULL;
  m.eot_id = 50256;
  m.token_width = 2;
  for (int i = 0; i < 3; i++) {
    ManifestShard s;
    s.file = "train-0123456789abcdef-00000" + std::to_string(i) + ".lms";
    s.split = i == 2 ? "val" : "train";
    s.bytes = 100000 + i;          // room for the blocks and documents below
    s.tokens = 5000000000ULL + i;  // beyond 32 bits
    s.documents = 7 + i;
    s.blocks = 1200;  // at most 4 Mi tokens a block
    s.hash = 0x8000000000000001ULL + i;
    s.level = 3;
    s.writer = "0123456789abcdef";
    m.shards.push_back(s);
  }
  ManifestWriter w;
  w.id = "0123456789abcdef";
  w.seed = 18446744073709551615ULL;
  w.val_fraction = 0.01;
  w.documents = 24;
  w.created = "2026-11-28T22:00:00Z";
  w.label = "corpus/part \"7\" \xc3\xa9.txt";  // quotes and UTF-8 survive the JSON
  m.writers.push_back(w);
  return m;
}

TEST(round_trip) {
  Manifest m = Sample(), back;
  std::string text = SerializeManifest(m);
  CHECK_OK(ParseManifest(text, "m", &back));
  CHECK_EQ(back.vocab_size, m.vocab_size);
  CHECK_EQ(back.vocab_id, m.vocab_id);
  CHECK_EQ(back.eot_id, m.eot_id);
  CHECK_EQ(back.shards.size(), m.shards.size());
  for (size_t i = 0; i < m.shards.size(); i++) {
    CHECK_EQ(back.shards[i].file, m.shards[i].file);
    CHECK_EQ(back.shards[i].split, m.shards[i].split);
    CHECK_EQ(back.shards[i].tokens, m.shards[i].tokens);
    CHECK_EQ(back.shards[i].hash, m.shards[i].hash);
    CHECK_EQ(back.shards[i].bytes, m.shards[i].bytes);
  }
  CHECK_EQ(back.writers.size(), (size_t)1);
  CHECK_EQ(back.writers[0].seed, m.writers[0].seed);
  CHECK_EQ(back.writers[0].label, m.writers[0].label);
  CHECK_EQ(back.Identity(), m.Identity());
  CHECK_EQ(SerializeManifest(back), text);
}

TEST(identity_depends_on_shards_and_order) {
  Manifest a = Sample(), b = Sample();
  std::swap(b.shards[0], b.shards[1]);
  CHECK(a.Identity() != b.Identity());
  b = Sample();
  b.shards[2].split = "train";
  CHECK(a.Identity() != b.Identity());
}

TEST(reads_a_hand_written_manifest) {
  // Only the required keys, in another order, no vocabulary eot, unknown keys.
  const char* text = R"({"shards": [{"split": "val", "file": "a.lms", "tokens": 10, "documents": 1,
    "blocks": 1, "bytes": 120, "level": 0, "hash": "00000000000000ff", "comment": "x"}],
    "token_width": 4, "vocab": {"size": 100000, "id": "0000000000000001", "eot": -1},
    "version": 1, "format": "lm-dataset", "future": {}})";
  Manifest m;
  CHECK_OK(ParseManifest(text, "m", &m));
  CHECK_EQ(m.vocab_size, 100000u);
  CHECK_EQ(m.eot_id, 0xffffffffu);
  CHECK_EQ(m.shards[0].hash, 0xffULL);
  CHECK_EQ(m.shards[0].split, std::string("val"));
}

// A shard entry without "writer" takes it from a file name of lm-pack's form
// SPLIT-ID-NNNNNN.lms; a "writer" that contradicts the name is corruption.
TEST(writer_from_the_file_name) {
  std::string text = SerializeManifest(Sample());
  std::string drop = ",\n      \"writer\": \"0123456789abcdef\"";
  for (size_t at; (at = text.find(drop)) != std::string::npos;) text.erase(at, drop.size());
  CHECK(text.find("\"writer\"") == std::string::npos);
  Manifest m;
  CHECK_OK(ParseManifest(text, "m", &m));
  for (const ManifestShard& e : m.shards) CHECK_EQ(e.writer, std::string("0123456789abcdef"));
  // Names of another form leave it unknown.
  for (const char* name :
       {"x.lms", "test-0123456789abcdef-000000.lms", "train-0123456789ABCDEF-000000.lms",
        "train-0123456789abcdef-00000.lms", "train-0123456789abcdef-00000x.lms",
        "train-0123456789abcdef-000000.lmz"}) {
    std::string t = text;
    t.replace(t.find("train-0123456789abcdef-000000.lms"), 33, name);
    CHECK_OK(ParseManifest(t, "m", &m));
    CHECK_EQ(m.shards[0].writer, std::string(""));
    CHECK_EQ(m.shards[1].writer, std::string("0123456789abcdef"));
  }
  std::string other = SerializeManifest(Sample());
  other.replace(other.find("\"writer\": \"0123456789abcdef\""), 28,
                "\"writer\": \"00000000000000aa\"");
  Status s = ParseManifest(other, "m", &m);
  CHECK(s.code() == Status::kCorruption);
  CHECK_EQ(s.message(), std::string("m: shards[0]: \"writer\" is 00000000000000aa but the file "
                                    "name \"train-0123456789abcdef-000000.lms\" says "
                                    "0123456789abcdef"));
}

static Status ParseEdited(const std::string& from, const std::string& to) {
  std::string text = SerializeManifest(Sample());
  size_t at = text.find(from);
  if (at == std::string::npos) return Status::Invalid("test bug: '" + from + "' not found");
  text.replace(at, from.size(), to);
  Manifest m;
  return ParseManifest(text, "m.json", &m);
}

TEST(rejects_malformed_manifests) {
  Manifest m;
  CHECK(!ParseManifest("", "m", &m).ok());
  CHECK(!ParseManifest("{", "m", &m).ok());
  CHECK(!ParseManifest("[]", "m", &m).ok());
  CHECK_OK(ParseEdited("\"version\": 1", "\"version\": 1"));
  CHECK(ParseEdited("\"version\": 1", "\"version\": 2").message().find("version 2") !=
        std::string::npos);
  CHECK(!ParseEdited("\"format\": \"lm-dataset\"", "\"format\": \"other\"").ok());
  CHECK(!ParseEdited("\"split\": \"val\"", "\"split\": \"test\"").ok());
  CHECK(!ParseEdited("\"file\": \"train-0123456789abcdef-000000.lms\"", "\"file\": \"../x.lms\"")
             .ok());
  CHECK(!ParseEdited("\"file\": \"train-0123456789abcdef-000000.lms\"", "\"file\": \".hidden\"")
             .ok());
  CHECK(!ParseEdited("\"file\": \"train-0123456789abcdef-000000.lms\"",
                     "\"file\": \"train-0123456789abcdef-000001.lms\"")
             .ok());  // duplicate
  CHECK(!ParseEdited("\"tokens\": 5000000000", "\"tokens\": -5").ok());
  CHECK(!ParseEdited("\"tokens\": 5000000000", "\"tokens\": \"5\"").ok());
  CHECK(!ParseEdited("\"tokens\": 5000000000", "\"tokens\": 0").ok());
  CHECK(!ParseEdited("\"hash\": \"8000000000000001\"", "\"hash\": \"80000000000001\"").ok());
  CHECK(!ParseEdited("\"hash\": \"8000000000000001\"", "\"hash\": \"800000000000000G\"").ok());
  CHECK(!ParseEdited("\"token_width\": 2", "\"token_width\": 4").ok());
  CHECK(!ParseEdited("\"eot\": 50256", "\"eot\": 50257").ok());
  CHECK(!ParseEdited("\"size\": 50257", "\"size\": 0").ok());
  CHECK(!ParseEdited("\"label\": \"corpus", "\"label\": 7, \"x\": \"corpus").ok());  // a string
  Status s = ParseEdited("\"blocks\": 1200,", "");
  CHECK(s.message().find("shards[0]") != std::string::npos);
  CHECK(s.message().find("blocks") != std::string::npos);
}

TEST(rejects_counts_no_shard_could_hold) {
  // Readers size their work by these before any shard header is read.
  CHECK_OK(ParseEdited("\"blocks\": 1200,", "\"blocks\": 1193,"));  // 4,191,115 tokens a block
  for (const char* blocks : {"0", "1192", "5000000001"}) {  // none, too few, more than tokens
    Status s = ParseEdited("\"blocks\": 1200,", std::string("\"blocks\": ") + blocks + ",");
    CHECK_EQ(s.code(), Status::kCorruption);
    CHECK(s.message().find("cannot fit in its") != std::string::npos);
  }
  CHECK_EQ(ParseEdited("\"documents\": 7,", "\"documents\": 5000000001,").code(),
           Status::kCorruption);
  // 72 bytes of header and end, 24 a block, 16 a document: 28,984 for shard 0.
  CHECK_OK(ParseEdited("\"bytes\": 100000,", "\"bytes\": 28984,"));
  CHECK_EQ(ParseEdited("\"bytes\": 100000,", "\"bytes\": 28983,").code(), Status::kCorruption);
  // Sums a u64 could wrap: a split's tokens, and all the bytes.
  Manifest m = Sample();
  m.shards[1].tokens = m.shards[1].blocks * 4194304;
  m.shards[0].blocks = m.shards[1].blocks = 2199023255552ULL;                // 2^41
  m.shards[0].tokens = m.shards[1].tokens = 2199023255552ULL * 4194304 - 1;  // 2^63 - 1
  m.shards[0].bytes = m.shards[1].bytes = 1ULL << 50;
  Manifest back;
  Status s = ParseManifest(SerializeManifest(m), "m.json", &back);
  CHECK_EQ(s.code(), Status::kCorruption);
  CHECK(s.message() == "m.json: the train split's token counts add up to more than 2^63");
  m = Sample();
  m.shards[0].bytes = m.shards[2].bytes = 1ULL << 62;
  s = ParseManifest(SerializeManifest(m), "m.json", &back);
  CHECK(s.message() == "m.json: the shards' sizes add up to more than 2^63 bytes");
  m.shards[2].bytes = (1ULL << 62) - 200000;  // with shard 1, just under 2^63
  CHECK_OK(ParseManifest(SerializeManifest(m), "m.json", &back));
}

TEST(read_and_write_in_a_directory) {
  char tmpl[] = "/tmp/lm-manifest-test.XXXXXX";
  std::string dir = mkdtemp(tmpl);
  Manifest m;
  Status s = ReadManifest(dir, &m);
  CHECK(s.code() == Status::kNotFound);
  CHECK_OK(WriteManifest(dir, Sample()));
  CHECK_OK(ReadManifest(dir, &m));
  CHECK_EQ(m.shards.size(), (size_t)3);
  RemoveAll(dir);
}

TEST_MAIN()
