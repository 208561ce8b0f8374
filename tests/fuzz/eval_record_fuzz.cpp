// eval_record_fuzz.cpp: lm-eval --new-only's record, RUN/eval-record.jsonl
// (tools/eval/record.h), through ReadRecord, with the key of the seeds.
//
// Whatever the file holds (torn lines, hand edits), ReadRecord must give
// what ParseRecord gives on its text, and AppendRecord, which lm-eval calls
// after each evaluation, must add its record and keep every one the file had:
// the file read again is the records before plus the new one.
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "tests/fuzz/fuzz.h"
#include "tools/eval/record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static lm_fuzz::MemFile file("eval-record.jsonl");
  const std::string key = "fedcba9876543210";
  const std::string text((const char*)data, size);
  file.Set(data, size);
  std::set<std::string> done, parsed;
  FUZZ_CHECK(lm::ReadRecord(file.path(), key, &done).ok());
  lm::ParseRecord(text, key, &parsed);
  FUZZ_CHECK(done == parsed);
  if (!done.empty()) lm_fuzz::Accepted()++;
  nlohmann::ordered_json rec;
  rec["ckpt"] = "step-0000042";
  rec["id"] = "0123456789abcdef";
  rec["key"] = key;
  FUZZ_CHECK(lm::AppendRecord(file.path(), rec.dump() + "\n").ok());
  std::set<std::string> after;
  FUZZ_CHECK(lm::ReadRecord(file.path(), key, &after).ok());
  done.insert("step-0000042/0123456789abcdef");
  FUZZ_CHECK(after == done);
  return 0;
}
