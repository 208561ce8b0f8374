// record.h: what lm-eval --new-only has done, RUN/eval-record.jsonl: one JSON
// object per evaluated checkpoint, {"ckpt","id","key","data","date"}, so that
// each checkpoint is evaluated once per data and options (docs/eval.md).
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "util/status.h"

namespace lm {

// The key of one evaluation setting: the data's identity and the options that
// change the figures.
std::string RecordKey(uint64_t data_identity, int context, int stride, uint64_t limit);

// Parses the record text; *done gets "CKPT/ID" of every line with `key`. A
// line that is not a whole record (cut by a crash, edited by hand) is skipped.
void ParseRecord(const std::string& text, const std::string& key, std::set<std::string>* done);
// ParseRecord of the file at path (a missing file is an empty record).
Status ReadRecord(const std::string& path, const std::string& key, std::set<std::string>* done);
// Appends one line (fsynced); after a line torn by a crash it starts a new one.
Status AppendRecord(const std::string& path, const std::string& line);

// Writes one line to stdout in one write(2), so that lines of concurrent
// processes never interleave; when stdout is a file and the write fails part
// way (disk full), the file is cut back to where the line began.
Status EmitLine(const std::string& line);

}  // namespace lm
