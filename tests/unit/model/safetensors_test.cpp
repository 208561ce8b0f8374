// safetensors_test.cpp: the safetensors reader and writer, against bytes built
// by hand from the format description and against corrupted files.
#include "format/safetensors.h"

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "../test.h"
#include "util/codec.h"
#include "util/file.h"
#include "util/hash.h"

using namespace lm;

namespace {

// A file from a header string and raw data, as the spec lays it out.
std::string Build(const std::string& header, const std::string& data) {
  std::string f;
  PutU64(&f, header.size());
  return f + header + data;
}

std::string FloatBytes(std::vector<float> v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

Status Parse(const std::string& f) {
  std::vector<StTensor> t;
  std::map<std::string, std::string> m;
  uint64_t ds;
  return ParseSafetensors(reinterpret_cast<const uint8_t*>(f.data()), f.size(), "x.safetensors", &t,
                          &m, &ds);
}

std::string TempPath(const char* name) {
  return std::string("/tmp/lm-st-test-") + std::to_string(getpid()) + "-" + name;
}

}  // namespace

TEST(parse_hand_built_file) {
  // Two tensors, out of order in the header, with metadata and space padding.
  std::string hdr =
      "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
      "\"__metadata__\":{\"format\":\"pt\"},"
      "\"a\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,8]}}   ";
  std::string data;
  // a: bf16 1.0, -2.0, 0.5, 0 (upper halves of the fp32 bit patterns)
  for (uint16_t v : {0x3f80, 0xc000, 0x3f00, 0x0000}) PutU16(&data, v);
  data += FloatBytes({3.5f, -7.25f});
  std::string f = Build(hdr, data);
  std::vector<StTensor> t;
  std::map<std::string, std::string> m;
  uint64_t ds = 0;
  CHECK_OK(
      ParseSafetensors(reinterpret_cast<const uint8_t*>(f.data()), f.size(), "x", &t, &m, &ds));
  CHECK_EQ(t.size(), 2u);
  CHECK_EQ(t[0].name, std::string("a"));  // data order
  CHECK_EQ(m["format"], std::string("pt"));
  CHECK_EQ(ds, 8 + hdr.size());

  std::string path = TempPath("hand.safetensors");
  CHECK_OK(WriteFileAtomic(path, f));
  SafetensorsReader r;
  CHECK_OK(r.Open(path));
  float a[4], b[2];
  CHECK_OK(r.ReadF32("a", {2, 2}, a));
  CHECK_EQ(a[0], 1.0f);
  CHECK_EQ(a[1], -2.0f);
  CHECK_EQ(a[2], 0.5f);
  CHECK_EQ(a[3], 0.0f);
  CHECK_OK(r.ReadF32("b", {2}, b));
  CHECK_EQ(b[0], 3.5f);
  CHECK_EQ(b[1], -7.25f);
  CHECK_EQ(r.ReadF32("b", {1, 2}, b).code(), Status::kInvalid);
  CHECK_EQ(r.ReadF32("c", {2}, b).code(), Status::kNotFound);
  RemoveAll(path);
}

TEST(f16_conversion) {
  std::string hdr = "{\"h\":{\"dtype\":\"F16\",\"shape\":[5],\"data_offsets\":[0,10]}}";
  std::string data;
  // 1.0, -2.0, 65504 (max), 2^-24 (smallest subnormal), -0
  for (uint16_t v : {0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000}) PutU16(&data, v);
  std::string path = TempPath("f16.safetensors");
  CHECK_OK(WriteFileAtomic(path, Build(hdr, data)));
  SafetensorsReader r;
  CHECK_OK(r.Open(path));
  float h[5];
  CHECK_OK(r.ReadF32("h", {5}, h));
  CHECK_EQ(h[0], 1.0f);
  CHECK_EQ(h[1], -2.0f);
  CHECK_EQ(h[2], 65504.0f);
  CHECK_EQ(h[3], std::ldexp(1.0f, -24));
  CHECK(h[4] == 0.0f && std::signbit(h[4]));
  RemoveAll(path);
}

TEST(writer_round_trip_and_layout) {
  std::vector<float> w = {1, 2, 3, 4, 5, 6};
  std::vector<float> n = {0.25f};
  SafetensorsWriter sw;
  sw.SetMetadata("format", "pt");
  CHECK_OK(sw.Add("model.w", StDtype::kF32, {2, 3}, w.data()));
  CHECK_OK(sw.Add("model.n", StDtype::kF32, {1}, n.data()));
  CHECK_EQ(sw.Add("model.n", StDtype::kF32, {1}, n.data()).code(), Status::kInvalid);
  std::string f = sw.Serialize();
  uint64_t hl = LoadU64(reinterpret_cast<const uint8_t*>(f.data()));
  CHECK_EQ(hl % 8, 0u);  // padded so that the data is 8-aligned
  CHECK_EQ(f.size(), 8 + hl + 28);
  CHECK(f.find("\"data_offsets\":[0,24]") != std::string::npos);
  CHECK(f.find("\"data_offsets\":[24,28]") != std::string::npos);

  std::string path = TempPath("rt.safetensors");
  uint64_t h1 = 0;
  CHECK_OK(sw.WriteFile(path, &h1));
  std::string back;
  CHECK_OK(ReadFile(path, &back));
  CHECK(back == f);
  CHECK_EQ(h1, Hash64(f));
  SafetensorsReader r;
  CHECK_OK(r.Open(path));
  std::vector<float> w2(6);
  CHECK_OK(r.ReadF32("model.w", {2, 3}, w2.data()));
  CHECK(w2 == w);
  CHECK_EQ(r.metadata().at("format"), std::string("pt"));
  RemoveAll(path);
}

TEST(empty_tensor_and_empty_file_header) {
  CHECK_OK(Parse(Build("{}", "")));
  CHECK_OK(Parse(Build("{\"z\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[0,0]}}", "")));
}

// Fuzz finding (safetensors_fuzz): the bytes of [2^62] F32 wrapped around
// 2^64 to 0, so data_offsets [0, 0] matched and the reader accepted a tensor
// of 2^62 elements held in no bytes (ReadF32 into a buffer of that shape
// would have read far past the file).
TEST(a_shape_whose_bytes_wrap_around_2_64_is_refused) {
  Status s =
      Parse(Build("{\"t\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],"
                  "\"data_offsets\":[0,0]}}",
                  ""));
  CHECK_EQ(s.code(), Status::kInvalid);
  CHECK(s.message().find("shape [4611686018427387904] too large") != std::string::npos);
  CHECK(Parse(Build("{\"t\":{\"dtype\":\"F64\",\"shape\":[2,1152921504606846976],"
                    "\"data_offsets\":[0,0]}}",
                    ""))
            .code() == Status::kInvalid);
  SafetensorsWriter w;
  CHECK(!w.Add("t", StDtype::kF32, {int64_t(1) << 62}, nullptr).ok());
}

// Fuzz finding (safetensors_fuzz, UBSan): ReadF32 of an empty F32 tensor
// into an empty vector passed its null data() to memcpy (this fails under
// the sanitizer build that CI runs).
TEST(read_f32_of_an_empty_tensor_into_no_memory) {
  std::string f = Build("{\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]}}", "");
  SafetensorsReader r;
  CHECK_OK(r.OpenMemory(reinterpret_cast<const uint8_t*>(f.data()), f.size(), "mem"));
  std::vector<float> none;
  CHECK_OK(r.ReadF32("e", {0, 3}, none.data()));
}

TEST(rejects_corrupt_files) {
  std::string ok_hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  std::string data = FloatBytes({1, 2});
  CHECK_OK(Parse(Build(ok_hdr, data)));
  // Shorter than the length field; header length past the end; huge header length.
  CHECK_EQ(Parse("1234").code(), Status::kInvalid);
  std::string f = Build(ok_hdr, data);
  StoreU64(reinterpret_cast<uint8_t*>(&f[0]), f.size());
  CHECK_EQ(Parse(f).code(), Status::kInvalid);
  StoreU64(reinterpret_cast<uint8_t*>(&f[0]), ~0ull);
  CHECK_EQ(Parse(f).code(), Status::kInvalid);
  // Truncated data.
  CHECK_EQ(Parse(Build(ok_hdr, data.substr(0, 7))).code(), Status::kInvalid);
  // Trailing bytes not covered by any tensor.
  CHECK_EQ(Parse(Build(ok_hdr, data + "xxxx")).code(), Status::kInvalid);
  // Not JSON, not an object, garbage after the object.
  CHECK_EQ(Parse(Build("{\"a\":", data)).code(), Status::kInvalid);
  CHECK_EQ(Parse(Build("[1,2]   ", data)).code(), Status::kInvalid);
  // Unknown dtype, size mismatch, negative and fractional shapes, reversed offsets.
  CHECK_EQ(
      Parse(Build("{\"a\":{\"dtype\":\"F31\",\"shape\":[2],\"data_offsets\":[0,8]}}", data)).code(),
      Status::kInvalid);
  CHECK_EQ(
      Parse(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", data)).code(),
      Status::kInvalid);
  CHECK_EQ(Parse(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", data))
               .code(),
           Status::kInvalid);
  CHECK_EQ(Parse(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", data))
               .code(),
           Status::kInvalid);
  CHECK_EQ(
      Parse(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", data)).code(),
      Status::kInvalid);
  // Overflowing shape product.
  CHECK_EQ(Parse(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_"
                       "offsets\":[0,8]}}",
                       data))
               .code(),
           Status::kInvalid);
  // Overlap and gap between tensors.
  std::string two_overlap =
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
  CHECK_EQ(Parse(Build(two_overlap, data)).code(), Status::kInvalid);
  std::string two_gap =
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
  CHECK_EQ(Parse(Build(two_gap, data + "pppp")).code(), Status::kInvalid);
  // A duplicate name.
  std::string dup =
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
  CHECK_EQ(Parse(Build(dup, data)).code(), Status::kInvalid);
  // Metadata values must be strings.
  CHECK_EQ(Parse(Build("{\"__metadata__\":{\"step\":3}}", "")).code(), Status::kInvalid);
  // A NUL byte in the header (nlohmann would stop reading there): as padding,
  // and before trailing garbage.
  CHECK_EQ(Parse(Build(ok_hdr + std::string(1, '\0'), data)).code(), Status::kInvalid);
  Status nul = Parse(Build(ok_hdr + std::string(1, '\0') + "garbage", data));
  CHECK_EQ(nul.code(), Status::kInvalid);
  CHECK(nul.message().find("NUL") != std::string::npos);
  CHECK_OK(Parse(Build(ok_hdr + "   ", data)));
  // Unknown per-tensor fields.
  CHECK_EQ(
      Parse(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", data))
          .code(),
      Status::kInvalid);
}

TEST(every_truncation_is_rejected) {
  std::vector<float> w(10, 1.5f);
  SafetensorsWriter sw;
  CHECK_OK(sw.Add("w", StDtype::kF32, {10}, w.data()));
  std::string f = sw.Serialize();
  CHECK_OK(Parse(f));
  for (size_t n = 0; n < f.size(); n++) CHECK(!Parse(f.substr(0, n)).ok());
}

TEST(int_dtype_is_not_read_as_float) {
  std::string hdr = "{\"i\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
  std::string path = TempPath("i32.safetensors");
  CHECK_OK(WriteFileAtomic(path, Build(hdr, std::string("\1\0\0\0", 4))));
  SafetensorsReader r;
  CHECK_OK(r.Open(path));
  float x;
  CHECK_EQ(r.ReadF32("i", {1}, &x).code(), Status::kInvalid);
  RemoveAll(path);
}

TEST_MAIN()
