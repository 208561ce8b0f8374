// gguf_test.cpp: the GGUF v3 writer's bytes, checked field by field against
// ggml's docs/gguf.md (tests/bats/export-gguf.bats reads whole exports with a
// reader written from that spec), and ggml's Q8_0 blocks.
#include "format/gguf.h"

#include <unistd.h>

#include <cmath>
#include <cstring>

#include "../test.h"
#include "util/codec.h"
#include "util/file.h"

using namespace lm;

namespace {

std::string Written(const GgufWriter& w, Status* s) {
  std::string path = "/tmp/lm-gguf-test-" + std::to_string(getpid()) + ".gguf", out;
  AtomicFile f;
  *s = f.Open(path);
  if (s->ok()) *s = w.Write(&f);
  if (s->ok()) *s = f.Commit();
  if (s->ok()) ReadFile(path, &out);
  unlink(path.c_str());
  return out;
}

struct Cursor {
  const std::string& d;
  size_t p = 0;
  uint32_t U32() {
    p += 4;
    return LoadU32((const uint8_t*)d.data() + p - 4);
  }
  uint64_t U64() {
    p += 8;
    return LoadU64((const uint8_t*)d.data() + p - 8);
  }
  std::string Str() {
    uint64_t n = U64();
    p += n;
    return d.substr(p - n, n);
  }
};

}  // namespace

TEST(header_metadata_and_tensors_as_the_spec_lays_them_out) {
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddU32("llama.block_count", 2);
  w.AddF32("llama.rope.freq_base", 10000.f);
  w.AddBool("tokenizer.ggml.add_bos_token", true);
  w.AddStringArray("tokenizer.ggml.tokens", {"a", "Ġb"});
  w.AddI32Array("tokenizer.ggml.token_type", {1, -3});
  const float m[6] = {1, 2, 3, 4, 5, 6}, v[3] = {0.5f, -1, 65504};
  CHECK_OK(w.AddTensor("m", {2, 3}, GgmlType::kF32, [&](std::string* o) {
    GgmlEncode(GgmlType::kF32, m, 6, o);
    return Status::OK();
  }));
  CHECK_OK(w.AddTensor("v", {3}, GgmlType::kF16, [&](std::string* o) {
    GgmlEncode(GgmlType::kF16, v, 3, o);
    return Status::OK();
  }));
  Status s;
  std::string d = Written(w, &s);
  CHECK_OK(s);
  Cursor c{d};
  CHECK_EQ(d.substr(0, 4), std::string("GGUF"));
  c.p = 4;
  CHECK_EQ(c.U32(), 3u);
  CHECK_EQ(c.U64(), 2u);  // tensors
  CHECK_EQ(c.U64(), 6u);  // key/values
  CHECK_EQ(c.Str(), std::string("general.architecture"));
  CHECK_EQ(c.U32(), 8u);  // string
  CHECK_EQ(c.Str(), std::string("llama"));
  CHECK_EQ(c.Str(), std::string("llama.block_count"));
  CHECK_EQ(c.U32(), 4u);  // uint32
  CHECK_EQ(c.U32(), 2u);
  CHECK_EQ(c.Str(), std::string("llama.rope.freq_base"));
  CHECK_EQ(c.U32(), 6u);  // float32
  CHECK_EQ(BitsToFloat(c.U32()), 10000.f);
  CHECK_EQ(c.Str(), std::string("tokenizer.ggml.add_bos_token"));
  CHECK_EQ(c.U32(), 7u);  // bool, one byte
  CHECK_EQ((int)d[c.p++], 1);
  CHECK_EQ(c.Str(), std::string("tokenizer.ggml.tokens"));
  CHECK_EQ(c.U32(), 9u);  // array
  CHECK_EQ(c.U32(), 8u);  // of strings
  CHECK_EQ(c.U64(), 2u);
  CHECK_EQ(c.Str(), std::string("a"));
  CHECK_EQ(c.Str(), std::string("Ġb"));
  CHECK_EQ(c.Str(), std::string("tokenizer.ggml.token_type"));
  CHECK_EQ(c.U32(), 9u);
  CHECK_EQ(c.U32(), 5u);  // of int32
  CHECK_EQ(c.U64(), 2u);
  CHECK_EQ(c.U32(), 1u);
  CHECK_EQ((int32_t)c.U32(), -3);
  // Tensor infos: dims innermost first, offsets from the aligned data start.
  CHECK_EQ(c.Str(), std::string("m"));
  CHECK_EQ(c.U32(), 2u);
  CHECK_EQ(c.U64(), 3u);
  CHECK_EQ(c.U64(), 2u);
  CHECK_EQ(c.U32(), 0u);  // F32
  CHECK_EQ(c.U64(), 0u);
  CHECK_EQ(c.Str(), std::string("v"));
  CHECK_EQ(c.U32(), 1u);
  CHECK_EQ(c.U64(), 3u);
  CHECK_EQ(c.U32(), 1u);   // F16
  CHECK_EQ(c.U64(), 32u);  // 24 bytes of m, padded to 32
  const size_t data = (c.p + 31) / 32 * 32;
  for (size_t i = c.p; i < data; i++) CHECK_EQ((int)d[i], 0);
  CHECK_EQ(d.size(), data + 64);  // each tensor padded to the alignment
  float got[6];
  memcpy(got, d.data() + data, 24);
  CHECK(memcmp(got, m, 24) == 0);
  const uint8_t* h = (const uint8_t*)d.data() + data + 32;
  CHECK_EQ(LoadU16(h), 0x3800);  // 0.5
  CHECK_EQ(LoadU16(h + 2), 0xbc00);
  CHECK_EQ(LoadU16(h + 4), 0x7bff);
}

// ggml's quantize_row_q8_0_ref: d = max|x| / 127 as F16, q = roundf(x / d).
TEST(q8_0_blocks) {
  float x[64];
  for (int j = 0; j < 32; j++) x[j] = (float)(j - 16);  // max |x| 16
  for (int j = 32; j < 64; j++) x[j] = 0;               // an all-zero block
  x[33] = 0;
  std::string out;
  GgmlEncode(GgmlType::kQ8_0, x, 64, &out);
  CHECK_EQ(out.size(), 68u);
  const uint8_t* b = (const uint8_t*)out.data();
  CHECK_EQ(LoadU16(b), FloatToHalf(16.f / 127.f));
  const float id = 1.f / (16.f / 127.f);
  for (int j = 0; j < 32; j++) CHECK_EQ((int)(int8_t)b[2 + j], (int)std::roundf(x[j] * id));
  CHECK_EQ((int)(int8_t)b[2], -127);
  CHECK_EQ(LoadU16(b + 34), 0);
  for (int j = 0; j < 32; j++) CHECK_EQ((int)b[36 + j], 0);
  // Half away from zero, as roundf: 0.5 -> 1, -2.5 -> -3.
  float y[32] = {127, 0.5f * 127.f / 127.f};
  y[2] = -2.5f;
  out.clear();
  GgmlEncode(GgmlType::kQ8_0, y, 32, &out);
  CHECK_EQ((int)(int8_t)out[2 + 1], 1);
  CHECK_EQ((int)(int8_t)out[2 + 2], -3);
}

TEST(refuses_what_ggml_cannot_read) {
  auto none = [](std::string*) { return Status::OK(); };
  GgufWriter w;
  CHECK_EQ(w.AddTensor(std::string(64, 'x'), {4}, GgmlType::kF32, none).code(), Status::kInvalid);
  CHECK_EQ(w.AddTensor("q", {2, 48}, GgmlType::kQ8_0, none).code(), Status::kInvalid);
  CHECK_EQ(w.AddTensor("z", {0, 4}, GgmlType::kF32, none).code(), Status::kInvalid);
  CHECK_OK(w.AddTensor("short", {4}, GgmlType::kF32, none));  // gives no bytes
  Status s;
  Written(w, &s);
  CHECK_EQ(s.code(), Status::kInvalid);
  GgufWriter k;
  k.AddU32("a", 1);
  k.AddString("a", "again");
  Written(k, &s);
  CHECK_EQ(s.code(), Status::kInvalid);
}

TEST_MAIN()
