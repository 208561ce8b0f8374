// pack_loader.cpp: the loader half of bench/pack.sh (built by it): random
// training batches from a packed dataset through Dataset + BatchSampler, with
// every block's checksum verified at first read, and the time to open a
// dataset of thousands of shards.
//
//   pack_loader DIR T BATCH SECONDS CACHE_BYTES   -> one line "key=value ..."
//   pack_loader --open DIR N                      -> opens a copy of DIR listing N
//                                                    hard links of its first shard
#include <unistd.h>

#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "data/loader.h"
#include "format/manifest.h"
#include "util/file.h"

using namespace lm;
using Clock = std::chrono::steady_clock;

static double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Seconds of CPU this process used: on a shared machine, steadier than wall time.
static double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int Fail(const Status& s) {
  fprintf(stderr, "pack_loader: %s\n", s.ToString().c_str());
  return 1;
}

static int OpenMany(const std::string& dir, int n) {
  Manifest m;
  Status s = ReadManifest(dir, &m);
  if (!s.ok()) return Fail(s);
  std::string many = dir + ".many";
  RemoveAll(many);
  MakeDirs(many);
  ManifestShard one = m.shards[0];
  m.shards.clear();
  for (int i = 0; i < n; i++) {
    ManifestShard e = one;
    e.file = "s" + std::to_string(i) + ".lms";
    if (link(JoinPath(dir, one.file).c_str(), JoinPath(many, e.file).c_str()) != 0) {
      perror("link");
      return 1;
    }
    m.shards.push_back(e);
  }
  s = WriteManifest(many, m);
  if (!s.ok()) return Fail(s);
  auto t0 = Clock::now();
  std::unique_ptr<Dataset> ds;
  s = Dataset::Open(many, &ds);
  double dt = Since(t0);
  if (!s.ok()) return Fail(s);
  printf("shards=%d open_seconds=%.4f\n", n, dt);
  RemoveAll(many);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--open") return OpenMany(argv[2], atoi(argv[3]));
  if (argc != 6) {
    fprintf(stderr, "usage: pack_loader DIR T BATCH SECONDS CACHE_BYTES | --open DIR N\n");
    return 2;
  }
  std::string dir = argv[1];
  int T = atoi(argv[2]), B = atoi(argv[3]);
  double seconds = atof(argv[4]);
  size_t cache = (size_t)atoll(argv[5]);
  std::unique_ptr<Dataset> ds;
  Status s = Dataset::Open(dir, &ds);
  if (!s.ok()) return Fail(s);
  ds->SetCacheBytes(cache);
  std::unique_ptr<BatchSampler> bs;
  s = BatchSampler::Create(ds.get(), Split::kTrain, T, 1, &bs);
  if (!s.ok()) return Fail(s);
  std::vector<uint32_t> buf((size_t)B * (T + 1));
  uint64_t tokens = 0, batches = 0, check = 0;
  auto t0 = Clock::now();
  double c0 = CpuSeconds();
  double dt = 0;
  while ((dt = Since(t0)) < seconds) {
    s = bs->Next(B, 0, B, buf.data());
    if (!s.ok()) return Fail(s);
    tokens += buf.size();
    batches++;
    check += buf[batches % buf.size()];
  }
  double cpu = CpuSeconds() - c0;
  printf(
      "%.3g tokens/s (%.2f GB/s) per wall second, %.3g tokens/s (%.2f GB/s) per CPU second;"
      " %llu tokens, wall %.2f s, cpu %.2f s (check %llu)\n",
      tokens / dt, tokens * 4.0 / dt / 1e9, tokens / cpu, tokens * 4.0 / cpu / 1e9,
      (unsigned long long)tokens, dt, cpu, (unsigned long long)check);
  return 0;
}
