// zstd_blocks.c: the floor under lm-pack's packing time. Compresses a file
// of raw token bytes in independent blocks of BLOCK_BYTES with one reused
// context at zstd LEVEL, as lm-pack's shard writer does, and prints the best
// CPU seconds of REPEAT passes over the file in memory and the ratio.
//
//   zstd_blocks FILE BLOCK_BYTES LEVEL REPEAT
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <zstd.h>

static double CpuSeconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: zstd_blocks FILE BLOCK_BYTES LEVEL REPEAT\n");
    return 2;
  }
  FILE* f = fopen(argv[1], "rb");
  if (!f) {
    perror(argv[1]);
    return 1;
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char* in = malloc(n > 0 ? (size_t)n : 1);
  if (!in || fread(in, 1, (size_t)n, f) != (size_t)n) {
    fprintf(stderr, "%s: read failed\n", argv[1]);
    return 1;
  }
  fclose(f);
  size_t block = (size_t)atol(argv[2]);
  int level = atoi(argv[3]), repeat = atoi(argv[4]);
  char* out = malloc(ZSTD_compressBound(block));
  ZSTD_CCtx* c = ZSTD_createCCtx();
  double best = 1e30;
  size_t total = 0;
  for (int r = 0; r < repeat; r++) {
    double t = CpuSeconds();
    total = 0;
    for (long p = 0; p < n; p += (long)block) {
      size_t len = (size_t)(n - p) < block ? (size_t)(n - p) : block;
      size_t z = ZSTD_compressCCtx(c, out, ZSTD_compressBound(block), in + p, len, level);
      if (ZSTD_isError(z)) {
        fprintf(stderr, "zstd: %s\n", ZSTD_getErrorName(z));
        return 1;
      }
      total += z;
    }
    t = CpuSeconds() - t;
    if (t < best) best = t;
  }
  printf("%.3f %.3f\n", best, (double)n / (double)total);
  ZSTD_freeCCtx(c);
  free(out);
  free(in);
  return 0;
}
