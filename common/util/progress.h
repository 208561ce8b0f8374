// progress.h: a one-line progress meter on stderr, shown only when stderr is a
// terminal (so logs and pipes stay clean), redrawn at most a few times a second.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace lm {

class Progress {
 public:
  // `total` 0 means unknown; `unit` is "B" (bytes, shown as MB) or a noun ("tokens").
  Progress(std::string label, uint64_t total, std::string unit = "B");
  ~Progress();  // clears the line
  // Sets the amount done (thread-safe; cheap when not redrawing).
  void Update(uint64_t done);
  void Add(uint64_t n);
  void Finish();
  static bool Enabled();  // stderr is a terminal

 private:
  void Draw(bool force);
  std::string label_, unit_;
  uint64_t total_, done_ = 0;
  bool enabled_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_;
  std::mutex mu_;
};

// Log lines on stderr, prefixed with the tool's name: "lm-pack: wrote 12 shards".
void LogInfo(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void LogWarn(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// Silences LogInfo (for --quiet).
void SetQuiet(bool q);

}  // namespace lm
